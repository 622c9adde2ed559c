"""The help screen: what each sampling parameter does, in a sentence, and the keys (the command table's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from tui.commands import current_keys, help_keys_markdown

HELP_TEXT = """\
# How the next token is picked

At every step the model gives each token in its vocabulary a score (a *logit*); a softmax turns
the scores into probabilities, the samplers below reshape or cut that distribution, and one token
is drawn from what is left.

| Parameter | What it does |
|---|---|
| **greedy** | Always takes the single most likely token: deterministic, and prone to repeating itself. |
| **temperature** | Reshapes the distribution: below 1 sharpens it toward the top, above 1 flattens it. |
| **top-k** | Keeps only the k most likely tokens and drops the rest (0 = off). |
| **top-p** | Keeps the smallest set of top tokens whose probabilities add up to p (a cumulative mass). |
| **min-p** | Drops every token less likely than min-p times the most likely one (0 = off). |
| **typical-p** | Keeps the tokens whose surprise is closest to the average, up to a mass p (1 = off). |
| **top-n-sigma** | Keeps only tokens whose score is within n standard deviations of the best one (0 = off). |
| **XTC** | Now and then removes every token above its threshold except the least likely one. |
| **repeat penalty** | Makes tokens used in the last n tokens (64 by default) less likely (1 = off). |
| **presence / frequency** | Lowers a recent token's score: once (presence), or once per use (frequency). |
| **DRY** | Penalises a token that would repeat a phrase once more, harder for longer repeats. |
| **dynamic temperature** | Raises the temperature when the model is unsure, lowers it when sure (± range). |
| **mirostat** | Aims for a steady surprise (tau, at speed eta) and replaces the cut-off samplers. |
| **logit bias** | Adds a fixed amount to one token's score; a ban (-inf) means it can never be picked. |
| **grammar / JSON schema** | Only tokens that keep the reply inside the grammar (or schema) may be picked. |
| **order** | The samplers run top to bottom: each one only sees what the ones above it left. |
| **max new tokens** | A cap on the reply's length, not a target: the reply stops there even mid-sentence. |
| **seed** | Fixes the random draws so a reply can be reproduced; -1 picks a new seed each time. |
| **stop strings** | The reply ends as soon as one of them appears (comma-separated, `\\n` for a new line). |

A change in the panel applies from the **next token** of the reply being written; the token view
marks the spot with ⚙. Greedy mode still applies the logit bias, the grammar and the penalties,
then takes the most likely token that is left.

# Why a reply stopped

| Badge | Meaning |
|---|---|
| ■ END OF SEQUENCE | The model itself emitted its end token (e.g. `<\\|im_end\\|>`): it was done. |
| ✂ MAX NEW TOKENS | The reply hit the max-new-tokens cap: it was cut, not finished. |
| ◆ STOP STRING | One of your stop strings appeared. |
| ▣ CONTEXT FULL | Prompt and reply filled the context window. |
| ✕ CANCELLED | You pressed Esc; the partial reply is kept. |
| ! ERROR | Generation failed; the message says why. |

"""

BRANCH_NOTE = """\
Branching from an **earlier** reply (not the last) asks first, then **removes the turns after it** from
the chat for good: they answered the old reply, so they are not kept (the old reply itself stays as a
branch). Export the chat first to keep a copy.
"""


class HelpScreen(ModalScreen[None]):
    """Explains the parameters, the stop badges and the keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", id="help.close", tooltip="Close the help"),
        Binding("f1", "dismiss", "Close", show=False, id="help.close_f1", tooltip="Close the help"),
        Binding("q", "dismiss", "Close", show=False, id="help.close_q", tooltip="Close the help"),
    ]

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._keys = keys if keys is not None else current_keys({})
        """Binding id -> its key now (the keymap applied), for the key list."""

    def compose(self) -> ComposeResult:
        """The help text in a scrollable box; the key list from the command table."""
        text = f"{HELP_TEXT}\n# Keys\n\n{help_keys_markdown(self._keys)}\n\n{BRANCH_NOTE}"
        with VerticalScroll(id="help-box"):
            yield Markdown(text, open_links=False)
