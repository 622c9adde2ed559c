"""Helpers for the conversation-core tests: token events, reply ends, and an observer that records calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from settings.sampling import SamplingParams
from tui.core.branches import BranchSet
from tui.core.comparison import Comparison
from tui.core.reply import ReplyRecord
from tui.engine.events import Candidate, ReplyDone, StopKind, StopReason, TokenEvent


def token(index: int, text: str, *, alternatives: Sequence[str] = ()) -> TokenEvent:
    """A TokenEvent for ``text`` at ``index``; ``alternatives``: other candidates (ids 1000 + i)."""
    chosen = 100 + index
    candidates = [Candidate(chosen, text, 1.0, 0.6, 0.7, None)]
    candidates += [Candidate(1000 + i, alt, 0.5, 0.2, 0.3, None) for i, alt in enumerate(alternatives)]
    return TokenEvent(
        index=index,
        token_id=chosen,
        text=text,
        piece=text,
        p_raw=0.6,
        p_final=0.7,
        candidates=tuple(candidates),
        entropy=0.5,
        params_version=0,
        elapsed_ms=1.0,
    )


def tokens(*texts: str, start: int = 0, alternatives: Sequence[str] = ()) -> tuple[TokenEvent, ...]:
    """One TokenEvent per text, indexed from ``start``."""
    return tuple(token(start + i, text, alternatives=alternatives) for i, text in enumerate(texts))


def done_of(
    events: Sequence[TokenEvent], *, prompt_tokens: int = 10, prompt_evaluated: int | None = None
) -> ReplyDone:
    """An end-of-sequence ReplyDone for a reply of ``events``."""
    return ReplyDone(
        stop=StopReason(StopKind.EOS, token_id=2, token_text="<|im_end|>"),
        text="".join(event.text for event in events),
        token_ids=tuple(event.token_id for event in events),
        prompt_tokens=prompt_tokens,
        prompt_evaluated=prompt_tokens if prompt_evaluated is None else prompt_evaluated,
        prompt_ms=1.0,
        first_token_ms=2.0,
        decode_ms=3.0,
        seed=7,
        params={0: SamplingParams()},
    )


@dataclass
class Recorder:
    """A ConversationObserver that writes down every call, as (name, details)."""

    calls: list[tuple[str, object]] = field(default_factory=list)

    def names(self) -> list[str]:
        """The calls' names, in order."""
        return [name for name, _ in self.calls]

    def prompt_added(self, text: str, params: SamplingParams) -> None:
        self.calls.append(("prompt_added", text))

    def reply_started(self, record: ReplyRecord, params: SamplingParams, version: int) -> None:
        self.calls.append(("reply_started", (record.reply_id, version)))

    def reply_streamed(self, record: ReplyRecord) -> None:
        self.calls.append(("reply_streamed", len(record.events)))

    def reply_finished(
        self, record: ReplyRecord, tokens: Sequence[TokenEvent], siblings: BranchSet | None
    ) -> None:
        ids = [r.reply_id for r in siblings.records] if siblings is not None else None
        self.calls.append(("reply_finished", (record.reply_id, len(tokens), ids)))

    def turns_removed(self, keep: int) -> None:
        self.calls.append(("turns_removed", keep))

    def branch_shown(
        self, record: ReplyRecord, siblings: BranchSet, keep: int, params: SamplingParams, version: int
    ) -> None:
        self.calls.append(("branch_shown", (record.reply_id, keep, version)))

    def params_changed(self, params: SamplingParams) -> None:
        self.calls.append(("params_changed", params.temperature))

    def cleared(self) -> None:
        self.calls.append(("cleared", None))

    def comparison_recorded(self, comparison: Comparison) -> None:
        self.calls.append(("comparison_recorded", len(comparison.columns)))
