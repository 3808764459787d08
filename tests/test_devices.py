"""Trials sharded over several devices give the same verdicts as one device.

The multi-device checks run in a subprocess with four host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4`` only takes effect
before JAX starts).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from derivcheck import _devices

DERIVATIONS = textwrap.dedent(
    """
    import jax, jax.numpy as jnp
    import derivcheck as dc

    def nll(theta, X, y):
        z = X @ theta
        return jnp.sum(jnp.logaddexp(0.0, z) - y * z)

    spec = dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"))

    @dc.hessian(of=nll, wrt="theta", inputs=spec, name="dev.hess")
    def hess(theta, X, y):
        mu = jax.nn.sigmoid(X @ theta)
        return X.T @ ((mu * (1 - mu))[:, None] * X)

    @dc.gradient(of=nll, wrt="theta", inputs=spec, name="dev.wrong")
    def wrong(theta, X, y):
        return 0.5 * X.T @ (jax.nn.sigmoid(X @ theta) - y)

    @dc.definite("psd", of=nll, wrt="theta", inputs=spec, name="dev.psd", hvp=True, matrix_free=True)
    def psd(theta, X, y, v):
        mu = jax.nn.sigmoid(X @ theta)
        return X.T @ (mu * (1 - mu) * (X @ v))
    """
)

# the body runs under `if __name__ == "__main__"`: `--jobs` starts worker processes with the
# "spawn" method, which imports the main script again in each worker
SCRIPT = "if __name__ == '__main__':\n" + textwrap.indent(
    textwrap.dedent(
        """
    import json, sys
    import jax, jax.numpy as jnp
    import derivcheck as dc
    from derivcheck import _devices
    from derivcheck.cli import main

    path = sys.argv[1]
    dc.load(path)
    chosen = [dc.registry()[name] for name in ("dev.hess", "dev.wrong", "dev.psd")]
    out = {"devices": len(jax.devices())}
    for spec in (1, 4):
        with _devices.use_devices(spec):
            rs = [dc.check(d, trials=47, seed=2) for d in chosen]  # 47 trials: padding needed
        out[str(spec)] = [[r.outcome, r.max_rel_err, r.trials, [c.failures for c in r.cells], r.path] for r in rs]

    # the trial axis really is split: a batch placed on 4 devices, computed, comes back in order
    devs = _devices.resolve(4)
    f = _devices.batched(lambda a, e: a * 2.0, devs)
    y = f(*_devices.place((jnp.arange(8.0).reshape(8, 1), {}), devs))
    out["shards"] = len(y.sharding.device_set)
    out["values"] = _devices.unpad(y, 6).ravel().tolist()
    cli = ["run", "--load", path, "dev.wrong", "--trials", "47", "--devices"]
    out["cli4"] = main([*cli, "4"])
    out["cli5"] = main([*cli, "5"])
    for jobs in ("1", "3"):  # worker processes check ahead; the results keep their order
        report = path + f".{jobs}.json"
        main(["run", "--load", path, "dev.*", "--trials", "47", "--jobs", jobs, "--json", report])
        out["jobs" + jobs] = [(r["name"], r["outcome"], r["max_rel_err"]) for r in json.load(open(report))["results"]]
    print("RESULT" + json.dumps(out))
    """
    ),
    "    ",
)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    folder = tmp_path_factory.mktemp("devices")
    (folder / "derivations.py").write_text(DERIVATIONS)
    (folder / "run.py").write_text(SCRIPT)
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",  # the session's compilation cache (tests/conftest.py): the worker processes of
    }  # --jobs 3 load what the checks before them compiled
    cmd = [sys.executable, str(folder / "run.py"), str(folder / "derivations.py")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line is not None, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(line.removeprefix("RESULT"))


def test_four_host_devices_are_seen(four_devices):
    assert four_devices["devices"] == 4
    assert four_devices["shards"] == 4
    assert four_devices["values"] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_sharded_verdicts_equal_single_device_verdicts(four_devices):
    one, four = four_devices["1"], four_devices["4"]
    assert [r[0] for r in one] == ["holds", "fails", "holds"]
    for a, b in zip(one, four, strict=True):
        assert a[0] == b[0] and a[2] == b[2] and a[3] == b[3] and a[4] == b[4]
        assert np.isclose(a[1], b[1], rtol=1e-6, atol=1e-15)


def test_cli_devices_flag(four_devices):
    assert four_devices["cli4"] == 1  # runs, and reports the planted error
    assert four_devices["cli5"] == 2  # more devices than there are: a usage error


def test_jobs_check_in_worker_processes_and_keep_the_order(four_devices):
    assert four_devices["jobs3"] == four_devices["jobs1"]
    assert [r[0] for r in four_devices["jobs1"]] == ["dev.hess", "dev.wrong", "dev.psd"]


def test_padding_buckets_and_device_multiples():
    assert _devices.padded_rows(1, 8, 1) == _devices.MIN_BUCKET
    assert _devices.padded_rows(100, 8, 1) == 128
    assert _devices.padded_rows(100, 8, 3) == 129  # the bucket, rounded up to a multiple of the devices
    assert _devices.padded_rows(5000, 8, 1) == 5120  # large: a multiple of 1024, not the next power of two
    big = _devices.BUCKET_BUDGET_BYTES  # one trial this large is not padded beyond the device multiple
    assert _devices.padded_rows(5, big, 4) == 8
    tree = (np.arange(3.0)[:, None], {"e": np.ones((3, 2))})
    grown = _devices.pad(tree, 3, 5)
    assert grown[0].ravel().tolist() == [0.0, 1.0, 2.0, 2.0, 2.0] and grown[1]["e"].shape == (5, 2)
    assert _devices.unpad(grown, 3)[0].ravel().tolist() == [0.0, 1.0, 2.0]


def test_device_specs_are_validated():
    assert len(_devices.resolve(1)) == 1
    with pytest.raises(ValueError, match="local device"):
        _devices.resolve(10_000)
    with pytest.raises(ValueError, match="'all' or a count"):
        _devices.resolve("many")
