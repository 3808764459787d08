"""The built-in catalog: every result of the notes in ``shared/notes``, as written.

Each topic module registers its derivations through the public API only, as a
user's file would. Importing this package imports every topic module (every
submodule whose name does not start with ``_``), the ``latex_*`` modules last
(they import the topics they read, which must register in their own order);
``derivcheck`` finds the package through the ``derivcheck.derivations`` entry point.
"""

import importlib
import pkgutil

TOPICS = tuple(
    importlib.import_module(f"{__name__}.{info.name}")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: (i.name.startswith("latex_"), i.name))
    if not info.name.startswith("_")
)

__all__ = ["TOPICS"]
