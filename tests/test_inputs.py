"""Input specs: declaration errors name what to fix."""

import pytest

import derivcheck as dc


def test_a_dims_key_that_is_no_dimension_is_an_error():
    with pytest.raises(dc.InputSpecError, match=r"\['N'\] is no dimension of the inputs \(they use \['n'\]\)"):
        dc.inputs(x=dc.normal("n"), dims={"N": 3})
    with pytest.raises(dc.InputSpecError, match="did you mean 'classes'"):
        dc.inputs(y=dc.one_hot("m", classes="classes"), dims={"clases": 3})
    assert dc.inputs(x=dc.normal("n", "C"), dims={"C": 2}).names == ("x",)
