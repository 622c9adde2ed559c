"""``hf:OWNER/REPO[:QUANT]`` downloads against a small hub of our own on 127.0.0.1 (HF_ENDPOINT)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.library.gguf_files import write_gguf
from tests.library.hub_server import HubState, serve_hub
from tui.library.hub import HubError, HubSpec, choose_model, fetch_hf, hub_cache_dir, parse_hf_spec
from tui.library.scan import SOURCE_HUB, CardCache, Location, scan_library

REPO = "someone/Tiny-GGUF"


def gguf_bytes(tmp_path: Path, name: str, **options: Any) -> bytes:
    data: bytes = write_gguf(tmp_path / "made" / name, **options).read_bytes()
    return data


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[HubState, dict[str, str]]]:
    """A hub with one GGUF repo (three quants, one split in two), a repo without GGUF, and the
    environment that points huggingface_hub at it."""
    state = HubState()
    state.repos[REPO] = {
        "README.md": b"# tiny\n",
        "tiny-Q4_K_M.gguf": gguf_bytes(tmp_path, "a.gguf", n_vocab=2000),
        "tiny-Q8_0.gguf": gguf_bytes(tmp_path, "b.gguf", file_type=7),
        "tiny-Q4_K_S.gguf": gguf_bytes(tmp_path, "c.gguf", file_type=14),
        "F16/tiny-F16-00001-of-00002.gguf": gguf_bytes(tmp_path, "d1.gguf", file_type=1, split=(1, 2)),
        "F16/tiny-F16-00002-of-00002.gguf": gguf_bytes(tmp_path, "d2.gguf", file_type=1, split=(2, 2)),
        "mmproj-tiny-f16.gguf": gguf_bytes(tmp_path, "e.gguf", arch="clip"),
    }
    state.repos["someone/safetensors-only"] = {"config.json": b"{}", "model.safetensors": b"\0" * 16}
    with serve_hub(state) as endpoint:
        yield state, {"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(tmp_path / "hub"), "HOME": str(tmp_path)}


def test_parse_spec() -> None:
    assert parse_hf_spec("hf:owner/repo") == HubSpec("owner/repo", None)
    assert parse_hf_spec("owner/repo:q8_0") == HubSpec("owner/repo", "q8_0")
    with pytest.raises(HubError, match="not a hub model"):
        parse_hf_spec("hf:just-a-name")


def test_default_quant_lands_in_the_hub_cache(hub: tuple[HubState, dict[str, str]], tmp_path: Path) -> None:
    state, env = hub
    fetched = fetch_hf(parse_hf_spec(f"hf:{REPO}"), environ=env, report=lambda line: None)
    assert fetched.files == ("tiny-Q4_K_M.gguf",)
    assert fetched.path.read_bytes() == state.repos[REPO]["tiny-Q4_K_M.gguf"]
    snapshot = tmp_path / "hub" / "models--someone--Tiny-GGUF" / "snapshots"
    assert fetched.path.parent.parent == snapshot and fetched.path.is_symlink()  # the standard layout
    library = scan_library([Location(SOURCE_HUB, tmp_path / "hub")], CardCache())
    assert [entry.label for entry in library.entries] == [f"{REPO}/tiny-Q4_K_M.gguf"]
    assert library.entries[0].usable


def test_quant_is_matched_case_insensitively(hub: tuple[HubState, dict[str, str]]) -> None:
    _, env = hub
    fetched = fetch_hf(HubSpec(REPO, "q8_0"), environ=env, report=lambda line: None)
    assert fetched.files == ("tiny-Q8_0.gguf",)


def test_split_files_come_together(hub: tuple[HubState, dict[str, str]]) -> None:
    state, env = hub
    fetched = fetch_hf(HubSpec(REPO, "f16"), environ=env, report=lambda line: None)
    assert fetched.files == ("F16/tiny-F16-00001-of-00002.gguf", "F16/tiny-F16-00002-of-00002.gguf")
    assert fetched.path == fetched.parts[0]
    assert [p.read_bytes() for p in fetched.parts] == [state.repos[REPO][name] for name in fetched.files]


def test_offline_uses_the_cache_and_says_when_it_cannot(hub: tuple[HubState, dict[str, str]]) -> None:
    state, env = hub
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    with pytest.raises(HubError, match=r"^offline \(HF_HUB_OFFLINE is set\) and someone/Tiny-GGUF is not in"):
        fetch_hf(HubSpec(REPO), environ=offline, report=lambda line: None)
    fetch_hf(HubSpec(REPO), environ=env, report=lambda line: None)
    asked = len(state.requests)
    again = fetch_hf(HubSpec(REPO), environ=offline, report=lambda line: None)
    assert again.files == ("tiny-Q4_K_M.gguf",) and len(state.requests) == asked  # nothing asked of the hub


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (HubSpec("nobody/nothing"), "no such repo on http://127.0.0.1:"),
        (HubSpec(REPO, "Q2_K"), "has no GGUF for quant Q2_K; it has: F16, Q4_K_M, Q4_K_S, Q8_0"),
        (
            HubSpec(REPO, "Q4_K"),
            "quant Q4_K matches 2 files in someone/Tiny-GGUF: tiny-Q4_K_M.gguf, tiny-Q4_K_S.gguf",
        ),
        (HubSpec("someone/safetensors-only"), "has no GGUF files (it has: config.json, model.safetensors)"),
    ],
)
def test_clear_one_line_errors(hub: tuple[HubState, dict[str, str]], spec: HubSpec, message: str) -> None:
    _, env = hub
    with pytest.raises(HubError) as caught:
        fetch_hf(spec, environ=env, report=lambda line: None)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_no_hub_there(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_CACHE": str(tmp_path / "hub")}
    with pytest.raises(HubError, match=f"^cannot fetch hf:{REPO} from http://127.0.0.1:{port}"):
        fetch_hf(HubSpec(REPO), environ=env, report=lambda line: None)


def test_a_broken_transfer_is_resumed(
    hub: tuple[HubState, dict[str, str]], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """huggingface_hub writes in 10 MiB chunks: a transfer broken after the first one goes on from
    there with a Range request (what was received is kept, not fetched again). Its warning about
    it comes as one report line, not from its own stderr handler (into the progress line)."""
    state, env = hub
    data = gguf_bytes(tmp_path, "big.gguf", weights=3_200_000)  # 12.8 MB
    state.repos[REPO]["tiny-Q4_K_M.gguf"] = data
    cut = 11 * 1024 * 1024
    state.drop_after["tiny-Q4_K_M.gguf"] = cut
    lines: list[str] = []
    capfd.readouterr()
    fetched = fetch_hf(HubSpec(REPO), environ=env, report=lines.append)
    warned = [line for line in lines if line.startswith("huggingface_hub: ")]
    assert len(warned) == 1 and "resume" in warned[0] and "\n" not in warned[0], lines
    assert "resume" not in capfd.readouterr().err
    assert hashlib.sha256(fetched.path.read_bytes()).digest() == hashlib.sha256(data).digest()
    ranges = [
        r for method, path, r in state.requests if method == "GET" and path.endswith("tiny-Q4_K_M.gguf")
    ]
    assert ranges == [None, f"bytes={10 * 1024 * 1024}-"]


def test_a_file_that_is_not_a_gguf_is_not_kept(hub: tuple[HubState, dict[str, str]], tmp_path: Path) -> None:
    state, env = hub
    state.repos[REPO]["tiny-Q8_0.gguf"] = state.repos[REPO]["tiny-Q8_0.gguf"][:300]
    with pytest.raises(
        HubError, match=r"tiny-Q8_0\.gguf from someone/Tiny-GGUF is not a usable GGUF \(truncated"
    ):
        fetch_hf(HubSpec(REPO, "Q8_0"), environ=env, report=lambda line: None)
    repo = tmp_path / "hub" / "models--someone--Tiny-GGUF"
    assert not list((repo / "snapshots").rglob("*.gguf")) and not list((repo / "blobs").iterdir())


def test_choose_model_ignores_projectors_and_takes_a_file_name() -> None:
    files = ["a-Q4_K_M.gguf", "mmproj-a-Q4_K_M.gguf", "b/a-Q4_K_M.gguf"]
    with pytest.raises(HubError, match="matches 2 files"):
        choose_model(HubSpec("o/r"), files)
    assert choose_model(HubSpec("o/r", "b/a-Q4_K_M.gguf"), files) == ["b/a-Q4_K_M.gguf"]


def test_hub_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    assert hub_cache_dir({"HF_HUB_CACHE": "/x/hub", "HF_HOME": "/y"}) == Path("/x/hub")
    assert hub_cache_dir({"HF_HOME": "/y"}) == Path("/y/hub")
    assert hub_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/huggingface/hub")


def _cli_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TOKENDIAL_"))}
    return {
        **clean,
        **env,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "TOKENDIAL_MODELS_DIR": str(tmp_path / "m"),
    }


def test_cli_fetch_shows_progress_and_the_library_lists_it(
    hub: tuple[HubState, dict[str, str]], tmp_path: Path
) -> None:
    _, env = hub
    cli = [sys.executable, "-m", "tui.cli"]
    result = subprocess.run(
        [*cli, "fetch", f"hf:{REPO}:q4_k_m"],
        capture_output=True,
        text=True,
        env=_cli_env(env, tmp_path),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"fetching tiny-Q4_K_M.gguf from {REPO}" in result.stderr
    assert "downloading 100% (0.1/0.1 MB)" in result.stderr  # the progress bar (as lines: not a terminal)
    assert "ready: " + str(tmp_path / "hub" / "models--someone--Tiny-GGUF" / "snapshots") in result.stderr
    listing = subprocess.run(
        [*cli, "models"], capture_output=True, text=True, env=_cli_env(env, tmp_path), timeout=120
    )
    assert listing.returncode == 0 and f"{REPO}/tiny-Q4_K_M.gguf" in listing.stdout
    bad = subprocess.run(
        [*cli, "fetch", f"hf:{REPO}:Q2_K"],
        capture_output=True,
        text=True,
        env=_cli_env(env, tmp_path),
        timeout=120,
    )
    assert bad.returncode == 1
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("tokendial: fetch failed: someone/Tiny-GGUF has no GGUF")
    )
    assert "Traceback" not in bad.stderr


def test_an_interrupted_download_leaves_nothing(hub: tuple[HubState, dict[str, str]], tmp_path: Path) -> None:
    state, env = hub
    state.stall_after["tiny-Q8_0.gguf"] = 1000
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "fetch", f"hf:{REPO}:Q8_0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_cli_env(env, tmp_path),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # also from a background job
    )
    try:
        assert state.stalled.wait(60), "the download never started"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    assert stderr.strip().splitlines()[-1] == (
        "tokendial: fetch failed: interrupted before any of tiny-Q8_0.gguf was written: run it again"
    )
    assert "Traceback" not in stderr
    repo = tmp_path / "hub" / "models--someone--Tiny-GGUF"
    assert not list((repo / "snapshots").rglob("*.gguf")) if (repo / "snapshots").exists() else True
    assert (
        not [p for p in (repo / "blobs").iterdir() if p.stat().st_size] if (repo / "blobs").exists() else True
    )


@pytest.mark.real_model
def test_hf_flag_fetches_a_real_model_and_generates(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--hf`` downloads the default model from our hub into the cache, then ``generate`` runs on it."""
    from tui.cli import main

    state = HubState()
    state.repos["HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"] = {
        "smollm2-135m-instruct-q4_1.gguf": model_path.read_bytes()
    }
    with serve_hub(state) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        code = main(
            [
                "--hf",
                "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1",
                "--n-threads",
                "1",
                "--sampling.mode",
                "greedy",
                "--sampling.max-new-tokens",
                "4",
                "generate",
                "--raw",
                "My favourite dessert is a piece of",
            ]
        )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (
        "ready: " + str(tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF")
        in captured.err
    )
    assert captured.out.strip() and "[stopped at 4/4 tokens (max new tokens)]" in captured.err


def test_a_private_repo_needs_hf_token(hub: tuple[HubState, dict[str, str]]) -> None:
    state, env = hub
    state.tokens[REPO] = "hf_secret"
    with pytest.raises(HubError, match=r"no such repo on .*a private repo needs HF_TOKEN"):
        fetch_hf(HubSpec(REPO), environ=env, report=lambda line: None)
    fetched = fetch_hf(HubSpec(REPO), environ={**env, "HF_TOKEN": "hf_secret"}, report=lambda line: None)
    assert fetched.files == ("tiny-Q4_K_M.gguf",)
