"""The persistent compilation cache: XLA executables kept on disk between runs.

Nearly all the time of a cold ``derivcheck run`` is XLA compilation (each
derivation compiles one ``jax.jit(jax.vmap(trial))`` per size set). JAX can
keep compiled executables on disk, keyed by the lowered program, the compile
options and the JAX/XLA versions, so a second run with unchanged derivations
only traces and lowers, then loads the executable.

The command line turns the cache on by default in a user cache directory;
the library (:func:`derivcheck.check`) leaves JAX's configuration alone unless
:func:`enable` is called or ``DERIVCHECK_CACHE_DIR`` is set. Where it lives, first match wins:

==============================  =============================================
``--no-cache``                  off for this run
``DERIVCHECK_NO_CACHE=1``       off (the test suite sets it)
``--cache-dir PATH``            that directory
``DERIVCHECK_CACHE_DIR=PATH``   that directory
``XDG_CACHE_HOME``              ``$XDG_CACHE_HOME/derivcheck/jax``
otherwise                       ``~/.cache/derivcheck/jax``
==============================  =============================================

Every executable is written, however fast it compiled (JAX's default keeps
only those that took over a second, which would skip almost all of ours), and
the directory is kept under :data:`MAX_BYTES` (least recently used entries go
first, pruned when the cache is enabled).

The LaTeX reader keeps its parse trees in the same folder (:func:`store`), so a
process that loads the catalog does not parse its statements again.

The cache only ever deletes what it wrote. It writes into a folder it owns,
marked by a :data:`MARKER` file: the folder named, when derivcheck creates it
(or finds it empty or already marked), else a ``derivcheck-cache`` folder
inside it — so ``--cache-dir`` pointed at a folder of the user's files
(``--cache-dir .``) never prunes them. The cache must be configured before the first compilation of the
process; :func:`enable` says whether it took effect.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_BYTES = 2 * 2**30
MARKER = ".derivcheck-cache"  # in every folder the cache owns (and so may prune)
SUBFOLDER = "derivcheck-cache"  # where the cache goes inside a folder of someone else's files
ENV_DIR = "DERIVCHECK_CACHE_DIR"
ENV_OFF = "DERIVCHECK_NO_CACHE"


def default_dir() -> Path:
    """``$DERIVCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/derivcheck/jax``, else ``~/.cache/derivcheck/jax``."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "derivcheck" / "jax"


def disabled_by_env() -> bool:
    """``DERIVCHECK_NO_CACHE`` set to anything but ``""``/``0``/``false``."""
    return os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no")


def enable(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Turn JAX's persistent compilation cache on at ``path`` (default :func:`default_dir`).

    Returns the directory in use, or ``None`` when the cache stays off: the
    environment disables it, the directory cannot be created, or the process
    already uses another cache directory. Call it before the first compilation.
    """
    if disabled_by_env():
        return None
    import jax

    try:
        target = owned_dir(Path(path).expanduser() if path is not None else default_dir())
    except OSError:
        return None
    # jax's Config declares its options at runtime, so its stubs do not list them
    current = jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]
    if current:
        return target if Path(current) == target else None
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    prune(target, MAX_BYTES)
    return target


def owned_dir(folder: Path) -> Path:
    """The folder the cache writes to for ``folder``, created and marked (see the module docstring).

    ``folder`` itself when it is new, empty or already marked; otherwise its
    :data:`SUBFOLDER`. Raises ``OSError`` when it cannot be created.
    """
    if folder.is_dir() and not (folder / MARKER).exists() and any(folder.iterdir()):
        folder = folder / SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / MARKER).exists():
        if any(folder.iterdir()):  # a SUBFOLDER the user made themselves: not ours either
            raise OSError(f"{folder} holds files derivcheck did not write")
        (folder / MARKER).touch()
    return folder


def prune(folder: Path, max_bytes: int) -> int:
    """Delete the least recently used files of ``folder`` until it holds at most ``max_bytes``; the bytes freed.

    Only in a folder the cache owns (it holds :data:`MARKER`); elsewhere nothing.

    (JAX's own size limit needs the ``filelock`` package; this keeps the cache
    bounded without it, once per run.)
    """
    if not (folder / MARKER).exists():
        return 0  # not a folder the cache owns: never delete anything there
    try:
        files = [(p.stat(), p) for p in folder.iterdir() if p.is_file() and p.name != MARKER]
    except OSError:
        return 0
    total = sum(st.st_size for st, _ in files)
    freed = 0
    for st, p in sorted(files, key=lambda item: max(item[0].st_atime, item[0].st_mtime)):
        if total - freed <= max_bytes:
            break
        try:
            p.unlink()
            freed += st.st_size
        except OSError:
            continue
    return freed


_ENV_CHECKED = False


def enable_from_env() -> Path | None:
    """:func:`enable` when ``$DERIVCHECK_CACHE_DIR`` asks for it (once per process; the library's opt-in)."""
    global _ENV_CHECKED
    if _ENV_CHECKED:
        return active_dir()
    _ENV_CHECKED = True
    return enable() if os.environ.get(ENV_DIR) else None


def store() -> Path | None:
    """The folder the cache owns and JAX uses in this process, or ``None``.

    Turned on first when ``$DERIVCHECK_CACHE_DIR`` asks for it (:func:`enable_from_env`), so a
    worker process of the command finds its parent's folder before it compiles anything. A folder
    JAX was pointed at by someone else (no :data:`MARKER`) is never written to. Other work that is
    slow to redo and cheap to keep (the LaTeX reader's parse trees) is stored here too, and pruned
    with the executables.
    """
    if disabled_by_env():
        return None
    folder = (enable_from_env() if os.environ.get(ENV_DIR) else None) or active_dir()  # unset: asked again later
    return folder if folder is not None and (folder / MARKER).exists() else None


def active_dir() -> Path | None:
    """The cache directory JAX uses in this process, or ``None``."""
    import jax

    # jax's Config declares its options at runtime, so its stubs do not list them
    current = jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]
    return Path(current) if current else None
