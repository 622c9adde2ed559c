"""Model output is untrusted: make it safe to show in a terminal.

Everything the model writes goes through :func:`clean` (for Markdown and labels) or
:func:`token_display` (for the token view) and is put on screen as a ``rich.text.Text`` or
Markdown source, never as a markup string, so ``[bold]`` or ``[@click=...]`` shows literally.
Control characters (ANSI/OSC escape sequences included) are replaced by visible stand-ins.
"""

from __future__ import annotations

import re

# C0 controls except \t and \n, DEL, C1 controls, and the bidi/format overrides.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code == 0x1B:
        return "␛"
    if code == 0x0D:
        return "␍"
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ ␁ ...
    if code == 0x7F:
        return "␡"
    return f"\\u{code:04x}"


def has_control(text: str) -> bool:
    """True if ``text`` holds a character that :func:`clean` would replace."""
    return _CONTROL.search(text) is not None


def clean(text: str) -> str:
    """``text`` with every control character (except tab and newline) made visible and inert."""
    return _CONTROL.sub(_visible, text)


def one_cell(text: str) -> str:
    """``text`` with each control character replaced by one visible character (the same length).

    For views that keep a character-to-cell mapping (a text area's cursor): C0 controls become
    Control Pictures (␛ ␇ ...), DEL ␡, C1 controls and bidi overrides ⍰.
    """

    def visible(match: re.Match[str]) -> str:
        code = ord(match.group())
        if code < 0x20:
            return chr(0x2400 + code)
        return "␡" if code == 0x7F else "⍰"

    return _CONTROL.sub(visible, text)


def one_line(text: str, limit: int = 200) -> str:
    """``clean(text)`` on one line (newlines shown as ↵), cut to ``limit`` characters."""
    flat = clean(text).replace("\n", "↵").replace("\t", "→")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def token_display(text: str) -> list[tuple[str, bool]]:
    """Split a token's text into (fragment, is_whitespace_marker) parts for the token view.

    Spaces become ``␣``, tabs ``→``, newlines ``↵`` followed by a real line break; markers are
    flagged so that the view can draw them faintly. An empty token shows as ``∅``.
    """
    if text == "":
        return [("∅", True)]
    parts: list[tuple[str, bool]] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            parts.append((clean("".join(plain)), False))
            plain.clear()

    for char in text:
        if char == " ":
            flush()
            parts.append(("␣", True))
        elif char == "\t":
            flush()
            parts.append(("→", True))
        elif char == "\n":
            flush()
            parts.append(("↵\n", True))
        else:
            plain.append(char)
    flush()
    return parts
