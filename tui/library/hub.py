"""Downloading a GGUF from the Hugging Face hub the field's way: ``hf:OWNER/REPO[:QUANT]``.

Like llama.cpp's ``-hf``: the quant is matched case-insensitively against the repo's GGUF files
(default Q4_K_M; otherwise the files that exist are named), a split model's parts come together,
and everything lands in the standard hub cache (``HF_HUB_CACHE``, ``HF_HOME/hub``,
``~/.cache/huggingface/hub``), where other tools find it too. ``huggingface_hub`` does the
transfers: ``HF_TOKEN``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` apply (read when called, not
when the library was imported) and its progress goes to a callback.

Resume across runs: huggingface_hub 2.x writes each download to a file of its own
(``blobs/<etag>.<random>.incomplete``) and deletes it when the download fails, so a download cut
short (a killed process, Ctrl-C, a dropped connection it gave up on) would start from zero next
time. The GGUF files are therefore transferred here first, with huggingface_hub's own
``http_get``, into ``blobs/<etag>.incomplete`` (the name older huggingface_hub versions resume
from) under the cache's lock for that blob: each run goes on from the bytes already there with a
Range request, the finished file is checked against its SHA-256 (the etag of a large file) and
renamed to ``blobs/<etag>``; ``hf_hub_download`` then finds the blob and makes the snapshot link.
A partial file is never in ``snapshots/``, so it is never seen as a model.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.core.text import one_line
from tui.library.card import quant_from_name
from tui.library.gguf_header import GGUFHeaderError, read_header
from tui.library.scan import SPLIT_RE

DEFAULT_QUANT = "Q4_K_M"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
NOT_MODELS = ("mmproj",)
"""GGUF files in a model repo that are parts, not models (vision projectors)."""


Progress = Callable[[int, int], None]
"""Receives (bytes done, bytes total) of the file being downloaded."""


class HubError(Exception):
    """A download from the hub failed; ``str(err)`` is one line for the user."""


@dataclass(frozen=True)
class HubSpec:
    """``hf:OWNER/REPO[:QUANT]`` parsed."""

    repo_id: str
    quant: str | None = None

    def __str__(self) -> str:
        return f"hf:{self.repo_id}" + (f":{self.quant}" if self.quant else "")


@dataclass(frozen=True)
class HubFetched:
    """What :func:`fetch_hf` left in the cache: the file to load and every part of it."""

    path: Path
    parts: tuple[Path, ...]
    files: tuple[str, ...]
    """The repo's file names that were fetched."""


def parse_hf_spec(text: str) -> HubSpec:
    """``hf:OWNER/REPO[:QUANT]`` (the ``hf:`` is optional) -> HubSpec; raises HubError."""
    body = text.strip()
    if body.lower().startswith("hf:"):
        body = body[3:]
    repo, _, quant = body.partition(":")
    if not _REPO_RE.match(repo):
        raise HubError(f"{text!r} is not a hub model: write hf:OWNER/REPO or hf:OWNER/REPO:QUANT")
    return HubSpec(repo, quant.strip() or None)


def hub_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The hub cache huggingface_hub uses: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    env = os.environ if environ is None else environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    cache_home = (
        Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    )
    return cache_home / "huggingface" / "hub"


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _split_key(name: str) -> str:
    """Split parts share one key (the name without ``-0000N-of-0000M``)."""
    base = name.rsplit("/", 1)
    match = SPLIT_RE.match(base[-1])
    if not match:
        return name
    return "/".join([*base[:-1], f"{match.group('stem')}.gguf"])


def model_groups(files: Sequence[str]) -> dict[str, list[str]]:
    """The repo's GGUF models: key -> its files (a split model's parts in order); projectors left out."""
    groups: dict[str, list[str]] = {}
    for name in sorted(files):
        leaf = name.rsplit("/", 1)[-1].lower()
        if not leaf.endswith(".gguf") or any(word in leaf for word in NOT_MODELS):
            continue
        groups.setdefault(_split_key(name), []).append(name)
    return groups


