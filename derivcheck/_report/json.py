"""The JSON document of a run, written atomically (a temporary file in the same folder, then a rename).

A crash or Ctrl-C never leaves half a report.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from derivcheck._result import SCHEMA_VERSION, Result


def to_json(
    results: Sequence[Result],
    *,
    seed: int,
    trials: int,
    seconds: float,
    problems: Sequence[str] = (),
    interrupted: bool = False,
) -> dict[str, Any]:
    """The JSON document of a run (schema documented in the README)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "seed": seed,
        "trials": trials,
        "seconds": round(seconds, 3),
        "ok": all(r.ok for r in results) and not problems and not interrupted,
        "interrupted": interrupted,
        "problems": list(problems),
        "results": [r.to_dict() for r in results],
    }


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (never half-written).

    The rename replaces the *name*: a symbolic link is followed to the file it names (the link stays a link),
    an existing file keeps its permissions, and what is not a regular file (``/dev/stdout``, a named pipe) is
    written to directly, as a shell redirection would: a rename would put a plain file in its place.
    """
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, mode)  # mkstemp makes it private; a report is an ordinary file, or keeps the old one's mode
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write a run's JSON ``document`` to ``path`` atomically (NaN is not JSON: none may be left in it)."""
    write_atomic(path, json.dumps(document, indent=2, allow_nan=False) + "\n")
