"""Matrix row 1, model files: each bad file via `tokendial generate` (stderr, exit code, no traceback)
and in the app (the reason in the transcript, the app stays open, F2 picks another model)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList

from settings.config import Settings
from settings.sampling import SamplingParams
from tests.fakes import FakeEngine
from tests.reliability.reliability_support import (
    SIZE,
    record_notifications,
    screen_text,
    send,
    wait_for,
    write_gguf_header,
    write_unknown_arch_gguf,
)
from tui.app import TokendialApp, load_llama_engine
from tui.cli import main
from tui.engine.events import ModelLoadError
from tui.engine.protocol import ChatEngine, LoadConfig
from tui.screens.model_picker import ModelPickerScreen, find_gguf_files
from tui.widgets.chat_view import AssistantMessage
from tui.widgets.sampling_panel import SamplingPanel
from tui.widgets.status_bar import ModelState

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _missing(folder: Path) -> Path:
    return folder / "missing.gguf"


def _directory(folder: Path) -> Path:
    path = folder / "folder.gguf"
    path.mkdir()
    return path


def _empty(folder: Path) -> Path:
    path = folder / "empty.gguf"
    path.write_bytes(b"")
    return path


def _not_gguf(folder: Path) -> Path:
    path = folder / "notes.gguf"
    path.write_text("These are my notes, not a model.\n" * 10)
    return path


def _short_header(folder: Path) -> Path:
    path = folder / "short.gguf"
    path.write_bytes(b"GGUF\x03\x00")
    return path


def _unknown_arch(folder: Path) -> Path:
    path: Path = write_unknown_arch_gguf(folder / "unknown-arch.gguf")
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str, int]] = {
    # row: (make the file, what the message must say, exit code of `tokendial generate`)
    "missing path": (_missing, "not found", 2),
    "a directory": (_directory, "is a directory", 2),
    "an empty file": (_empty, "is empty (0 bytes)", 1),
    "not a GGUF file": (_not_gguf, "is not a GGUF model file", 1),
    "truncated header": (_short_header, "is truncated", 1),
    "unknown architecture": (_unknown_arch, "architecture 'notarealarch'", 1),
}


def _truncated_model(source: Path, folder: Path, size: int) -> Path:
    path = folder / f"truncated-{size}.gguf"
    with source.open("rb") as src, path.open("wb") as dst:
        dst.write(src.read(size))
    return path


def assert_clean_failure(code: int, expected_code: int, out: str, err: str, phrase: str) -> None:
    """A failure with a clear message on stderr, the expected exit code, no traceback, nothing on stdout."""
    assert code == expected_code, err
    assert phrase in err
    assert "Traceback" not in out + err
    assert out == ""


@pytest.mark.parametrize("row", list(BAD_FILES))
def test_generate_refuses_bad_model_file(row: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    make, phrase, expected_code = BAD_FILES[row]
    path = make(tmp_path)
    code = main(["generate", "hello", "--model-path", str(path)])
    out, err = capfd.readouterr()
    assert_clean_failure(code, expected_code, out, err, phrase)
    assert len(err.strip().splitlines()) <= 3  # a message and a hint, not llama.cpp's log


@pytest.mark.real_model
@pytest.mark.parametrize("size", [1000, 40_000_000])
def test_generate_refuses_truncated_model(
    size: int, model_path: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The real model cut short inside its metadata and inside its tensor data (a broken download)."""
    path = _truncated_model(model_path, tmp_path, size)
    code = main(["generate", "hello", "--model-path", str(path)])
    out, err = capfd.readouterr()
    assert_clean_failure(code, 1, out, err, "is truncated or corrupt")
    assert "fetch it again" in err


@pytest.fixture
def unreadable_model() -> Iterator[Path]:
    """A GGUF-looking file with mode 000 in a folder anyone can enter."""
    folder = Path(tempfile.mkdtemp(prefix="tokendial-perm-"))
    folder.chmod(0o755)
    path = write_gguf_header(folder / "locked.gguf")
    path.chmod(0o000)
    yield path
    shutil.rmtree(folder)