def _quant_pattern(quant: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z0-9]){re.escape(quant.lower())}(?![a-z0-9])")


def choose_model(spec: HubSpec, files: Sequence[str]) -> list[str]:
    """The files to fetch for ``spec`` from the repo's ``files``; raises HubError with the choices."""
    groups = model_groups(files)
    if not groups:
        shown = ", ".join(sorted(files)[:8]) + (", ..." if len(files) > 8 else "")
        raise HubError(f"{spec.repo_id} has no GGUF files (it has: {shown or 'no files'}); pick a GGUF repo")
    quant = spec.quant or DEFAULT_QUANT
    if quant.lower().endswith(".gguf"):
        exact = [
            key for key in groups if key.lower() == quant.lower() or key.lower().endswith("/" + quant.lower())
        ]
        exact += [key for key, parts in groups.items() if quant.lower() in (p.lower() for p in parts)]
        matches = list(dict.fromkeys(exact))
    else:
        matches = [
            key for key in groups if (quant_from_name(key.rsplit("/", 1)[-1]) or "").lower() == quant.lower()
        ]
        if not matches:
            pattern = _quant_pattern(quant)
            matches = [key for key in groups if pattern.search(key.lower())]
    if len(matches) == 1:
        return groups[matches[0]]
    available = sorted({quant_from_name(key.rsplit("/", 1)[-1]) or key for key in groups})
    if not matches:
        default = " (the default)" if spec.quant is None else ""
        raise HubError(
            f"{spec.repo_id} has no GGUF for quant {quant}{default}; it has: {', '.join(available)} "
            f"(e.g. hf:{spec.repo_id}:{available[0]})"
        )
    raise HubError(
        f"quant {quant} matches {len(matches)} files in {spec.repo_id}: {', '.join(sorted(matches))}; "
        f"name one, e.g. hf:{spec.repo_id}:{sorted(matches)[0].rsplit('/', 1)[-1]}"
    )


def _cached_files(cache: Path, repo_id: str) -> list[str]:
    """The repo's files already in the hub cache (any snapshot), for offline use."""
    snapshots = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    found: set[str] = set()
    try:
        for snapshot in snapshots.iterdir():
            for path in snapshot.rglob("*"):
                if path.is_file():
                    found.add(path.relative_to(snapshot).as_posix())
    except OSError:
        return []
    return sorted(found)


