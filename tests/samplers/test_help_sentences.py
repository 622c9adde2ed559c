"""The help screen gives every sampler of the chain one plain sentence, in the lecture's style."""

from __future__ import annotations

import re

from settings.sampling import SamplerName
from tui.screens.help import HELP_TEXT
from tui.widgets.sampling_panel import SAMPLER_LABELS

ROWS = dict(re.findall(r"^\| \*\*(.+?)\*\* \| (.+) \|$", HELP_TEXT, re.M))
HELP_NAME = {**SAMPLER_LABELS, SamplerName.PENALTIES: "repeat penalty"}
"""The help's row for each sampler of the order: the panel's label (the penalties: the repeat penalty's)."""
OUTSIDE_THE_ORDER = (
    "greedy", "presence / frequency", "dynamic temperature", "mirostat", "logit bias",
    "grammar / JSON schema", "order", "seed",
)  # fmt: skip


def test_every_sampler_has_a_row() -> None:
    assert set(HELP_NAME) == set(SamplerName) == set(SAMPLER_LABELS)
    for name in (*HELP_NAME.values(), *OUTSIDE_THE_ORDER):
        assert name in ROWS, f"the help has no row for {name}"


def test_each_row_is_one_plain_sentence() -> None:
    for name, sentence in ROWS.items():
        assert sentence[0].isupper() and sentence.endswith("."), name
        body = sentence[:-1]
        assert not re.search(r"[.!?] [A-Z]", body), f"{name}: more than one sentence"
        assert len(sentence) <= 150, f"{name}: keep it to one plain sentence"
        assert not re.search(r"logit|softmax|entropy", sentence) or name in ("logit bias",), name
