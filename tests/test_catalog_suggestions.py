"""``derivcheck/catalog/suggestions.json``: every expected failure of the catalog has a current answer of
the repair search, the table shows it, and ``derivcheck explain`` still finds it (one cheap derivation)."""

import dataclasses
import json

import pytest

import derivcheck as dc
from derivcheck.catalog import _suggestions, _table
from derivcheck.cli import main

CHEAP = "logistic.gradient_vector_as_written"  # the notes' dropped 1/m: found in a few seconds
REGENERATE = "python -m derivcheck.catalog._table --suggest"


@pytest.fixture(scope="module")
def entries():
    return _suggestions.load()


@pytest.fixture(scope="module")
def failing():
    return {d.name: d for d in _suggestions.expected_failures(_table.catalog_derivations())}


def test_every_expected_failure_has_a_current_entry(entries, failing):
    assert set(entries) == set(failing), f"run `{REGENERATE}`"
    stale = {name: _suggestions.stale(d, entries[name]) for name, d in failing.items()}
    assert not {k: v for k, v in stale.items() if v}, f"stale entries: run `{REGENERATE}`"


def test_every_entry_is_a_fix_or_one_line_saying_why_not(entries):
    for name, e in entries.items():
        assert bool(e.fixes) != bool(e.message), name
        assert "\n" not in e.cell() and e.cell(), name
        for fix in e.fixes:
            assert fix["holds_on"] > 0 and fix["changes"] and not fix["file"].startswith("/"), name


def test_the_table_shows_each_entry_next_to_its_reason(entries, failing):
    rows = {line.split("|")[1].strip(" `"): line for line in _table.render().splitlines() if line.startswith("| `")}
    for name, d in failing.items():
        assert f"| {_table._cell(d.expect.reason)} | {_table._cell(entries[name].cell())} |" in rows[name]


def test_a_changed_derivation_or_a_moved_line_makes_its_entry_stale(entries, failing):
    d, e = failing[CHEAP], entries[CHEAP]
    assert _suggestions.stale(d, e) == ""
    assert _suggestions.stale(d, None) == "no entry"
    assert "changed" in _suggestions.stale(d, dataclasses.replace(e, fingerprint="0" * 16))
    moved = [{**e.fixes[0], "changes": [{**c, "line": c["line"] + 1} for c in e.fixes[0]["changes"]]}]
    assert "no longer at" in _suggestions.stale(d, dataclasses.replace(e, fixes=tuple(moved)))
    other = dataclasses.replace(d, expect=dc.fails("another reason"))
    assert _suggestions.fingerprint(other) != _suggestions.fingerprint(d)


def test_the_notes_single_edit_corrections_are_found(entries):
    """The notes' dropped ``1/m``, ``δ_{c,c}`` for ``δ_{c,c′}`` and the order of ``(W²)ᵀ(ŷ − y)``: the file
    holds the search's fix for each, as the notes correct it."""
    assert entries[CHEAP].fixes[0]["changes"][0]["after"].endswith("/ X.shape[0]")
    notes = {
        "softmax_regression.hessian_as_written": ("jnp.ones((C, C))", "jnp.eye(C)"),
        "softmax_regression.hessian_block_cross_class_as_written": ("jnp.ones((C, C))", "jnp.eye(C)"),
        "two_layer.dL_dW1_as_written": ("err @ W2.T", "W2.T @ err"),
    }
    for name, fix in notes.items():
        found = [tuple(f["changes"][0][k] for k in ("before", "after")) for f in entries[name].fixes]
        assert fix in found, name


def test_explain_shows_the_recorded_fix_of_a_catalog_expected_failure(entries, capsys):
    """``derivcheck explain`` runs the search again (seed 0, as the file's): it finds the fix the file records."""
    args = ["explain", CHEAP, "--trials", "60", "--no-shrink", "--suggest", "--suggest-seconds", "60"]
    main(args)
    out = capsys.readouterr().out
    fix = entries[CHEAP].fixes[0]
    (change,) = fix["changes"]
    said = f"line {change['line']}: `{change['before']}` should be `{change['after']}`"
    assert f"suggested fix: {said} — with this change it holds on {fix['holds_on']} trials" in out
    added = [line.strip()[1:] for line in out.splitlines() if line.strip().startswith("+") and "+++" not in line]
    assert any(change["after"] in line for line in added)  # the diff's new line


def test_update_writes_missing_entries_keeps_current_ones_and_drops_others(tmp_path, failing):
    """Claims the search does not cover answer at once, so the file's round trip is cheap to test."""
    chosen = [d for name, d in failing.items() if name.startswith("newton.")][:2]
    assert len(chosen) == 2
    path = tmp_path / "suggestions.json"
    path.write_text(json.dumps({"entries": {"gone.derivation": {"fingerprint": "x", "message": "old"}}}))
    first = _suggestions.update(chosen, ["newton.*"], path=path)
    assert set(first) == {d.name for d in chosen}  # an entry of a derivation that no longer fails is dropped
    assert all("no fix is searched" in e.message for e in first.values())
    assert _suggestions.load(path) == first
    again = _suggestions.update(chosen, ["newton.*"], path=path)
    assert again == first
