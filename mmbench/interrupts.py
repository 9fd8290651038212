"""SIGTERM handled like Ctrl-C.

Slurm (and most schedulers) send SIGTERM some time before killing a job. Python's default is to
die at once with status 143 and no message; mmbench instead raises :class:`Terminated` (a
``KeyboardInterrupt``) in the main thread, so a run stops exactly as on Ctrl-C: the last completed
epoch stays checkpointed, one line says how to ``--resume``, and the exit status is 143.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

SIGINT_EXIT = 130
SIGTERM_EXIT = 143


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


_received: list[int] = []


def _on_sigterm(signum: int, frame: Any) -> None:  # noqa: ARG001
    if _received:  # a second SIGTERM (a scheduler signalling every process, then the sweep) must not
        return     # interrupt the handling of the first, e.g. a checkpoint being written
    _received.append(signum)
    raise Terminated


def install() -> None:
    """Turn SIGTERM into :class:`Terminated` (main thread only; elsewhere signals cannot be set)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def describe() -> str:
    """How the process was interrupted, for the one-line message."""
    return "terminated (SIGTERM)" if _received else "interrupted"


def exit_code() -> int:
    return SIGTERM_EXIT if _received else SIGINT_EXIT
