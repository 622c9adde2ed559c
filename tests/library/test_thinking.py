"""Splitting a reply's thinking section off, and the folded widget that shows it."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

from tests.library.gguf_files import CHATML, THINKING_TEMPLATE, write_gguf
from tui.library.card import THINK_TAGS, declared_think_tags
from tui.library.thinking import (
    ThinkingStyle,
    marker_may_follow,
    model_thinking_style,
    prompt_opens_thinking,
    split_thinking,
    thinking_style,
    tokens_in_section,
)
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


def test_a_section_the_prompt_opened_is_thinking_until_it_closes() -> None:
    split = split_thinking("still reasoning", starts_inside=True)
    assert (split.thinking, split.answer, split.closed) == ("still reasoning", "", False)


def test_while_streaming_a_marker_may_still_be_coming() -> None:
    assert marker_may_follow("") and marker_may_follow("\n ") and marker_may_follow("<th")
    assert marker_may_follow("<|begin_of")
    assert not marker_may_follow("<think>") and not marker_may_follow("Hi") and not marker_may_follow("<b")
    style = ThinkingStyle()
    assert style.split("<thi", final=False) is None
    final = style.split("<thi", final=True)
    assert final is not None and (final.thinking, final.answer) == (None, "<thi")
    streaming = style.split("<think>a plan", final=False)
    assert streaming is not None and (streaming.thinking, streaming.closed) == ("a plan", False)


def test_the_style_of_a_model_whose_prompt_opens_the_section(tmp_path: Path) -> None:
    r1 = write_gguf(tmp_path / "r1.gguf", template=THINKING_TEMPLATE)
    opens = model_thinking_style(r1, None, hidden=True)
    assert opens.starts_inside and opens.hidden and opens.tags[0] == ("<think>", "</think>")
    # The model writes its own marker (the prompt does not open it): not inside from the start.
    writes = thinking_style(CHATML + "{# <think> </think> #}", hidden=False)
    assert not writes.starts_inside and writes.tags[0] == ("<think>", "</think>")
    # Declared markers other than <think> come first; a built-in template name, no probing.
    seed_template = CHATML + "{% if add_generation_prompt %}<seed:think>{% endif %}{# </seed:think> #}"
    seed = thinking_style(seed_template, hidden=False)
    assert seed.starts_inside and seed.tags[0] == ("<seed:think>", "</seed:think>")
    assert model_thinking_style(tmp_path / "r1.gguf", "chatml", hidden=False) == ThinkingStyle()
    plain = model_thinking_style(write_gguf(tmp_path / "plain.gguf"), None, hidden=False)
    assert plain == ThinkingStyle(THINK_TAGS, False, False)


def test_a_template_that_fails_or_a_file_that_is_not_there() -> None:
    broken = thinking_style("<think></think>{{ raise_exception('no') }}", hidden=False)
    assert broken.tags[0] == ("<think>", "</think>") and not broken.starts_inside
    assert model_thinking_style(Path("/nonexistent/x.gguf"), None, hidden=False) == ThinkingStyle()


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