def test_generate_refuses_unreadable_model(unreadable_model: Path, tmp_path: Path) -> None:
    """No read permission, for real: as root, `tokendial generate` runs as the user nobody (setpriv)."""
    command = [sys.executable, "-m", "tui.cli", "generate", "hello", "--model-path", str(unreadable_model)]
    env = {**os.environ, "XDG_CONFIG_HOME": str(unreadable_model.parent), "XDG_DATA_HOME": "/nonexistent"}
    if RUNNING_AS_ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root (which reads any file) and setpriv is missing to drop to nobody")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        probe = [*command[:4], sys.executable, "-c", "import tui.cli"]
        if subprocess.run(probe, capture_output=True, env=env, timeout=60, check=False).returncode != 0:
            pytest.skip(
                "the user nobody cannot read this Python environment (.ci/run makes its venv readable)"
            )
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert_clean_failure(result.returncode, 1, result.stdout, result.stderr, "permission denied")


# -- in the app ----------------------------------------------------------------------------


def app_on(model: Path, tmp_path: Path, models_dir: Path | None = None) -> TokendialApp:
    """The app with the real engine factory (the real checks and llama.cpp loading) on ``model``."""
    settings = Settings(
        model_path=model,
        models_dir=models_dir or tmp_path / "models",
        data_dir=tmp_path / "data",
        sampling=SamplingParams(max_new_tokens=4),
    )
    return TokendialApp(settings, engine_factory=load_llama_engine, config_path=tmp_path / "config.toml")


async def _shows_failure_and_picker(app: TokendialApp, *phrases: str) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "load failure", limit=1500)
        await pilot.pause()
        notice = str(app.chat_view.query_one("#load-error").render())
        for phrase in phrases:
            assert phrase in notice, notice
        assert "F2" in notice
        assert "Traceback" not in screen_text(app)
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, ModelPickerScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, ModelPickerScreen)


@pytest.mark.parametrize("row", list(BAD_FILES))
async def test_app_opens_on_bad_model_file_and_offers_the_picker(row: str, tmp_path: Path) -> None:
    make, phrase, _ = BAD_FILES[row]
    await _shows_failure_and_picker(app_on(make(tmp_path), tmp_path), phrase)


async def test_app_unreadable_model(
    unreadable_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No read permission in the app. As root (reads any file) the open call is refused by a patch."""
    if RUNNING_AS_ROOT:
        real_open = Path.open

        def refusing_open(self: Path, *args: object, **kwargs: object) -> object:
            if self == unreadable_model:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(Path, "open", refusing_open)
    await _shows_failure_and_picker(app_on(unreadable_model, tmp_path), "permission denied")


@pytest.mark.real_model
async def test_pick_another_model_after_a_failure_then_chat(model_path: Path, tmp_path: Path) -> None:
    """Start on a broken file, pick the real model in the picker (F2, Enter), and get a reply."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "good.gguf").symlink_to(model_path)
    bad = _not_gguf(models)
    app = app_on(bad, tmp_path, models)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "load failure", limit=1500)
        await pilot.press("f2")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ModelPickerScreen)
        names = [str(option.prompt) for option in picker.query_one(OptionList).options]
        assert names[0].startswith("good.gguf") and "(current)" in names[1]
        await pilot.press("enter")  # the first file: good.gguf
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", limit=3000)
        assert not app.chat_view.query("#load-error")
        await send(pilot, "Say hi.")
        await wait_for(
            pilot, lambda: not app.busy and all(r.finished for r in app.records.values()), "reply", limit=3000
        )
        message = list(app.chat_view.query(AssistantMessage))[-1]
        assert message.record.done is not None
        assert message.record.done.stop.kind.value in ("eos", "max_tokens")


