"""What an eigenvalue count says about definiteness: shared by the check and its diagnosis.

An eigenvalue is *positive* above the margin, *negative* below minus the
margin, and zero (at the check's precision) in between; :func:`classify` names
the strongest definiteness such a count supports.
"""

from __future__ import annotations


def classify(n_pos: int, n_neg: int, n: int) -> str:
    """The strongest definiteness an eigenvalue count supports.

    >>> classify(3, 0, 3), classify(2, 0, 3), classify(1, 1, 3), classify(0, 0, 3)
    ('pd', 'psd', 'indefinite', 'zero')
    """
    if n_pos == n:
        return "pd"
    if n_neg == n:
        return "nd"
    if n_pos == 0 and n_neg == 0:
        return "zero"
    if n_neg == 0:
        return "psd"
    if n_pos == 0:
        return "nsd"
    return "indefinite"
