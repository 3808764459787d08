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
