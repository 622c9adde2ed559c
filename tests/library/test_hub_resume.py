"""A download cut short resumes on the next run; a full disk ends it with one line.

Against the loopback hub (tests/library/hub_server.py, a real HTTP server on 127.0.0.1) and the
real ``tokendial fetch`` in a subprocess: the next run asks with a Range request and the server
sends only the rest (its byte count says so). The full disk is a real tmpfs (the store tests'
mount helper), mounted where this user may.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.library.gguf_files import write_gguf
from tests.library.hub_server import HubState, serve_hub
from tests.store.test_store_faults import may_mount, mount
from tui.library.hub import HubError, HubSpec, fetch_hf, partial_path

REPO = "someone/Tiny-GGUF"
NAME = "tiny-Q4_K_M.gguf"
CHUNK = 10 * 1024 * 1024
"""huggingface_hub writes what it receives in chunks of 10 MiB."""


@pytest.fixture
def model_bytes(tmp_path: Path) -> bytes:
    """A real GGUF of 12.8 MB (more than one chunk)."""
    data: bytes = write_gguf(tmp_path / "made" / "big.gguf", weights=3_200_000).read_bytes()
    return data


def hub_state(data: bytes) -> HubState:
    state = HubState()
    state.repos[REPO] = {"README.md": b"# tiny\n", NAME: data}
    return state


def cli_env(endpoint: str, cache: Path, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TOKENDIAL_"))}
    return {
        **clean,
        "HF_ENDPOINT": endpoint,
        "HF_HUB_CACHE": str(cache),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "TOKENDIAL_MODELS_DIR": str(tmp_path / "m"),
    }


def sigint_as_usual() -> None:
    """In the child: Ctrl-C's default (a shell's background job starts with SIGINT ignored, and
    Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fetch_cli(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "fetch", f"hf:{REPO}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=sigint_as_usual,
    )


