"""Test doubles for the inspector: the FakeEngine in branching mode, and the lecture's script."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.fakes import FakeEngine, ScriptedToken

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


@dataclass
class BranchingFake(FakeEngine):
    """The FakeEngine in branching mode: ``script`` for a new reply, ``branch_script`` after the
    fixed tokens of a branch (the same loop, rules and simulated KV cache)."""

    branch_script: Sequence[str | ScriptedToken] | None = BRANCH_SCRIPT
