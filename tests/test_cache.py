"""The persistent compilation cache: where it lives, how it is turned off, and that it is bounded.

The suite itself runs with ``DERIVCHECK_NO_CACHE=1`` (see ``conftest.py``); the command line is
exercised in subprocesses with temporary folders, so the user's cache is never read or written.
"""

import os
import subprocess
import sys
import time

from derivcheck import _cache


def test_default_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DERIVCHECK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.default_dir() == tmp_path / "xdg" / "derivcheck" / "jax"
    monkeypatch.setenv("DERIVCHECK_CACHE_DIR", str(tmp_path / "mine"))
    assert _cache.default_dir() == tmp_path / "mine"


def test_the_environment_turns_it_off(monkeypatch, tmp_path):
    for value, off in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("DERIVCHECK_NO_CACHE", value)
        assert _cache.disabled_by_env() is off
    monkeypatch.setenv("DERIVCHECK_NO_CACHE", "1")
    assert _cache.enable(tmp_path / "c") is None and not (tmp_path / "c").exists()


def test_prune_drops_the_least_recently_used(tmp_path):
    (tmp_path / _cache.MARKER).touch()
    now = time.time()
    for i in range(5):
        path = tmp_path / f"entry{i}"
        path.write_bytes(b"x" * 100)
        os.utime(path, (now - 100 + i, now - 100 + i))  # entry0 is the oldest
    freed = _cache.prune(tmp_path, 250)
    assert freed == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == [_cache.MARKER, "entry3", "entry4"]
    assert _cache.prune(tmp_path, 250) == 0


def _run(*args, env):
    cmd = [sys.executable, "-m", "derivcheck.cli", "run", "softmax_ce.gradient", "--trials", "8", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_the_command_fills_its_cache_folder_unless_told_not_to(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DERIVCHECK_NO_CACHE", "DERIVCHECK_CACHE_DIR")}
    env["HOME"] = str(tmp_path / "home")  # never the real user's cache, whatever happens
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    cold = _run("--cache-dir", str(tmp_path / "cache"), env=env)
    assert cold.returncode == 0, cold.stdout[-2000:] + cold.stderr[-2000:]
    assert any((tmp_path / "cache").iterdir())
    # set up before the catalog is loaded: its LaTeX statements' parse trees are kept there too
    assert len(list((tmp_path / "cache").glob("latex-*.json"))) >= 20
    off = _run("--no-cache", env=env)
    assert off.returncode == 0
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()
    default = _run(env=env)
    assert default.returncode == 0 and any((tmp_path / "xdg" / "derivcheck" / "jax").iterdir())


def test_a_folder_of_the_users_files_is_never_pruned(tmp_path):
    """``--cache-dir`` at a folder holding the user's files: the cache goes in a subfolder it owns."""
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_bytes(b"x" * 1000)
    assert _cache.prune(mine, 0) == 0 and (mine / "notes.txt").exists()
    owned = _cache.owned_dir(mine)
    assert owned == mine / _cache.SUBFOLDER and (owned / _cache.MARKER).exists()
    (owned / "entry").write_bytes(b"x" * 100)
    assert _cache.prune(owned, 0) == 100 and (mine / "notes.txt").exists()
    assert _cache.owned_dir(owned) == owned  # marked: used as it is
    assert _cache.owned_dir(tmp_path / "new") == tmp_path / "new"  # created by derivcheck: its own


def test_the_command_leaves_the_users_files_alone(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DERIVCHECK_NO_CACHE", "DERIVCHECK_CACHE_DIR")}
    env["HOME"] = str(tmp_path / "home")
    mine = tmp_path / "project"
    mine.mkdir()
    old = mine / "old_results.csv"
    old.write_text("precious")
    os.utime(old, (0, 0))  # the least recently used file there
    proc = _run("--cache-dir", str(mine), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert old.read_text() == "precious"
    assert sorted(p.name for p in mine.iterdir()) == [_cache.SUBFOLDER, "old_results.csv"]
