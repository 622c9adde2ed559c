"""The library over real folder layouts: models folder, hub cache, llama.cpp, LM Studio, Ollama."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.library.gguf_files import write_gguf
from tui.library.scan import (
    SOURCE_HUB,
    SOURCE_LLAMA_CPP,
    SOURCE_LM_STUDIO,
    SOURCE_MODELS,
    SOURCE_OLLAMA,
    CardCache,
    Library,
    LibraryEntry,
    default_locations,
    ollama_name,
    scan_library,
)

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def hub_file(cache: Path, repo: str, name: str, **gguf: object) -> Path:
    """A file laid out the way huggingface_hub does: a blob, and a snapshot link to it."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    blob = write_gguf(folder / "blobs" / "tmp", **gguf)  # type: ignore[arg-type]
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    blob = blob.rename(folder / "blobs" / digest)
    link = folder / "snapshots" / "0123abcd" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text("0123abcd")
    return link


def ollama_model(root: Path, name: str, tag: str, *, namespace: str = "library", blob: bool = True) -> Path:
    """An Ollama store entry: a manifest whose model layer is a GGUF blob."""
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    data_path = write_gguf(blobs / "incoming", name=f"{name} {tag}")
    digest = hashlib.sha256(data_path.read_bytes()).hexdigest()
    if blob:
        data_path.rename(blobs / f"sha256-{digest}")
    else:
        data_path.unlink()
    manifest = root / "manifests" / "registry.ollama.ai" / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    layers = [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "0" * 64, "size": 1},
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": 1},
    ]
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))
    return manifest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder holding every store, and a models folder."""
    home = tmp_path / "home"
    models = home / "models"
    models.mkdir(parents=True)
    write_gguf(models / "Tiny-Q4_K_M.gguf")
    (models / "sub").mkdir()
    write_gguf(models / "sub" / "base-Q8_0.gguf", template=None, file_type=7)
    for part in (1, 2, 3):
        write_gguf(models / f"big-Q4_0-{part:05d}-of-00003.gguf", file_type=2, split=(part, 3))
    hub = home / ".cache" / "huggingface" / "hub"
    hub_file(hub, "someone/Tiny-GGUF", "tiny-q5_k_m.gguf", file_type=17)
    write_gguf(home / ".cache" / "llama.cpp" / "someone_Other-GGUF_other-Q6_K.gguf", file_type=18)
    write_gguf(home / ".lmstudio" / "models" / "lmstudio-community" / "Tiny-GGUF" / "Tiny-Q3_K_L.gguf")
    ollama_model(home / ".ollama" / "models", "tinyllama", "latest")
    return home


def scan(home: Path, **env: str) -> Library:
    locations = default_locations(home / "models", environ=env, home=home)
    return scan_library(locations, CardCache())


def by_label(library: Library) -> dict[str, LibraryEntry]:
    return {entry.label: entry for entry in library.entries}


def test_every_store_is_found_with_its_card(home: Path) -> None:
    library = scan(home)
    entries = by_label(library)
    assert library.notes == ()
    expected = {
        "Tiny-Q4_K_M.gguf": (SOURCE_MODELS, "Q4_K_M"),
        "sub/base-Q8_0.gguf": (SOURCE_MODELS, "Q8_0"),
        "big-Q4_0.gguf": (SOURCE_MODELS, "Q4_0"),
        "someone/Tiny-GGUF/tiny-q5_k_m.gguf": (SOURCE_HUB, "Q5_K_M"),
        "someone_Other-GGUF_other-Q6_K.gguf": (SOURCE_LLAMA_CPP, "Q6_K"),
        "lmstudio-community/Tiny-GGUF/Tiny-Q3_K_L.gguf": (SOURCE_LM_STUDIO, "Q4_K_M"),
        "tinyllama:latest": (SOURCE_OLLAMA, "Q4_K_M"),
    }
    assert {
        label: (e.source, e.card.quantization if e.card else None) for label, e in entries.items()
    } == expected
    assert all(entry.usable for entry in library.entries)
    assert not entries["sub/base-Q8_0.gguf"].card.has_chat_template  # type: ignore[union-attr]
    split = entries["big-Q4_0.gguf"]
    assert [p.name for p in split.parts] == [f"big-Q4_0-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    assert split.path == split.parts[0]
    assert split.card is not None and split.card.split_count == 3
    assert split.card.file_size == sum(p.stat().st_size for p in split.parts)
    ollama = entries["tinyllama:latest"]
    assert ollama.path.name.startswith("sha256-") and ollama.card is not None
    assert ollama.card.name == "tinyllama latest"


def test_environment_variables_name_the_stores(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    hub_file(elsewhere / "hub", "other/Model-GGUF", "m-Q4_K_M.gguf")
    write_gguf(elsewhere / "llama" / "cached-Q4_K_M.gguf")
    ollama_model(elsewhere / "ollama", "phi", "mini", namespace="someone")
    labels = set(
        by_label(
            scan(
                home,
                HF_HUB_CACHE=str(elsewhere / "hub"),
                LLAMA_CACHE=str(elsewhere / "llama"),
                OLLAMA_MODELS=str(elsewhere / "ollama"),
            )
        )
    )
    assert {"other/Model-GGUF/m-Q4_K_M.gguf", "cached-Q4_K_M.gguf", "someone/phi:mini"} <= labels
    assert "someone/Tiny-GGUF/tiny-q5_k_m.gguf" in labels  # the default cache is still looked through
    hf_home = by_label(scan(home, HF_HOME=str(elsewhere)))
    assert "other/Model-GGUF/m-Q4_K_M.gguf" in hf_home


def test_ollama_names() -> None:
    root = Path("/m/manifests")
    assert ollama_name(root / "registry.ollama.ai/library/llama3.2/3b", root) == "llama3.2:3b"
    assert ollama_name(root / "registry.ollama.ai/someone/model/q4", root) == "someone/model:q4"
    assert ollama_name(root / "hf.co/owner/repo/Q4_K_M", root) == "hf.co/owner/repo:Q4_K_M"


def test_the_same_file_twice_is_listed_once(home: Path) -> None:
    (home / "models" / "link.gguf").symlink_to(home / "models" / "Tiny-Q4_K_M.gguf")
    extra = home / "extra"
    extra.mkdir()
    (extra / "again.gguf").symlink_to(home / "models" / "Tiny-Q4_K_M.gguf")
    locations = default_locations(home / "models", [extra], environ={}, home=home)
    labels = [entry.label for entry in scan_library(locations, CardCache()).entries]
    assert sum(label in ("Tiny-Q4_K_M.gguf", "link.gguf", "again.gguf") for label in labels) == 1


def test_bad_input_gets_one_line_each_and_the_rest_still_works(home: Path) -> None:
    models = home / "models"
    (models / "damaged.gguf").write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\x01" * 30)
    (models / "notes.gguf").write_text("not a model")
    (models / "loop").symlink_to(models)  # a folder link back to its parent
    (models / "self.gguf").symlink_to(models / "self.gguf")  # a link to itself
    (models / "gone.gguf").symlink_to(models / "nowhere.gguf")
    (models / "big-Q4_0-00002-of-00003.gguf").unlink()
    ollama_model(home / ".ollama" / "models", "ghost", "7b", blob=False)
    library = scan(home)
    entries = by_label(library)
    problems = {label: entry.problem for label, entry in entries.items() if entry.problem}
    assert problems == {
        "damaged.gguf": problems["damaged.gguf"],
        "notes.gguf": "not a GGUF file (it starts with b'not ', not b'GGUF')",
        "self.gguf": "a symbolic link loop",
        "gone.gguf": "a broken link (its target is missing)",
        "big-Q4_0.gguf": "split model: part 2 of 3 missing",
        "ghost:7b": problems["ghost:7b"],
    }
    assert problems["damaged.gguf"].startswith(("truncated", "damaged"))
    assert "model blob sha256-" in problems["ghost:7b"] and "is missing" in problems["ghost:7b"]
    assert [note for note in library.notes if "symbolic link loop" in note] == [
        f"{models / 'loop'}: a symbolic link loop (a folder already looked through), skipped"
    ]
    assert entries["Tiny-Q4_K_M.gguf"].usable and entries["tinyllama:latest"].usable


def test_a_rescan_reads_only_what_changed(home: Path) -> None:
    cache = CardCache()
    locations = default_locations(home / "models", environ={}, home=home)
    first = scan_library(locations, cache)
    path = home / "models" / "Tiny-Q4_K_M.gguf"
    write_gguf(path, name="Changed")
    second = by_label(scan_library(locations, cache))
    assert second["Tiny-Q4_K_M.gguf"].card.name == "Changed"  # type: ignore[union-attr]
    assert len(first.entries) == len(second)


@pytest.fixture
def open_home() -> Iterator[Path]:
    """A models folder anyone can enter, with one folder nobody but root may read."""
    home = Path(tempfile.mkdtemp(prefix="tokendial-library-"))
    home.chmod(0o755)
    models = home / "models"
    models.mkdir()
    write_gguf(models / "Tiny-Q4_K_M.gguf", n_vocab=16)
    locked = models / "locked"
    locked.mkdir()
    write_gguf(locked / "hidden.gguf", n_vocab=16)
    for path in (home, models):
        path.chmod(0o755)
    (models / "Tiny-Q4_K_M.gguf").chmod(0o644)
    locked.chmod(0o000)
    yield home
    locked.chmod(0o755)
    shutil.rmtree(home)


def test_a_folder_without_permission_is_a_line_not_a_crash(open_home: Path) -> None:
    """For real: as root the listing runs as the user nobody (setpriv), who can't open the folder."""
    command = [sys.executable, "-m", "tui.cli", "models", "--json"]
    env = {
        **os.environ,
        "HOME": str(open_home),
        "XDG_CONFIG_HOME": str(open_home),
        "XDG_CACHE_HOME": str(open_home / "cache"),
        "XDG_DATA_HOME": "/nonexistent",
        "TOKENDIAL_MODELS_DIR": str(open_home / "models"),
    }
    for name in ("HF_HUB_CACHE", "HF_HOME", "LLAMA_CACHE", "OLLAMA_MODELS"):
        env.pop(name, None)
    if RUNNING_AS_ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root (which reads any folder) and setpriv is missing to drop to nobody")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        probe = [*command[:4], sys.executable, "-c", "import tui.cli"]
        if subprocess.run(probe, capture_output=True, env=env, timeout=60, check=False).returncode != 0:
            pytest.skip(
                "the user nobody cannot read this Python environment (.ci/run makes its venv readable)"
            )
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [model["label"] for model in listing["models"]] == ["Tiny-Q4_K_M.gguf"]
    assert listing["notes"] == [
        f"{open_home / 'models' / 'locked'}: cannot read it: permission denied, not looked into"
    ]


def test_cards_are_kept_between_runs(home: Path, tmp_path: Path) -> None:
    locations = default_locations(home / "models", environ={}, home=home)
    first = scan_library(locations, CardCache(tmp_path / "cards.json"))
    assert (tmp_path / "cards.json").is_file()
    reloaded = CardCache(tmp_path / "cards.json")
    assert len(reloaded._cards) == sum(entry.card is not None for entry in first.entries)
    second = scan_library(locations, reloaded)
    assert [e.card for e in second.entries] == [e.card for e in first.entries]
    assert not reloaded._dirty  # nothing was read again
    (tmp_path / "cards.json").write_text("{not json")
    assert scan_library(locations, CardCache(tmp_path / "cards.json")).entries == first.entries
