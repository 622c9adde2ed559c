"""Stop badges: one look per StopKind, in a large form (token view) and a small one (chat, status)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.style import Style
from rich.text import Text

from tui.core.text import one_line
from tui.engine.events import StopKind, StopReason


@dataclass(frozen=True, slots=True)
class BadgeLook:
    """How a stop kind is drawn."""

    icon: str
    title: str
    block: str
    """Background colour of the large badge."""
    color: str
    """Text colour of the small badge and of the large badge's detail (readable on a dark background)."""


BADGE_LOOKS: dict[StopKind, BadgeLook] = {
    StopKind.EOS: BadgeLook("■", "END OF SEQUENCE", "#2e7d32", "#66bb6a"),
    StopKind.MAX_TOKENS: BadgeLook("✂", "MAX NEW TOKENS", "#b26a00", "#ffb300"),
    StopKind.STOP_STRING: BadgeLook("◆", "STOP STRING", "#1565c0", "#64b5f6"),
    StopKind.CONTEXT_FULL: BadgeLook("▣", "CONTEXT FULL", "#7b1fa2", "#ce93d8"),
    StopKind.CANCELLED: BadgeLook("✕", "CANCELLED", "#616161", "#bdbdbd"),
    StopKind.ERROR: BadgeLook("!", "ERROR", "#c62828", "#ef5350"),
}


def safe_reason(stop: StopReason) -> StopReason:
    """``stop`` with every model- or engine-provided string made safe to show on one line."""
    return replace(
        stop,
        token_text=one_line(stop.token_text, 40) if stop.token_text is not None else None,
        stop_string=one_line(stop.stop_string, 40) if stop.stop_string is not None else None,
        message=one_line(stop.message, 160) if stop.message is not None else None,
    )


def badge_detail(stop: StopReason) -> str:
    """The detail shown after the badge title, e.g. ``<|im_end|>`` or ``stopped at 100/100``."""
    safe = safe_reason(stop)
    match safe.kind:
        case StopKind.EOS:
            return safe.token_text or "end-of-generation token"
        case StopKind.MAX_TOKENS:
            return f"stopped at {safe.generated}/{safe.limit}"
        case StopKind.STOP_STRING:
            return repr(safe.stop_string)
        case StopKind.CONTEXT_FULL:
            return f"{safe.limit} tokens used"
        case StopKind.CANCELLED:
            return f"after {safe.generated or 0} tokens"
        case StopKind.ERROR:
            return safe.message or "unknown error"
    raise AssertionError(safe.kind)  # pragma: no cover


def large_badge(stop: StopReason) -> Text:
    """The badge at the end of the token view: icon, TITLE and detail on a coloured block."""
    look = BADGE_LOOKS[stop.kind]
    text = Text()
    text.append(f" {look.icon} {look.title} ", Style(color="white", bgcolor=look.block, bold=True))
    text.append(f" {badge_detail(stop)} ", Style(color=look.color, bold=True))
    return text


def small_badge(stop: StopReason) -> Text:
    """The small badge under a chat message and in the status bar: icon and label, coloured."""
    look = BADGE_LOOKS[stop.kind]
    return Text(f"{look.icon} {safe_reason(stop).label()}", Style(color=look.color, bold=True))
