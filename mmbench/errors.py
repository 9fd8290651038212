"""User-facing errors.

An :class:`MMBenchError` carries one line that says what is wrong and how to fix it. The CLI prints
it without a traceback (unless ``--debug``) and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MMBenchError(Exception):
    """An error caused by the user's input or environment, with a one-line explanation."""


def unknown_name_error(kind: str, name: str, known: Iterable[str], hint: str = "") -> MMBenchError:
    """Build the error for an unknown method/task/dataset name, suggesting the closest one."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    listing = hint or f"Known {kind}s: {', '.join(known) or '(none)'}."
    return MMBenchError(f"unknown {kind} '{name}'.{suggestion} {listing}")
