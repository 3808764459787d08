"""The LaTeX reader keeps its parse trees in the persistent cache's folder, and reads them back as parsed."""

import lark
import pytest

import derivcheck as dc
from derivcheck import _cache
from derivcheck._latex import _grammar


def shape(node):
    """A tree with every token's type spelled out (a Token compares equal to any string of its value)."""
    if isinstance(node, lark.Token):
        return ("token", node.type, str(node))
    return (str(node.data), [shape(c) for c in node.children])


@pytest.fixture(scope="module")
def trees():
    """Each readable catalog statement's parse (some are refused on purpose: tests/test_latex_catalog.py)."""
    texts = {_grammar.normalize(d.statement) for d in dc.registry() if getattr(d, "statement", None)}
    out = {}
    for text in sorted(texts):
        try:
            out[text] = _grammar._parse(text)
        except dc.LatexError:
            continue
    return out


def test_every_catalog_statement_reads_back_as_parsed(trees):
    assert len(trees) >= 20
    for text, tree in trees.items():
        assert shape(_grammar._decoded(_grammar._encoded(tree))) == shape(tree), text


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(_cache, "store", lambda: tmp_path)
    _grammar.parse.cache_clear()
    yield tmp_path
    _grammar.parse.cache_clear()


def test_a_stored_tree_is_read_instead_of_parsed_and_a_damaged_one_is_parsed_again(store, monkeypatch, trees):
    text = min(trees, key=len)
    first = _grammar.parse(text)
    (path,) = store.glob("latex-*.json")
    _grammar.parse.cache_clear()

    def no_parser():
        raise AssertionError("parsed again although the tree was stored")

    monkeypatch.setattr(_grammar, "_parser", no_parser)
    assert shape(_grammar.parse(text)) == shape(first)

    path.write_text('["equation", [{"LETTER"')  # cut short, as by a full disk
    _grammar.parse.cache_clear()
    monkeypatch.undo()
    monkeypatch.setattr(_cache, "store", lambda: store)
    assert shape(_grammar.parse(text)) == shape(first)
    assert shape(_grammar.stored_parse(path)) == shape(first)  # and stored again, whole
    assert not list(store.glob(".latex-*"))  # no temporary file left behind


def test_nothing_is_stored_without_a_folder_the_cache_owns(tmp_path, monkeypatch):
    monkeypatch.setattr(_cache, "active_dir", lambda: tmp_path)  # JAX pointed at a folder derivcheck did not mark
    monkeypatch.setattr(_cache, "enable_from_env", lambda: None)
    monkeypatch.delenv(_cache.ENV_OFF, raising=False)
    assert _cache.store() is None
    (tmp_path / _cache.MARKER).touch()
    assert _cache.store() == tmp_path
    monkeypatch.setenv(_cache.ENV_OFF, "1")
    assert _cache.store() is None


def test_an_unreadable_statement_is_not_stored(store):
    with pytest.raises(dc.LatexError):
        _grammar.parse(_grammar.normalize(r"\frac{\partial J}{\partial w} = = ("))
    assert not list(store.iterdir())
