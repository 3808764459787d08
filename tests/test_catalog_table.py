"""``docs/catalog.md`` is the current output of ``python -m derivcheck.catalog._table``."""

from pathlib import Path

import derivcheck as dc
from derivcheck.catalog import _table

DOC = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"


def test_the_table_is_current():
    assert DOC.is_file(), f"{DOC} is missing: run `{_table.COMMAND}`"
    assert DOC.read_text(encoding="utf-8") == _table.render(), f"{DOC} is out of date: run `{_table.COMMAND}`"


def test_every_catalog_derivation_has_a_row_with_its_reason():
    text = _table.render()
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")}
    catalog = _table.catalog_derivations()
    assert set(rows) == {d.name for d in catalog}
    for d in catalog:
        assert d.kind in rows[d.name] and _table._cell(d.source) in rows[d.name]
        if not d.expect.holds:
            assert f"| fails | {_table._cell(d.expect.reason)} |" in rows[d.name]


def test_the_readme_links_the_table():
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/catalog.md" in readme


def test_only_catalog_derivations_are_listed(reg):
    outside = dc.gradient(of=lambda x: x**2, inputs=dc.inputs(x=dc.normal()), registry=reg, name="user.square")(
        lambda x: 2 * x
    )
    assert outside not in _table.catalog_derivations()
    assert "`user.square`" in _table.render([outside])


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    path = tmp_path / "catalog.md"
    assert _table.main(["--check", "--output", str(path)]) == 1  # missing
    path.write_text("stale\n", encoding="utf-8")
    assert _table.main(["--check", "--output", str(path)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert _table.main(["--output", str(path)]) == 0
    assert _table.main(["--check", "--output", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == _table.render()
