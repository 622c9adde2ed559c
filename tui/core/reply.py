"""What the conversation keeps about one assistant reply: its TokenEvents, parameter versions and end."""

from __future__ import annotations

from dataclasses import dataclass, field

from settings.sampling import SamplingParams
from tui.engine.events import ReplyDone, TokenEvent


@dataclass
class ReplyRecord:
    """One assistant reply: every TokenEvent (with its candidates), the parameter versions, the end."""

    reply_id: int
    events: list[TokenEvent] = field(default_factory=list)
    params_by_version: dict[int, SamplingParams] = field(default_factory=dict)
    """Every live parameter version the app set, so that a change can be described mid-reply."""
    prompt_tokens: int = 0
    """Tokens in the formatted prompt (known when the reply ends)."""
    done: ReplyDone | None = None
    fixed_tokens: int = 0
    """Tokens fixed before generation started (a branch: the old reply's tokens up to the picked one)."""

    @property
    def streamed_text(self) -> str:
        """The text of the tokens received so far."""
        return "".join(event.text for event in self.events)

    @property
    def finished(self) -> bool:
        """True once the ReplyDone arrived."""
        return self.done is not None

    def params_change(self, index: int) -> tuple[SamplingParams | None, SamplingParams | None] | None:
        """(old, new) parameters if token ``index`` was produced by a different version than the one before.

        Either side is None when that version is unknown to the app.
        """
        if index <= 0 or index >= len(self.events):
            return None
        before = self.events[index - 1].params_version
        after = self.events[index].params_version
        if before == after:
            return None
        known = dict(self.params_by_version)
        if self.done is not None:
            known.update(self.done.params)
        return known.get(before), known.get(after)


def describe_change(old: SamplingParams | None, new: SamplingParams | None) -> str:
    """A short description of what changed between two parameter sets, e.g. ``temperature 0.8→1.5``."""
    if old is None or new is None:
        return "params changed"
    parts: list[str] = []
    for name in SamplingParams.model_fields:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            parts.append(f"{name.replace('_', ' ')} {_short(before)}→{_short(after)}")
    return ", ".join(parts) if parts else "params changed"


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return str(value)
