"""The public surface is exactly ``__all__``, sorted, and every name in it exists."""

import derivcheck as dc


def _isort_key(name: str):
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_complete():
    assert list(dc.__all__) == sorted(dc.__all__, key=_isort_key)
    assert len(set(dc.__all__)) == len(dc.__all__)
    for name in dc.__all__:
        assert hasattr(dc, name), name


def test_no_public_name_outside_all():
    public = {n for n in vars(dc) if not n.startswith("_")}
    modules = {n for n, v in vars(dc).items() if type(v).__name__ == "module"}
    assert public - modules - set(dc.__all__) == set()


def test_the_readme_lists_exactly_the_public_surface():
    """The README's table of the public surface names every ``__all__`` entry, and nothing else."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## The public surface") :]
    table = section[section.index("| group | names |") :].split("\n\n")[0]
    rows = table.splitlines()[2:]  # after the header and the rule
    named = {n for row in rows for n in re.findall(r"`([A-Za-z_]+)`", row.split("|")[2])}
    assert named == set(dc.__all__), (set(dc.__all__) - named, named - set(dc.__all__))
