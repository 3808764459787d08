"""The presentation layer: every text, table, file and page made from the records of a check.

* :mod:`.text` — the one copy of a failure's account and of number formatting;
* :mod:`.replay` — :class:`~.replay.Replay`, the one record every printed command comes from;
* :mod:`.json`, :mod:`.junit`, :mod:`.markdown` — the report files of ``derivcheck run``;
* :mod:`.table` — the terminal table; :mod:`.html` — Jupyter's HTML; :mod:`.explain` — ``derivcheck explain``.

These modules render records; none runs a check (they never import the
orchestration, :mod:`derivcheck._api`). Importing this package imports none
of them, so a low module (the shrink, for its replay) can take one alone.
"""