def fetch_hf(
    spec: HubSpec,
    *,
    environ: Mapping[str, str] | None = None,
    report: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> HubFetched:
    """Fetch ``spec``'s GGUF (all its parts) into the hub cache; raises HubError with one line."""
    import huggingface_hub  # noqa: F401  (first: its logger and stderr handler exist before they are rerouted)

    with _hub_warnings_as_lines(report):
        return _fetch_hf(spec, environ=environ, report=report, progress=progress)


@contextlib.contextmanager
def _hub_warnings_as_lines(report: Callable[[str], None]) -> Any:
    """huggingface_hub's own warnings (e.g. "Trying to resume download..." after a broken
    connection) as one ``report`` line each, instead of its stderr handler writing into the middle
    of the progress line."""
    logger = logging.getLogger("huggingface_hub")

    class ToReport(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            report(f"huggingface_hub: {one_line(record.getMessage(), 300)}")

    handler = ToReport(logging.WARNING)
    propagate = logger.propagate
    hidden = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    for stream_handler in hidden:
        logger.removeHandler(stream_handler)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        for stream_handler in hidden:
            logger.addHandler(stream_handler)
        logger.propagate = propagate


def _fetch_hf(
    spec: HubSpec,
    *,
    environ: Mapping[str, str] | None,
    report: Callable[[str], None],
    progress: Progress | None,
) -> HubFetched:
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    env = os.environ if environ is None else environ
    endpoint = (env.get("HF_ENDPOINT") or "").rstrip("/") or None
    token = env.get("HF_TOKEN") or None
    offline = _is_true(env.get("HF_HUB_OFFLINE"))
    cache = hub_cache_dir(env)
    where = endpoint or "the hub"
    kwargs: dict[str, Any] = {"endpoint": endpoint, "token": token}
    try:
        if offline:
            files = _cached_files(cache, spec.repo_id)
            if not files:
                raise HubError(
                    f"offline (HF_HUB_OFFLINE is set) and {spec.repo_id} is not in the hub cache ({cache})"
                )
        else:
            api = huggingface_hub.HfApi(**kwargs)
            files = list(api.list_repo_files(spec.repo_id))
        chosen = choose_model(spec, files)
        paths: list[Path] = []
        for index, name in enumerate(chosen, 1):
            part = f" (part {index} of {len(chosen)})" if len(chosen) > 1 else ""
            report(f"fetching {name}{part} from {spec.repo_id} into {cache}")
            if not offline:
                download_blob(
                    spec, name, cache, endpoint=endpoint, token=token, report=report, progress=progress
                )
            local = huggingface_hub.hf_hub_download(
                spec.repo_id,
                name,
                cache_dir=cache,
                local_files_only=offline,
                tqdm_class=_progress_bar(progress),
                **kwargs,
            )
            paths.append(Path(local))
    except HubError:
        raise
    except hub_errors.GatedRepoError:
        raise HubError(f"{spec.repo_id} is gated: accept its terms on the hub, then set HF_TOKEN") from None
    except hub_errors.RepositoryNotFoundError:
        raise HubError(
            f"no such repo on {where}: {spec.repo_id} (check the name; a private repo needs HF_TOKEN)"
        ) from None
    except hub_errors.RevisionNotFoundError:
        raise HubError(f"{spec.repo_id} has no main revision on {where}") from None
    except hub_errors.OfflineModeIsEnabled:
        raise HubError(
            f"offline (HF_HUB_OFFLINE is set) and {spec} is not in the hub cache ({cache})"
        ) from None
    except hub_errors.LocalEntryNotFoundError:
        what = "offline (HF_HUB_OFFLINE is set)" if offline else f"cannot reach {where}"
        raise HubError(f"{what}, and {spec} is not complete in the hub cache ({cache})") from None
    except hub_errors.HfHubHTTPError as exc:
        raise HubError(f"{where} refused the download: {_first_line(exc)}") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise HubError(f"the disk is full: {spec} did not fit in {cache}") from None
        raise HubError(f"cannot fetch {spec}: {_first_line(exc)}") from None
    except KeyboardInterrupt:
        raise HubError(f"interrupted: {spec} is not complete (run the same command again)") from None
    except Exception as exc:  # httpx2's connection errors and the like: one line, never a traceback
        raise HubError(
            f"cannot fetch {spec} from {where}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    try:
        read_header(paths[0])
    except (GGUFHeaderError, OSError) as exc:
        _forget(paths)
        raise HubError(
            f"{chosen[0]} from {spec.repo_id} is not a usable GGUF ({exc}); it was removed from the cache"
        ) from None
    return HubFetched(paths[0], tuple(paths), tuple(chosen))


PARTIAL_SUFFIX = ".incomplete"
"""A blob being downloaded: ``blobs/<etag>.incomplete`` (never under ``snapshots/``)."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def partial_path(cache: Path, repo_id: str, etag: str) -> Path:
    """Where the blob ``etag`` of ``repo_id`` is downloaded to before it is complete."""
    return cache / f"models--{repo_id.replace('/', '--')}" / "blobs" / f"{etag}{PARTIAL_SUFFIX}"


def download_blob(
    spec: HubSpec,
    name: str,
    cache: Path,
    *,
    endpoint: str | None,
    token: str | None,
    report: Callable[[str], None],
    progress: Progress | None,
) -> None:
    """Download the file ``name`` of ``spec``'s repo into its blob in the hub cache, resuming from the
    bytes a run before left in ``blobs/<etag>.incomplete``; raises HubError (disk full, interrupted,
    damaged) with one line, and huggingface_hub's errors (fetch_hf words them).

    A file stored with Xet is left to ``hf_hub_download`` (hf_xet keeps its own chunk cache).
    """
    import huggingface_hub
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils._fixes import WeakFileLock  # the lock hf_hub_download takes (pinned 2.4.0)
    from huggingface_hub.utils._headers import build_hf_headers

    url = huggingface_hub.hf_hub_url(spec.repo_id, name, endpoint=endpoint)
    try:
        meta = huggingface_hub.get_hf_file_metadata(url, token=token, endpoint=endpoint)
    except Exception:  # refused, unreachable...: hf_hub_download then uses the cache or says why
        return
    if meta.etag is None or meta.size is None or meta.xet_file_data is not None:
        return  # nothing to resume by: huggingface_hub downloads it as it does
    partial = partial_path(cache, spec.repo_id, meta.etag)
    blob = partial.with_name(meta.etag)
    if blob.exists():
        return
    partial.parent.mkdir(parents=True, exist_ok=True)
    lock = cache / ".locks" / partial.parent.parent.name / f"{meta.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        have = partial.stat().st_size if partial.exists() else 0
        if have > meta.size:  # not this file's beginning: start again
            partial.unlink()
            have = 0
        if have:
            report(f"resuming {name} at {_mb(have)} of {_mb(meta.size)} (kept from an earlier run)")
        free = shutil.disk_usage(partial.parent).free
        if free < meta.size - have:
            kept = f"; the {_mb(have)} already downloaded are kept in {partial}" if have else ""
            raise HubError(
                f"the disk is full: {name} needs {_mb(meta.size - have)} more, only {_mb(free)} free in "
                f"{partial.parent}{kept}"
            )
        try:
            with open(partial, "r+b" if have else "wb") as handle:
                handle.seek(have)
                http_get(
                    meta.location or url,
                    handle,
                    resume_size=have,
                    headers=build_hf_headers(token=token),
                    expected_size=meta.size,
                    displayed_filename=name,
                    tqdm_class=_progress_bar(progress),
                )
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            done = partial.stat().st_size if partial.exists() else 0
            raise HubError(
                f"the disk is full: {_mb(done)} of {name} ({_mb(meta.size)}) were written to {partial} and "
                "are kept: free some space and run the same command again to resume (or delete that file)"
            ) from None
        except KeyboardInterrupt:
            done = partial.stat().st_size if partial.exists() else 0
            if not done:
                partial.unlink(missing_ok=True)
                raise HubError(f"interrupted before any of {name} was written: run it again") from None
            raise HubError(
                f"interrupted: {_mb(done)} of {name} ({_mb(meta.size)}) are kept in {partial}; run the same "
                "command again to resume"
            ) from None
        if _SHA256.match(meta.etag) and _sha256(partial) != meta.etag:
            partial.unlink()
            raise HubError(f"{name} arrived damaged (its SHA-256 is not the hub's): removed, run it again")
        os.replace(partial, blob)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _forget(paths: Sequence[Path]) -> None:
    """Remove downloaded files from the hub cache: each snapshot link and the blob it points at."""
    for path in paths:
        with contextlib.suppress(OSError):
            blob = path.resolve()
            path.unlink()
            if blob != path:
                blob.unlink()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _progress_bar(progress: Progress | None) -> type[Any]:
    """A tqdm class for huggingface_hub that draws nothing itself and passes (done, total) bytes on."""
    from tqdm.auto import tqdm

    class ProgressBar(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            self.bytes_done = int(kwargs.get("initial") or 0)
            self.bytes_total = int(kwargs.get("total") or 0)
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            self.bytes_done += int(n or 0)
            if progress is not None:
                progress(self.bytes_done, max(self.bytes_total, self.bytes_done))
            result: bool | None = super().update(n)
            return result

    return ProgressBar
