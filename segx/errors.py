"""The exception type for user errors: the CLI turns it into one `segx: error: ...` line and exit 1."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class SegxError(Exception):
    """A problem the user can fix (bad path, unknown name, corrupt file). Message is one line."""


def unknown_choice(kind: str, name: str, choices: Iterable[str]) -> SegxError:
    """Build the error for an unknown name, with the closest valid name and the full list."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return SegxError(f"unknown {kind} '{name}'{hint}; choose from: {', '.join(choices)}")
