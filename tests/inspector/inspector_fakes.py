"""Test doubles for the inspector: a FakeEngine that honours ``continue_from`` with a simulated KV cache."""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from fakes import EOS_ID, EOS_TEXT, FakeEngine, ScriptedToken

from settings.sampling import SamplingParams
from tui.engine.events import (
    Candidate,
    ChatMessage,
    EngineEvent,
    PromptProgress,
    ReplyDone,
    StopKind,
    StopReason,
    TokenEvent,
)
from tui.engine.live import LiveParams

# The lecture figure: "I had a slice of ..." cake 0.20, donut 0.10, banana 0.02, ...
CAKE = ScriptedToken(
    " cake",
    0.20,
    ((" donut", 0.10), (" banana", 0.02), (" bread", 0.015), (" pie", 0.01), (" [bold]x[/]", 0.004)),
)
LECTURE_SCRIPT: tuple[str | ScriptedToken, ...] = (
    ScriptedToken("I", 0.9, ((" The", 0.05), ("\n", 0.02))),
    ScriptedToken(" had", 0.6, ((" ate", 0.3), (" love", 0.05))),
    ScriptedToken(" a", 0.7, ((" some", 0.2), (" the", 0.05))),
    ScriptedToken(" slice", 0.5, ((" piece", 0.4), (" bit", 0.05))),
    ScriptedToken(" of", 0.95, ((" from", 0.03),)),
    CAKE,
    ScriptedToken(".", 0.8, (("!", 0.15), ("\x1b[31m", 0.01))),
)
BRANCH_SCRIPT: tuple[str | ScriptedToken, ...] = (
    ScriptedToken(" with", 0.5, ((" and", 0.3),)),
    ScriptedToken(" cream", 0.7, ((" jam", 0.2),)),
    ScriptedToken(".", 0.9, (("!", 0.05),)),
)


def _ids(text: str) -> list[int]:
    return [zlib.crc32(word.encode()) % 40_000 + 5_000 for word in text.split()]


@dataclass
class BranchingFake(FakeEngine):
    """Plays ``script`` for a new reply and ``branch_script`` after fixed tokens (a branch).

    Token ids are unique per (position, rank); a simulated KV cache keeps the last evaluated
    sequence, so ``prompt_evaluated`` counts only what follows the common prefix, like the engine.
    """

    branch_script: Sequence[str | ScriptedToken] = BRANCH_SCRIPT
    cache: list[int] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    continued: list[tuple[int, ...]] = field(default_factory=list)
    """The ``continue_from`` of every call."""

    def _prompt_ids(self, messages: Sequence[ChatMessage], raw: bool = False) -> list[int]:
        if raw:  # text completion: BOS and the joined text, no template
            return [1, *_ids("".join(message.content for message in messages))]
        ids = [1]
        for message in messages:
            ids += [3, 4, 5, *_ids(message.content)]
        return [*ids, 3, 4, 5]

    def _step_candidates(
        self, tok: ScriptedToken, index: int, params: SamplingParams
    ) -> tuple[Candidate, ...]:
        chosen_id = 100 + index * 10
        base = self._candidates(tok, chosen_id, params)
        out = []
        for cand in base:
            token_id = cand.token_id if cand.token_id == chosen_id else chosen_id + 1 + cand.token_id - 1000
            self.texts[token_id] = cand.text
            out.append(Candidate(token_id, cand.text, cand.logit, cand.p_raw, cand.p_final, cand.cut_by))
        return tuple(out)

    def stream_reply(
        self,
        messages: Sequence[ChatMessage],
        live: LiveParams,
        cancel: threading.Event,
        *,
        continue_from: Sequence[int] = (),
        raw: bool = False,
    ) -> Iterator[EngineEvent]:
        """Generate (see the class docstring); always ends with one ReplyDone."""
        self.calls.append(tuple(messages))
        self.continued.append(tuple(continue_from))
        fixed = list(continue_from)
        prompt = self._prompt_ids(messages, raw)
        full = prompt + fixed
        common = 0
        for a, b in zip(self.cache, full[:-1], strict=False):
            if a != b:
                break
            common += 1
        evaluated = len(full) - common
        yield PromptProgress(evaluated, evaluated)
        script = self.branch_script if fixed else self.script
        ids = list(fixed)
        text = "".join(self.texts.get(t, "?") for t in fixed)
        versions: dict[int, SamplingParams] = {}
        stop: StopReason | None = None
        seed = 0
        position = 0
        while stop is None:
            if cancel.is_set():
                stop = StopReason(StopKind.CANCELLED, generated=len(ids))
                break
            version, params = live.snapshot()
            versions.setdefault(version, params)
            seed = params.seed if params.seed >= 0 else 1234
            if len(ids) >= params.max_new_tokens:
                stop = StopReason(StopKind.MAX_TOKENS, limit=params.max_new_tokens, generated=len(ids))
                break
            if position >= len(script):
                stop = StopReason(StopKind.EOS, token_id=EOS_ID, token_text=EOS_TEXT, generated=len(ids))
                break
            entry = script[position]
            tok = entry if isinstance(entry, ScriptedToken) else ScriptedToken(entry)
            index = len(ids)
            candidates = self._step_candidates(tok, index, params)
            chosen = candidates[[c.text for c in candidates].index(tok.text)]
            entropy = -sum(c.p_raw * math.log2(c.p_raw) for c in candidates if c.p_raw > 0)
            ids.append(chosen.token_id)
            text += tok.text
            position += 1
            yield TokenEvent(
                index, chosen.token_id, tok.text, tok.text, tok.p, chosen.p_final, candidates, entropy,
                version, self.token_ms,
            )  # fmt: skip
        self.cache = prompt + ids
        yield ReplyDone(
            stop=stop,
            text=text,
            token_ids=tuple(ids),
            prompt_tokens=len(prompt),
            prompt_evaluated=evaluated,
            prompt_ms=self.prompt_ms,
            first_token_ms=self.prompt_ms,
            decode_ms=self.token_ms * max(len(ids) - len(fixed) - 1, 0),
            seed=seed,
            params=versions,
        )
