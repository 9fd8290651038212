"""The console that command output is printed to."""

from __future__ import annotations

import sys

from rich.console import Console


class StdoutConsole(Console):
    """stdout for command output: a reader that goes away (``mmbench list | head``) ends the
    command quietly with status 0 (``mmbench.cli.main`` handles the ``BrokenPipeError``), and
    pipes and files get whole lines instead of an 80-column wrap."""

    def __init__(self, min_pipe_width: int = 200) -> None:
        super().__init__(file=sys.stdout)
        if not self.is_terminal:
            self.width = max(self.width, min_pipe_width)

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError
