"""The registry: default names of loaded files, origins, the scoped default registry."""

import textwrap

import derivcheck as dc
from derivcheck._registry import load

DECL = textwrap.dedent(
    """
    import jax.numpy as jnp
    import derivcheck as dc

    @dc.gradient(of=lambda x: jnp.sum(x ** 2), inputs=dc.inputs(x=dc.normal("n")))
    def square_grad(x):
        return 2 * x
    """
)


def test_a_loaded_file_names_its_derivations_after_its_stem(fresh_default_registry, tmp_path):
    path = tmp_path / "my_derivations.py"
    path.write_text(DECL)
    assert [d.name for d in load(str(path))] == ["my_derivations.square_grad"]


def test_two_files_with_one_basename_are_both_kept(fresh_default_registry, tmp_path):
    """Same stem, same line, different folders: the second is a loud duplicate, never silently dropped."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mine.py").write_text(DECL)
        load(str(tmp_path / folder / "mine.py"))
    names = fresh_default_registry.names()
    assert names[0] == "mine.square_grad"
    assert len(names) == 2 and names[1].startswith("mine.square_grad#duplicate@mine.py:")
    dup = fresh_default_registry[names[1]]
    assert "duplicate name 'mine.square_grad'" in dup.problem and str(tmp_path / "a") in dup.problem


def test_scoped_registry_keeps_declarations_inside_the_block():
    with dc.scoped_registry() as reg:

        @dc.gradient(of=lambda x: x.sum(), inputs=dc.inputs(x=dc.normal("n")), name="scoped.only")
        def ones(x):
            return x * 0 + 1

        assert dc.registry() is reg and reg.names() == ["scoped.only"]
    assert "scoped.only" not in dc.registry()
    assert "softmax_ce.gradient" in dc.registry()  # the installed derivations are still there


def test_names_and_sources_a_terminal_could_misread_are_declaration_errors(reg):
    spec = dc.inputs(x=dc.normal("n"))

    def grad(x):
        return 2 * x

    bad_name = dc.gradient(of=lambda x: (x**2).sum(), inputs=spec, name="evil\x1b[31m\n", registry=reg)(grad)
    assert "name= must be printable text" in bad_name.problem and bad_name.name == "evil\\x1b[31m\\n"
    bad_source = dc.gradient(of=lambda x: (x**2).sum(), inputs=spec, source=42, name="src", registry=reg)(grad)
    assert bad_source.problem == "source= must be a string, got 42" and bad_source.source == "42"
    assert dc.check(bad_source, trials=4).outcome == "error"


def test_check_names_the_fix_for_an_undecorated_function():
    import pytest

    with pytest.raises(TypeError, match="decorate the function first"):
        dc.check(lambda x: 2 * x)


def test_check_finds_the_derivation_under_pytest_marks_placed_above_its_decorator(reg):
    """``@pytest.mark.slow`` over ``@dc.gradient``, as the README allows, leaves a mark decorator holding
    the derivation: dc.check of the module's attribute said "decorate the function first"."""
    import jax.numpy as jnp
    import pytest

    @pytest.mark.slow
    @pytest.mark.parametrize("unused", [1])
    @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="marked")
    def marked(x):
        return 2 * x

    assert not isinstance(marked, dc.Derivation)
    assert dc.check(marked, trials=8).outcome == "holds"
