"""Matrix row 4b, chat templates run sandboxed: a hostile template (from a downloaded GGUF or the
chat_template setting) can't reach Python, change the messages or exhaust memory; it fails with
a clear message, in the engine and through `tokendial generate`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from settings.sampling import SamplingMode, SamplingParams
from tui.cli import main
from tui.engine.chat_format import ChatFormatter, ChatTemplateError, ChatTemplateTimeout
from tui.engine.events import ChatMessage, ReplyDone, StopKind
from tui.engine.live import LiveParams
from tui.engine.llama_engine import LlamaEngine, load_engine
from tui.engine.protocol import LoadConfig

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "hi")]


def hostile(marker: Path) -> dict[str, tuple[str, str]]:
    """Template rows: (template, what the error must say); each would create ``marker`` if it escaped."""
    run = f"touch {marker}"
    return {
        "class walk": ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        "cycler globals": (f"{{{{ cycler.__init__.__globals__.os.popen('{run}').read() }}}}", "unsafe"),
        "lipsum globals": (f"{{{{ lipsum.__globals__['os'].system('{run}') }}}}", "unsafe"),
        "our own function's globals": (
            "{{ raise_exception.__globals__['__builtins__']['__import__']('os').system('" + run + "') }}",
            "unsafe",
        ),
        "format string escape": (
            "{{ '{0.__class__.__init__.__globals__}'.format(messages) }}{{ x.y.z }}",
            "undefined",
        ),
        "mutate messages": ("{% set _ = messages.append({'role': 'user', 'content': 'x'}) %}", "unsafe"),
        "huge range": ("{% for i in range(10**9) %}x{% endfor %}", "range too big"),
        "huge string": ("{{ 'x' * 10**8 }}", "that large"),
        "huge list": ("{{ [0] * 100000000 }}", "that large"),
        "huge output": ("{% for i in range(100000) %}{{ 'y' * 999 }}{% endfor %}", "produced more than"),
        "syntax error": ("{% for m in messages %}", "does not compile"),
        "refuses": ("{{ raise_exception('no system role') }}", "refused the conversation"),
    }


ROWS = list(hostile(Path("/nonexistent")))


def test_the_engine_renders_in_an_immutable_sandbox(real_engine: LlamaEngine) -> None:
    assert isinstance(real_engine.formatter, ChatFormatter)  # the GGUF's Jinja template, not a built-in
    environment = real_engine.formatter._template.environment
    assert isinstance(environment, ImmutableSandboxedEnvironment)


@pytest.mark.parametrize("row", ROWS)
def test_hostile_template_fails_clearly_and_does_nothing(row: str, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    template, phrase = hostile(marker)[row]
    with pytest.raises(ChatTemplateError) as info:
        ChatFormatter(template, bos_token="<s>", eos_token="</s>").render(MESSAGES)
    assert phrase in info.value.message.lower()
    assert info.value.message.startswith("The chat template")
    assert not marker.exists()
    assert [ChatMessage("system", "Be brief."), ChatMessage("user", "hi")] == MESSAGES


@pytest.mark.real_model
def test_hostile_template_override_ends_the_reply_with_a_clear_error(
    model_path: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "escaped"
    template, _ = hostile(marker)["lipsum globals"]
    engine = load_engine(LoadConfig(model_path=model_path, n_ctx=512, n_threads=2, chat_template=template))
    try:
        live = LiveParams(SamplingParams(mode=SamplingMode.GREEDY, max_new_tokens=4))
        events = list(engine.stream_reply(MESSAGES, live, threading.Event()))
    finally:
        engine.close()
    done = events[-1]
    assert isinstance(done, ReplyDone) and len(events) == 1
    assert done.stop.kind is StopKind.ERROR
    assert "unsafe" in (done.stop.message or "")
    assert not marker.exists()


@pytest.mark.real_model
def test_generate_with_a_hostile_template(
    model_path: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "escaped"
    template, _ = hostile(marker)["cycler globals"]
    code = main(["generate", "hi", "--model-path", str(model_path), "--chat-template", template])
    out, err = capfd.readouterr()
    assert code == 1
    assert "The chat template failed to render" in err and "unsafe" in err
    assert "Traceback" not in out + err
    assert not marker.exists()


@pytest.mark.real_model
def test_template_that_does_not_compile_is_a_load_error(
    model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["generate", "hi", "--model-path", str(model_path), "--chat-template", "{% if %}"])
    out, err = capfd.readouterr()
    assert code == 1
    assert "cannot load the model" in err and "does not compile" in err and "chat_template" in err
    assert "Traceback" not in out + err


LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
"""Ten billion empty iterations: no output, no call the sandbox could refuse."""


def test_a_template_that_never_ends_is_stopped() -> None:
    formatter = ChatFormatter(LOOP, bos_token="", eos_token="")
    formatter.time_limit_s = 0.5
    with pytest.raises(ChatTemplateTimeout) as info:
        formatter.render(MESSAGES)  # a system message: no second (merged) try after a timeout
    assert info.value.message.startswith("The chat template took more than 0.5 s to render")
    # the watchdog never fires into later work
    fast = ChatFormatter(None, bos_token="", eos_token="")
    fast.time_limit_s = 0.01
    for _ in range(200):
        fast.render(MESSAGES)


@pytest.mark.real_model
async def test_a_never_ending_template_in_the_app(model_path: Path, tmp_path: Path) -> None:
    """The reply ends with the reason, the app stays usable and quits (it used to hang at quit)."""
    from tests.reliability.reliability_support import (
        SIZE,
        finished,
        last_done,
        make_settings,
        send,
        wait_ready,
    )
    from tui.app import TokendialApp
    from tui.engine.protocol import ChatEngine

    engine = load_engine(LoadConfig(model_path=model_path, n_ctx=512, n_threads=2, chat_template=LOOP))
    assert isinstance(engine.formatter, ChatFormatter)
    engine.formatter.time_limit_s = 1.0

    def factory(config: LoadConfig) -> ChatEngine:
        return engine

    app = TokendialApp(make_settings(tmp_path), engine_factory=factory, config_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await pilot.press("escape")  # cancel can't reach into the template; the time limit does
        await finished(pilot)
        done = last_done(app)
        assert done.stop.kind is StopKind.ERROR
        assert "took more than 1 s to render" in (done.stop.message or "")
        await send(pilot, "again")  # still usable (and still refused the same way)
        await finished(pilot)
        assert last_done(app).stop.kind is StopKind.ERROR
    assert engine._closed
