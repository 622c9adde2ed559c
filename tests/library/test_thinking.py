"""Splitting a reply's thinking section off, and the folded widget that shows it."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

from tui.library.card import declared_think_tags
from tui.library.thinking import prompt_opens_thinking, split_thinking, tokens_in_section
from tui.widgets.thinking import ThinkingSection

TCSS = Path(__file__).resolve().parents[2] / "tui" / "app.tcss"


def test_a_reply_that_opens_with_think() -> None:
    split = split_thinking("<think>\nfirst, 2+2\n</think>\n\nIt is 4.")
    assert (split.thinking, split.answer, split.closed) == ("\nfirst, 2+2\n", "It is 4.", True)
    assert split.end == len("<think>\nfirst, 2+2\n</think>")


def test_still_thinking_while_streaming() -> None:
    split = split_thinking("  <think>let me see")
    assert (split.thinking, split.answer, split.closed) == ("let me see", "", False)


def test_no_section_and_other_markers() -> None:
    assert split_thinking("Just an answer <think> in the middle").thinking is None
    assert split_thinking("<|begin_of_thought|>hmm<|end_of_thought|>yes").thinking == "hmm"


def test_a_template_that_opens_the_section_itself() -> None:
    assert prompt_opens_thinking("<|im_start|>assistant\n<think>\n")
    split = split_thinking("reasoning...</think>answer", starts_inside=True)
    assert (split.thinking, split.answer) == ("reasoning...", "answer")
    assert split_thinking("reasoning...</think>answer").thinking is None


def test_declared_markers_come_from_the_template() -> None:
    assert declared_think_tags("{{ '<think>' }}...{{ '</think>' }}") == ("<think>", "</think>")
    assert declared_think_tags("{{ messages }}") is None and declared_think_tags(None) is None


def test_token_count_of_the_section() -> None:
    pieces = ["<think>", "\n", "a", " b", "</think>", "\n", "Yes", "."]
    split = split_thinking("".join(pieces))
    assert tokens_in_section(pieces, split.end) == 5


class Host(App[None]):
    CSS_PATH = TCSS

    def __init__(self, hidden: bool = False) -> None:
        super().__init__()
        self.hidden = hidden

    def compose(self) -> ComposeResult:
        yield ThinkingSection(hidden=self.hidden, id="thinking")


async def test_the_widget_folds_and_opens_on_a_key() -> None:
    app = Host()
    pieces = ["<think>", "secret", " plan", "</think>", "Hi"]
    async with app.run_test() as pilot:
        section = app.query_one(ThinkingSection)
        section.show_split(split_thinking("".join(pieces)), pieces)
        await pilot.pause()
        assert section.display and str(section.render()) == "▸ thinking · 4 tokens"
        section.focus()
        await pilot.press("t")
        assert section.opened and "secret plan" in str(section.render())
        await pilot.press("enter")
        assert not section.opened and "secret" not in str(section.render())


async def test_hide_thinking_leaves_it_out() -> None:
    app = Host(hidden=True)
    async with app.run_test() as pilot:
        section = app.query_one(ThinkingSection)
        section.show_split(split_thinking("<think>x</think>y"), ["<think>", "x", "</think>", "y"])
        await pilot.pause()
        assert not section.display and section.tokens == 3
