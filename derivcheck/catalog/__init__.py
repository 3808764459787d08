"""The built-in catalog: every result of the notes in ``shared/notes``, as written.

Each topic module registers its derivations through the public API only, as a
user's file would. Importing this package registers them all; ``derivcheck``
finds it through the ``derivcheck.derivations`` entry point.
"""

from derivcheck.catalog import logistic_regression, softmax_cross_entropy

TOPICS = (logistic_regression, softmax_cross_entropy)

__all__ = ["TOPICS"]
