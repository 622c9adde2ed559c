"""Branches: the alternative continuations of a reply position, and which one is shown (no Textual).

Branching continues a reply from another candidate token: the reply's tokens before that position
plus the alternative become the new reply's fixed start; the old continuation stays as a sibling.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from tui.core.reply import ReplyRecord
from tui.engine.events import TokenEvent


@dataclass
class BranchSet:
    """The alternative continuations of one reply position: siblings, and which one is shown."""

    records: list[ReplyRecord]
    active: int = 0
    branched_at: dict[int, int] = field(default_factory=dict)
    """reply id -> index of the token the user picked where that sibling branched off."""

    def label(self, reply_id: int) -> str:
        """e.g. ``branch 2/3``."""
        ids = [r.reply_id for r in self.records]
        return f"branch {ids.index(reply_id) + 1}/{len(ids)}" if reply_id in ids else ""

    def ordinal(self, reply_id: int) -> int:
        """The place of reply ``reply_id`` among the siblings (0-based)."""
        return [r.reply_id for r in self.records].index(reply_id)


@dataclass
class BranchBook:
    """Every BranchSet of a conversation, by the id of its first reply."""

    sets: dict[int, BranchSet] = field(default_factory=dict)
    slot_of: dict[int, int] = field(default_factory=dict)
    """reply id -> the key of its BranchSet."""

    def set_of(self, reply_id: int) -> BranchSet | None:
        """The BranchSet a reply belongs to (None: never branched)."""
        slot = self.slot_of.get(reply_id)
        return self.sets.get(slot) if slot is not None else None

    def add(self, original: ReplyRecord, branch: ReplyRecord, at: int) -> BranchSet:
        """Record ``branch`` as a new sibling of ``original`` (branched at token ``at``) and show it."""
        slot = self.slot_of.setdefault(original.reply_id, original.reply_id)
        siblings = self.sets.setdefault(slot, BranchSet([original]))
        siblings.records.append(branch)
        siblings.active = len(siblings.records) - 1
        siblings.branched_at[branch.reply_id] = at
        self.slot_of[branch.reply_id] = slot
        return siblings

    def restore(self, records: list[ReplyRecord], active: int, branched_at: dict[int, int]) -> BranchSet:
        """Put back a BranchSet saved with a chat (``records`` in order, ``active`` the one shown)."""
        slot = records[0].reply_id
        siblings = BranchSet(records, active, branched_at)
        self.sets[slot] = siblings
        for record in records:
            self.slot_of[record.reply_id] = slot
        return siblings

    def keep_only(self, reply_ids: set[int]) -> None:
        """Forget every BranchSet none of whose replies is in ``reply_ids`` (the conversation's)."""
        for slot, siblings in list(self.sets.items()):
            if not any(r.reply_id in reply_ids for r in siblings.records):
                del self.sets[slot]
                for record in siblings.records:
                    self.slot_of.pop(record.reply_id, None)

    def clear(self) -> None:
        """A new chat: forget every branch."""
        self.sets.clear()
        self.slot_of.clear()


def branch_event(event: TokenEvent, token_id: int) -> TokenEvent:
    """The TokenEvent for picking candidate ``token_id`` at ``event``'s step instead of what was drawn."""
    candidate = next((c for c in event.candidates if c.token_id == token_id), None)
    if candidate is None:
        raise ValueError(f"token {token_id} is not a candidate of token #{event.index}")
    return dataclasses.replace(
        event,
        token_id=token_id,
        text=candidate.text,
        piece=candidate.text,
        p_raw=candidate.p_raw,
        p_final=candidate.p_final,
        elapsed_ms=0.0,
    )
