"""User-facing errors.

An :class:`MMBenchError` carries one line that says what is wrong and how to fix it. The CLI prints
it without a traceback (unless ``--debug``) and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MMBenchError(Exception):
    """An error caused by the user's input or environment, with a one-line explanation."""


ECHO_LIMIT = 80


def echo(text: object, limit: int = ECHO_LIMIT) -> str:
    """User input quoted for an error message: control characters escaped, at most ``limit``
    characters (a 100 KB value is not echoed whole)."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    if len(shown) > limit:
        shown = f"{shown[:limit]}… ({len(shown) - limit} more characters)"
    return f"'{shown}'"


def one_line(message: str, limit: int = 2000) -> str:
    """A message as one printable line: control characters escaped, at most ``limit`` characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    return shown if len(shown) <= limit else f"{shown[:limit]}… ({len(shown) - limit} more characters)"


def unknown_name_error(kind: str, name: str, known: Iterable[str], hint: str = "") -> MMBenchError:
    """Build the error for an unknown method/task/dataset name, suggesting the closest one."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5) if len(name) <= 200 else []
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    listing = hint or f"Known {kind}s: {', '.join(known) or '(none)'}."
    return MMBenchError(f"unknown {kind} {echo(name)}.{suggestion} {listing}")
