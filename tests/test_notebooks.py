"""Every notebook in ``notebooks/`` runs top to bottom, headless, in a kernel of this environment.

The notebooks are committed with their outputs cleared (checked here too), so
running them is the only way their figures and tables exist. nbclient starts
the ``python3`` kernel that ipykernel installs into this environment (its
kernelspec says ``python``, which jupyter_client replaces by
``sys.executable``), so the kernel imports the same derivcheck as the tests.
Each notebook runs in its own kernel, with a time limit per cell; a cell that
raises, or anything written to stderr (a warning), fails the test.

The kernels share one JAX persistent compilation cache in a temporary folder
of the test session (set through JAX's own environment variables, so the
notebooks contain nothing about it): later notebooks load the executables the
first one compiled for the same derivations instead of compiling them again.
"""

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 900
KERNEL = "python3"


def _ids(path: Path) -> str:
    return path.stem


def _outputs(nb, output_type: str | None = None):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if output_type is None or out.get("output_type") == output_type:
                yield cell, out


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == KERNEL
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"clear the outputs of {path.name}"


@pytest.fixture(scope="session")
def kernel_env(tmp_path_factory):
    """The kernels' environment: this one, plus a compilation cache shared by the session's kernels."""
    cache = tmp_path_factory.mktemp("jax-compilation-cache")
    return {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def execute(path: Path, env: dict[str, str]):
    """Run the notebook at ``path`` top to bottom in a fresh kernel; return it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=env)  # raises CellExecutionError, naming the cell, if any cell raises
    return nb


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_top_to_bottom(path, kernel_env):
    start = time.perf_counter()
    nb = execute(path, kernel_env)
    elapsed = time.perf_counter() - start
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell ran"
    stderr = [out.text for _, out in _outputs(nb, "stream") if out.name == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr: {stderr[0][:500]}"
    figures = [out for _, out in _outputs(nb) if "image/png" in out.get("data", {})]
    assert figures, f"{path.name} shows no figure"
    print(f"{path.name}: {len(code)} code cells, {len(figures)} figures, {elapsed:.0f} s")
