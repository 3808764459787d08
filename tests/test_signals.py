"""Nothing lost, whatever the user does: Ctrl-C, SIGTERM and a closed pipe, each in a real subprocess.

Each run checks a small file: eight quick derivations and one that sleeps, in
two worker processes (``--jobs 2``). The signal is sent as soon as the first
result line appears, while the workers are busy; the race that used to end
in an internal error is tried several times.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.usefixtures("children_take_ctrl_c")

USER_FILE = textwrap.dedent(
    """
    import os
    import time
    import jax.numpy as jnp
    import derivcheck as dc

    SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))

    def sq(x):
        return jnp.sum(x**2)

    for k in range(8):
        dc.gradient(of=sq, inputs=SPEC, name=f"sig.q{k}")(lambda x: 2 * x)

    @dc.gradient(of=sq, inputs=SPEC, name="sig.z_sleeps")
    def sleeps(x):
        time.sleep(float(os.environ.get("SLEEP", "120")))
        return 2 * x
    """
)


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("signals") / "sig_derivations.py"
    path.write_text(USER_FILE)
    return path


def start(user_file, tmp_path, *options, sleep="120"):
    out = tmp_path / "out.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "derivcheck.cli", "run", "--load", str(user_file), "--trials", "5"]
    cmd += ["--json", str(out), "--markdown", str(tmp_path / "out.md"), "--junit-xml", str(tmp_path / "out.xml")]
    env = dict(os.environ, SLEEP=sleep, DERIVCHECK_NO_CACHE="1")
    proc = subprocess.Popen(
        [*cmd, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, out


@pytest.mark.parametrize(
    ("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_signal_while_workers_check_reports_what_finished(user_file, tmp_path, sig, status, word):
    for _ in range(3 if sig == signal.SIGINT else 2):  # the race with the worker threads, tried again
        proc, out = start(user_file, tmp_path, "--jobs", "2")
        first = proc.stdout.readline()
        assert first.startswith("[1/9] sig.q0: holds"), first + proc.stderr.read()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == status, stderr
        assert f"{word}" in stderr and "finished of 9 derivations" in stderr
        assert "internal error" not in stderr and "Traceback" not in stdout + stderr
        doc = json.loads(out.read_text())
        assert doc["interrupted"] is True and doc["ok"] is False
        finished = [r["name"] for r in doc["results"]]
        assert finished and finished == [f"sig.q{k}" for k in range(len(finished))]
        assert "interrupted" in (tmp_path / "out.md").read_text()
        assert "sig.q0" in (tmp_path / "out.xml").read_text()
        assert "derivations," in stdout  # the summary line


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_reader_that_stops_reading_does_not_stop_the_run(user_file, tmp_path, jobs):
    """``derivcheck run ... | head -1``: the run finishes, writes its reports and exits with its own status."""
    proc, out = start(user_file, tmp_path, "--jobs", jobs, sleep="0")
    with proc:
        assert proc.stdout.readline().startswith("[1/9]")
        proc.stdout.close()
        stderr = proc.stderr.read()
        assert proc.wait(timeout=60) == 0, stderr
    assert "Broken pipe" not in stderr and "internal error" not in stderr and "Exception ignored" not in stderr
    doc = json.loads(out.read_text())
    assert doc["ok"] is True and len(doc["results"]) == 9


ENDLESS = textwrap.dedent(
    """
    import jax.numpy as jnp
    from jax import lax
    import derivcheck as dc

    SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))

    def sq(x):
        return jnp.sum(x**2)

    dc.gradient(of=sq, inputs=SPEC, name="end.a_quick")(lambda x: 2 * x)

    @dc.gradient(of=sq, inputs=SPEC, name="end.b_forever")
    def forever(x):  # a loop XLA runs in its own threads: nothing in Python to interrupt
        body = lambda c: (c[0] + 1.0, c[1] * 1.0000001)  # a carry that changes: XLA cannot drop the loop
        return 2 * x + 0.0 * lax.while_loop(lambda c: c[0] > -1.0, body, (jnp.zeros(()), x))[1]
    """
)


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_computation_that_never_ends_still_ends_the_run(tmp_path, sig, status):
    """Checked in this process (``--jobs 1``), an endless ``lax.while_loop`` kept running in JAX's threads
    after Ctrl-C: the reports were written, then the interpreter's shutdown waited for it forever."""
    user = tmp_path / "endless.py"
    user.write_text(ENDLESS)
    proc, out = start(user, tmp_path, "--jobs", "1")
    first = proc.stdout.readline()
    assert first.startswith("[1/2] end.a_quick: holds"), first + proc.stderr.read()
    time.sleep(4)  # end.b_forever compiled (a second) and running in XLA's threads
    proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    assert "finished of 2 derivations" in stderr and "derivations," in stdout
    assert [r["name"] for r in json.loads(out.read_text())["results"]] == ["end.a_quick"]
