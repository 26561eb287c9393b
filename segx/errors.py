"""The exception type for user errors: the CLI turns it into one `segx: error: ...` line and exit 1."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class SegxError(Exception):
    """A problem the user can fix (bad path, unknown name, corrupt file). Message is one line."""


def unknown_choice(kind: str, name: str, choices: Iterable[str]) -> SegxError:
    """Build the error for an unknown name, with the names it may mean and the full list."""
    choices = sorted(choices)
    close = close_choices(name, choices)
    hint = ""
    if len(close) == 1:
        hint = f" (did you mean '{close[0]}'?)"
    elif close:
        hint = f" (did you mean one of {', '.join(repr(c) for c in close)}?)"
    return SegxError(f"unknown {kind} '{name}'{hint}; choose from: {', '.join(choices)}")


def close_choices(name: str, choices: Iterable[str]) -> list[str]:
    """The choices `name` may mean: those it starts (or starts a `_`/`-` separated word of), else the closest
    spelling (difflib)."""
    choices = sorted(choices)
    key = name.lower()
    if key:
        prefixed = [c for c in choices if any(word.startswith(key) for word in _suffixes(c.lower()))]
        if prefixed:
            return prefixed
    return difflib.get_close_matches(name, choices, n=1, cutoff=0.5)


def _suffixes(text: str) -> list[str]:
    """`text` and every tail of it that starts after a `_` or `-`."""
    return [text] + [text[i + 1:] for i, ch in enumerate(text) if ch in "_-"]