def wait_for_size(path: Path, size: int, limit_s: float = 60) -> None:
    """Until ``path`` holds at least ``size`` bytes."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size >= size:
                return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {size} bytes")


def models_in(cache: Path) -> list[Path]:
    """The model files the cache shows (its snapshots: where the library and the tools look)."""
    return [p for p in cache.rglob("snapshots/**/*.gguf")]


def check_second_run(state: HubState, env: dict[str, str], data: bytes, kept: int) -> str:
    """Run the fetch again: it resumes at ``kept`` and the hub sends only the rest."""
    state.served.clear()
    before = len(state.requests)
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "fetch", f"hf:{REPO}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    gets = [r for method, path, r in state.requests[before:] if method == "GET" and path.endswith(NAME)]
    assert gets == [f"bytes={kept}-"]
    assert state.served[NAME] == len(data) - kept
    (model,) = models_in(Path(env["HF_HUB_CACHE"]))
    assert hashlib.sha256(model.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert not list(Path(env["HF_HUB_CACHE"]).rglob("*.incomplete"))
    return result.stderr


def cut_short(
    env: dict[str, str], state: HubState, partial: Path, act: Callable[[subprocess.Popen[str]], None]
) -> tuple[int, str]:
    """Run the fetch until the hub stalls with one chunk on disk, ``act`` on it, let it end: its
    exit status and stderr."""
    process = fetch_cli(env)
    try:
        assert state.stalled.wait(60), "the download never started"
        wait_for_size(partial, CHUNK)
        act(process)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, stderr


def stalling_hub(data: bytes, cache: Path) -> tuple[HubState, Path]:
    """A hub that stalls the file after one chunk and a bit; where the part of it will be."""
    state = hub_state(data)
    state.stall_after[NAME] = CHUNK + 1024 * 1024
    return state, partial_path(cache, REPO, hashlib.sha256(data).hexdigest())


def test_a_killed_fetch_resumes_on_the_next_run(model_bytes: bytes, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    state, partial = stalling_hub(model_bytes, cache)
    with serve_hub(state) as endpoint:
        env = cli_env(endpoint, cache, tmp_path)
        # SIGKILL: no handler runs, what is on disk is all there is.
        code, _ = cut_short(env, state, partial, lambda process: process.send_signal(signal.SIGKILL))
        assert code == -signal.SIGKILL
        assert partial.stat().st_size == CHUNK and not models_in(cache)  # nothing half-written as a model
        state.release.set()
        del state.stall_after[NAME]
        stderr = check_second_run(state, env, model_bytes, CHUNK)
    assert f"resuming {NAME} at 10.5 MB of 12.8 MB (kept from an earlier run)" in stderr


def test_ctrl_c_keeps_what_was_written_and_says_so(model_bytes: bytes, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    state, partial = stalling_hub(model_bytes, cache)
    with serve_hub(state) as endpoint:
        env = cli_env(endpoint, cache, tmp_path)
        code, stderr = cut_short(env, state, partial, lambda process: process.send_signal(signal.SIGINT))
        assert code == 1 and "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == (
            f"tokendial: fetch failed: interrupted: 10.5 MB of {NAME} (12.8 MB) are kept in {partial}; "
            "run the same command again to resume"
        )
        assert not models_in(cache)
        state.release.set()
        del state.stall_after[NAME]
        check_second_run(state, env, model_bytes, CHUNK)


def test_a_hub_that_goes_away_mid_file_resumes_on_the_next_run(model_bytes: bytes, tmp_path: Path) -> None:
    """The connection drops after 11 MiB and the server answers nothing more: huggingface_hub's
    own retries give up, the run ends with one line, the next run (the hub back) sends the rest."""
    state = hub_state(model_bytes)
    state.drop_after[NAME] = CHUNK + 1024 * 1024
    state.gone_after_drop = True
    cache = tmp_path / "hub"
    with serve_hub(state) as endpoint:
        env = cli_env(endpoint, cache, tmp_path)
        with pytest.raises(HubError) as caught:
            fetch_hf(HubSpec(REPO), environ=env, report=lambda line: None)
        assert str(caught.value).startswith(f"cannot fetch hf:{REPO} from {endpoint}: ")
        assert "\n" not in str(caught.value) and not models_in(cache)
        partial = partial_path(cache, REPO, hashlib.sha256(model_bytes).hexdigest())
        assert partial.stat().st_size == CHUNK  # the first chunk, written before the drop
        state.gone = state.gone_after_drop = False
        check_second_run(state, env, model_bytes, CHUNK)


def test_a_damaged_partial_file_is_not_kept(model_bytes: bytes, tmp_path: Path) -> None:
    """Bytes that are not the file's (a partial file written by something else): the SHA-256 check
    refuses the result, nothing is kept, and the next run fetches it whole."""
    state = hub_state(model_bytes)
    cache = tmp_path / "hub"
    partial = partial_path(cache, REPO, hashlib.sha256(model_bytes).hexdigest())
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\xff" * 1000)
    with serve_hub(state) as endpoint:
        env = cli_env(endpoint, cache, tmp_path)
        with pytest.raises(HubError, match="arrived damaged"):
            fetch_hf(HubSpec(REPO), environ=env, report=lambda line: None)
        assert not partial.exists() and not models_in(cache)
        fetched = fetch_hf(HubSpec(REPO), environ=env, report=lambda line: None)
        assert fetched.path.read_bytes() == model_bytes


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (root only, as in the store's full-disk test)."""
    if not may_mount(tmp_path):
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    assert mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point))
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(path: Path) -> None:
    """Write ``path`` until the disk is full."""
    with open(path, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_too_little_space_is_said_before_anything_is_written(
    model_bytes: bytes, tmp_path: Path, small_disk: Path
) -> None:
    state = hub_state(model_bytes)
    cache = small_disk / "hub"
    (small_disk / "filler").write_bytes(b"\0" * (8 * 1024 * 1024))
    with serve_hub(state) as endpoint:
        result = subprocess.run(
            [sys.executable, "-m", "tui.cli", "fetch", f"hf:{REPO}"],
            capture_output=True,
            text=True,
            env=cli_env(endpoint, cache, tmp_path),
            timeout=120,
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"tokendial: fetch failed: the disk is full: {NAME} needs 12.8 MB more, only 8.")
    assert not models_in(cache) and not list(cache.rglob("*.incomplete"))
    assert state.served.get(NAME, 0) == 0


def test_a_disk_that_fills_mid_file_keeps_the_part_for_later(
    model_bytes: bytes, tmp_path: Path, small_disk: Path
) -> None:
    """Another program fills the disk while the file downloads: the write fails (ENOSPC), the run
    ends with one line naming the part kept; with space freed, the next run resumes from it."""
    cache = small_disk / "hub"
    state, partial = stalling_hub(model_bytes, cache)
    with serve_hub(state) as endpoint:
        env = cli_env(endpoint, cache, tmp_path)

        def fill_the_disk(process: subprocess.Popen[str]) -> None:
            fill(small_disk / "filler")
            state.release.set()  # the rest comes (a retry within the run) and meets a full disk

        code, stderr = cut_short(env, state, partial, fill_the_disk)
        assert code == 1 and "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == (
            f"tokendial: fetch failed: the disk is full: 10.5 MB of {NAME} (12.8 MB) were written to "
            f"{partial} and are kept: free some space and run the same command again to resume (or delete "
            "that file)"
        )
        assert partial.stat().st_size == CHUNK and not models_in(cache)
        (small_disk / "filler").unlink()
        del state.stall_after[NAME]
        check_second_run(state, env, model_bytes, CHUNK)
