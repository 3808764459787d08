"""Every Python block of the README runs as written (each in a fresh namespace and a scoped registry)."""

import re
from pathlib import Path

import pytest

import derivcheck as dc

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs(i):
    with dc.scoped_registry():
        exec(compile(BLOCKS[i], f"README.md block {i}", "exec"), {"__name__": f"readme_block_{i}"})