async def test_picking_a_bad_file_keeps_the_loaded_model(tmp_path: Path) -> None:
    """A typed path that fails the quick check is refused with a notification; the model stays."""
    good = write_gguf_header(tmp_path / "good.gguf")
    fake = FakeEngine()

    def factory(config: LoadConfig) -> ChatEngine:
        return fake

    settings = Settings(model_path=good, models_dir=tmp_path, data_dir=tmp_path / "data")
    app = TokendialApp(settings, engine_factory=factory, config_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded")
        await pilot.press("f2")
        await pilot.pause()
        field = app.screen.query_one("#model-path", Input)
        field.value = str(tmp_path / "nope.gguf")
        field.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.model_state is ModelState.READY
        assert not fake.closed
        texts = [str(n.message) for n in app._notifications]
        assert any("not found" in t and "current model stays loaded" in t for t in texts)


def test_picker_lists_gguf_files_and_says_when_there_are_none(tmp_path: Path) -> None:
    assert find_gguf_files(tmp_path / "nope").problem == f"{tmp_path / 'nope'} is not a folder (models_dir)."
    assert find_gguf_files(tmp_path).problem == f"no .gguf files in {tmp_path}"
    (tmp_path / "sub").mkdir()
    write_gguf_header(tmp_path / "sub" / "b.gguf")
    write_gguf_header(tmp_path / "[@click=app.quit]a.gguf")
    (tmp_path / "readme.txt").write_text("x")
    found = find_gguf_files(tmp_path)
    assert [p.name for p in found.files] == ["[@click=app.quit]a.gguf", "b.gguf"]
    assert found.problem is None


async def test_picker_shows_markup_file_names_literally(tmp_path: Path) -> None:
    """A file called ``[@click=app.quit]a.gguf`` is a name in the list, not an action."""
    write_gguf_header(tmp_path / "[@click=app.quit]a.gguf")
    fake = FakeEngine()
    settings = Settings(model_path=tmp_path / "x.gguf", models_dir=tmp_path, data_dir=tmp_path / "data")
    app = TokendialApp(settings, engine_factory=lambda config: fake, config_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded")
        await pilot.press("f2")
        await pilot.pause()
        assert "[@click=app.quit]a.gguf" in screen_text(app)
        await pilot.click(OptionList, offset=(4, 0))
        await pilot.pause()
        assert app.is_running


@pytest.mark.real_model
def test_generate_context_too_big_for_memory(model_path: Path) -> None:
    """n_ctx in range but too big for the memory there is (address space capped at 3 GB here)."""
    import resource

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    command = [sys.executable, "-m", "tui.cli", "generate", "hi", "--model-path", str(model_path)]
    result = subprocess.run(
        [*command, "--n-ctx", "262144"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=cap_memory,
    )
    assert_clean_failure(result.returncode, 1, result.stdout, result.stderr, "Not enough memory")
    assert "Lower n_ctx" in result.stderr


async def test_switching_models_closes_the_old_engine_and_keeps_the_chat(tmp_path: Path) -> None:
    first_file = write_gguf_header(tmp_path / "first.gguf")
    second_file = write_gguf_header(tmp_path / "second.gguf")
    broken_file = write_gguf_header(tmp_path / "broken.gguf")
    engines = {first_file: FakeEngine(), second_file: FakeEngine(script=("Second", " model", "."))}

    def factory(config: LoadConfig) -> ChatEngine:
        if config.model_path == broken_file:
            raise ModelLoadError(f"llama.cpp could not load {broken_file}: bad tensors", "")
        return engines[config.model_path]

    settings = Settings(model_path=first_file, models_dir=tmp_path, data_dir=tmp_path / "data")
    app = TokendialApp(settings, engine_factory=factory, config_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "first model")
        await send(pilot, "hello")
        await wait_for(pilot, lambda: not app.busy and len(app.history) == 2, "first reply")
        # a file llama.cpp refuses: the reason in the transcript, then another pick works
        assert await app.switch_model(broken_file)
        await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "broken model")
        assert engines[first_file].closed
        assert "bad tensors" in str(app.chat_view.query_one("#load-error").render())
        assert await app.switch_model(second_file)
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "second model")
        assert not app.chat_view.query("#load-error")
        await send(pilot, "and you?")
        await wait_for(pilot, lambda: not app.busy and len(app.history) == 4, "second reply")
        assert app.history[-1].content == "Second model."
        assert len(engines[second_file].calls[0]) == 4  # the chat went on: the earlier turns were sent
        # while loading, another switch is refused
        gate = threading.Event()
        engines[first_file] = FakeEngine()
        slow = factory

        def gated(config: LoadConfig) -> ChatEngine:
            gate.wait(10)
            return slow(config)

        app.engine_worker._factory = gated
        assert await app.switch_model(first_file)
        assert not await app.switch_model(second_file)
        gate.set()
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "first model again")
    assert engines[second_file].closed


