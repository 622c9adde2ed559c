"""Built-in templates by name, the honest word on a model without a template, text completion."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings.config import Settings
from settings.sampling import SamplingMode, SamplingParams
from tui.engine.chat_format import (
    BuiltinChatFormatter,
    ChatFormatter,
    ChatTemplateError,
    builtin_template_names,
    suggest_builtin_template,
)
from tui.engine.events import ChatMessage, PromptTrimmed, ReplyDone, StopKind, TokenEvent
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig
from tui.headless import run_generate
from tui.library.card import card_from_header
from tui.library.gguf_header import read_header

CHAT = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]
GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=8)
DESSERT = "My favourite dessert is a piece of"


def test_llama_cpp_knows_the_common_names() -> None:
    names = builtin_template_names()
    assert {"chatml", "llama3", "gemma", "mistral-v7", "phi3", "llama2"} <= set(names)


def test_a_builtin_template_renders_through_llama_cpp() -> None:
    chatml = BuiltinChatFormatter("chatml").render(CHAT)
    assert (
        chatml
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    llama3 = BuiltinChatFormatter("llama3").render(CHAT)
    assert llama3.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    gemma = ChatFormatter.for_model(None, "gemma", bos_token="<bos>", eos_token="<eos>")
    assert isinstance(gemma, BuiltinChatFormatter) and gemma.label == "built-in gemma"
    assert "<start_of_turn>user" in gemma.render(CHAT)


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        ChatTemplateError, match=r"'chatmll' is not one of llama\.cpp's built-in chat templates"
    ):
        ChatFormatter.for_model(None, "chatmll", bos_token="", eos_token="")


def test_jinja_text_is_still_an_override() -> None:
    formatter = ChatFormatter.for_model(None, "{{ messages[0]['content'] }}", bos_token="", eos_token="")
    assert isinstance(formatter, ChatFormatter) and formatter.render(CHAT) == "Be brief."


def test_families_get_a_proposal() -> None:
    assert suggest_builtin_template("gemma3", 262_144) == "gemma"
    assert suggest_builtin_template("llama", 128_256) == "llama3"
    assert suggest_builtin_template("qwen2", 151_936) == "chatml"
    assert suggest_builtin_template("llama", 49_152) is None  # SmolLM2: no family can be told
    for name in ("gemma", "llama3", "chatml", "phi3"):
        assert name in builtin_template_names()


@pytest.fixture(scope="module")
def base_engine(no_template_model: Path) -> Iterator[LlamaEngine]:
    engine = load_engine(LoadConfig(model_path=no_template_model, n_ctx=512, n_threads=1, top_n=5))
    yield engine
    engine.close()


@pytest.mark.real_model
def test_the_copy_has_no_template(no_template_model: Path, base_engine: LlamaEngine) -> None:
    card = card_from_header(
        read_header(no_template_model), no_template_model, no_template_model.stat().st_size
    )
    assert not card.has_chat_template and card.n_vocab == 49152
    assert not base_engine.info.has_chat_template
    assert base_engine.info.chat_template_label == "ChatML (a guess: the model has no chat template)"


def _run(engine: LlamaEngine, messages: list[ChatMessage], **options: object) -> list[object]:
    return list(engine.stream_reply(messages, LiveParams(GREEDY), threading.Event(), **options))  # type: ignore[arg-type]


@pytest.mark.real_model
def test_raw_continues_the_text_as_it_is(base_engine: LlamaEngine) -> None:
    events = _run(base_engine, [ChatMessage("user", DESSERT)], raw=True)
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind in (StopKind.MAX_TOKENS, StopKind.EOS)
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert tokens and done.text == "".join(t.text for t in tokens) and done.text.strip()
    expected = base_engine._llm.tokenize(DESSERT.encode(), add_bos=True, special=False)
    assert done.prompt_tokens == len(expected)
    assert base_engine.cached_tokens[: len(expected)] == tuple(expected)  # no template, no system prompt
    assert "<|im_start|>" not in base_engine._llm.detokenize(list(base_engine.cached_tokens)).decode()
    # the whole text is what counts: the same text in two messages is the same prompt
    split = _run(
        base_engine,
        [ChatMessage("user", "My favourite dessert"), ChatMessage("assistant", " is a piece of")],
        raw=True,
    )
    assert isinstance(split[-1], ReplyDone) and split[-1].text == done.text


@pytest.mark.real_model
def test_raw_branches_from_fixed_tokens(base_engine: LlamaEngine) -> None:
    first = _run(base_engine, [ChatMessage("user", DESSERT)], raw=True)[-1]
    assert isinstance(first, ReplyDone) and len(first.token_ids) >= 3
    again = _run(base_engine, [ChatMessage("user", DESSERT)], raw=True, continue_from=first.token_ids[:2])[-1]
    assert isinstance(again, ReplyDone) and again.token_ids[:2] == first.token_ids[:2]
    assert len(again.token_ids) > 2 and again.text.startswith(first.text[:3])


@pytest.mark.real_model
def test_raw_text_too_long_drops_its_start(base_engine: LlamaEngine) -> None:
    events = _run(base_engine, [ChatMessage("user", "one two three " * 300)], raw=True)
    trimmed = [e for e in events if isinstance(e, PromptTrimmed)]
    assert len(trimmed) == 1 and trimmed[0].dropped_tokens > 0 and trimmed[0].dropped_messages == 0
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stop.kind is not StopKind.ERROR
    assert done.prompt_tokens + GREEDY.max_new_tokens <= base_engine.n_ctx


@pytest.mark.real_model
def test_generate_says_the_model_has_no_template(no_template_model: Path) -> None:
    settings = Settings(model_path=no_template_model, n_ctx=512, n_threads=1, sampling=GREEDY)
    out, err = io.StringIO(), io.StringIO()
    assert run_generate(settings, "Hi", False, stdout=out, stderr=err) == 0
    assert "NOTE: Smollm2 135M" in err.getvalue() and "has no chat template" in err.getvalue()
    assert "--raw" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert run_generate(settings, DESSERT, False, raw=True, stdout=out, stderr=err) == 0
    assert "NOTE" not in err.getvalue() and out.getvalue().strip()
    named = settings.model_copy(update={"chat_template": "chatml"})
    out, err = io.StringIO(), io.StringIO()
    assert run_generate(named, "Hi", False, stdout=out, stderr=err) == 0
    assert "NOTE" not in err.getvalue()


@pytest.mark.real_model
def test_the_default_model_gets_no_note(model_path: Path) -> None:
    settings = Settings(model_path=model_path, n_ctx=512, n_threads=1, sampling=GREEDY)
    out, err = io.StringIO(), io.StringIO()
    assert run_generate(settings, "Hi", False, stdout=out, stderr=err) == 0
    assert "NOTE" not in err.getvalue()


@pytest.mark.real_model
def test_a_base_model_opens_in_completion_mode(base_engine: LlamaEngine, model_path: Path) -> None:
    from tui.library.advice import default_chat_mode, no_template_notice

    assert default_chat_mode(base_engine.info) == "completion"
    notice = no_template_notice(base_engine.info, for_app=True)
    assert notice is not None and "has no chat template" in notice and "completion mode" in notice
    chat = load_engine(LoadConfig(model_path=model_path, n_ctx=256, n_threads=1, top_n=0))
    try:
        assert default_chat_mode(chat.info) == "chat" and no_template_notice(chat.info, for_app=True) is None
    finally:
        chat.close()
    named = load_engine(
        LoadConfig(model_path=base_engine.info.path, n_ctx=256, n_threads=1, chat_template="chatml")
    )
    try:
        assert named.info.chat_template_label == "built-in chatml"
        assert default_chat_mode(named.info) == "chat"
    finally:
        named.close()


@pytest.mark.real_model
def test_chat_modes_follow_the_model_and_the_user(base_engine: LlamaEngine, model_path: Path) -> None:
    from tui.library.modes import ChatModes

    modes = ChatModes()
    notice = modes.model_loaded(base_engine.info, chat_is_empty=True)
    assert modes.raw and notice is not None
    assert modes.toggle() == "chat" and not modes.raw
    modes.model_loaded(base_engine.info, chat_is_empty=True)
    assert not modes.raw  # the user's choice stays
    modes.new_chat()
    assert modes.raw
    modes.restored("chat")
    assert modes.label == "chat"
