"""Say where in the formula: a search for the edit of a failing derivation's source that makes it hold.

A failing derivative claim is diagnosed at the level of its output (a sign,
a factor, a transpose); most mistakes sit inside the formula. This package
edits the derived function's source — single edits from a catalogue of
hand-derivation errors (:mod:`derivcheck._repair._edits`), pairs where one
edit gets close — screens the edited functions cheaply against reference
values computed once, and confirms the best by a real check on a fresh seed
(:mod:`derivcheck._repair._search`). A :class:`Suggestion` is shown only
once that check holds. The orchestration (:mod:`derivcheck._api`) attaches
the :class:`Repair` to a Result and lets a confirmed suggestion name the
place in the diagnosis (:func:`diagnosis_from`).
"""

from derivcheck._repair._record import Change as Change
from derivcheck._repair._record import Repair as Repair
from derivcheck._repair._record import Suggestion as Suggestion
from derivcheck._repair._record import diagnosis_from as diagnosis_from
from derivcheck._repair._search import NO_EDIT as NO_EDIT
from derivcheck._repair._search import SUGGEST_SECONDS as SUGGEST_SECONDS
from derivcheck._repair._search import enabled as enabled
from derivcheck._repair._search import search as search