async def test_app_opens_from_the_command_line_on_a_missing_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tokendial --model-path missing.gguf` opens the app (which says why and offers F2)."""
    import types

    seen: list[Settings] = []
    module = types.ModuleType("tui.app")

    def run_app(settings: Settings, *, config_path: Path | None = None) -> int:
        seen.append(settings)
        return 0

    module.run_app = run_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui.app", module)
    assert main(["--model-path", str(tmp_path / "missing.gguf")]) == 0
    assert seen and seen[0].model_path == tmp_path / "missing.gguf"


def _name_too_long(folder: Path) -> Path:
    return folder / ("x" * 3000 + ".gguf")


def _file_on_the_way(folder: Path) -> Path:
    plain: Path = write_gguf_header(folder / "plain.gguf")
    return plain / "model.gguf"


UNUSABLE_PATHS: dict[str, Callable[[Path], Path]] = {
    "a name too long": _name_too_long,
    "a file on the way": _file_on_the_way,
}


@pytest.mark.parametrize("row", list(UNUSABLE_PATHS))
def test_generate_refuses_unusable_paths(row: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "hello", "--model-path", str(UNUSABLE_PATHS[row](tmp_path))])
    out, err = capfd.readouterr()
    phrase = "cannot use the model path" if row == "a name too long" else "model file not found"
    assert_clean_failure(code, 2, out, err, phrase)
    assert len(err) < 600


@pytest.mark.parametrize("row", list(UNUSABLE_PATHS))
async def test_app_and_picker_refuse_unusable_paths(row: str, tmp_path: Path) -> None:
    """At start-up and typed into the picker (a 3,000-character path crashed the app there)."""
    path = UNUSABLE_PATHS[row](tmp_path)
    reason = "File name too long" if row == "a name too long" else "Not a directory"
    await _shows_failure_and_picker(app_on(path, tmp_path), f"Cannot use {str(path)[:40]}", reason)
    good = write_gguf_header(tmp_path / "good.gguf")
    settings = Settings(model_path=good, models_dir=tmp_path, data_dir=tmp_path / "data")
    app = TokendialApp(settings, engine_factory=lambda config: FakeEngine(), config_path=tmp_path / "c.toml")
    notices = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded")
        await pilot.press("f2")
        await pilot.pause()
        field = app.screen.query_one("#model-path", Input)
        field.value = str(path)
        field.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.is_running and app.model_state is ModelState.READY
        assert any("current model stays loaded" in n for n in notices)


@pytest.mark.real_model
async def test_a_failed_switch_leaves_no_vocabulary_behind(model_path: Path, tmp_path: Path) -> None:
    """Loaded model, then a switch to a file llama.cpp refuses: the old engine is closed, so the
    panel must not keep checking token ids against the old model's vocabulary."""
    bad = _unknown_arch(tmp_path)
    app = app_on(model_path, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_state is ModelState.READY, "model loaded", limit=3000)
        panel = app.query_one(SamplingPanel)
        assert panel.n_vocab == 49152 and panel.token_text is not None
        assert await app.models.switch_model(bad)
        await wait_for(pilot, lambda: app.model_state is ModelState.FAILED, "load failure", limit=1500)
        await pilot.pause()
        assert panel.n_vocab is None and panel.token_text is None
        assert "architecture 'notarealarch'" in str(app.chat_view.query_one("#load-error").render())
