"""The command's standard output: lines that survive a reader who stops reading.

``derivcheck run --all | head -1`` closes the pipe after one line; every later
write would raise ``BrokenPipeError`` and abort the run before its reports
are written. :class:`Screen` stops printing instead (standard output is
pointed at ``/dev/null``, so Python's own flush at exit is quiet too) and the
run goes on: it finishes, writes its reports and exits with its own status.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

from derivcheck._report.text import printable

_GONE = (errno.EPIPE, errno.EBADF, errno.EINVAL)  # a closed pipe, a closed or invalid descriptor


class Screen:
    """A rich ``Console`` on standard output whose writes stop, silently, once the reader has gone."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.gone = False

    @property
    def is_terminal(self) -> bool:
        return bool(self.console.is_terminal) and not self.gone

    @property
    def width(self) -> int:
        return int(self.console.width)

    def print(self, renderable: Any) -> None:
        """Print a rich renderable (a table)."""
        self._guarded(lambda: self.console.print(renderable))

    def line(self, text: str) -> None:
        """Print one line of plain text as it is (no markup, no wrapping), control characters escaped."""

        def write() -> None:
            stream = self.console.file
            stream.write(printable(text) + "\n")
            stream.flush()

        self._guarded(write)

    def _guarded(self, write: Any) -> None:
        if self.gone:
            return
        try:
            write()
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            self._lose_stdout()

    def _lose_stdout(self) -> None:
        """The reader has gone: print nothing more, and let Python's flush at exit find ``/dev/null``."""
        self.gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real descriptor (captured in tests)
            pass
