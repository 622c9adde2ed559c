"""The model library: every GGUF a user has, in tokendial's models folder and other tools' stores.

Looked through, in this order (the first place a file is found names it; the same file reached
twice, e.g. through a link, is listed once): the models folder, extra folders from the
``library_dirs`` setting, the Hugging Face hub cache (``HF_HUB_CACHE``, ``HF_HOME/hub``,
``~/.cache/huggingface/hub``: ``models--OWNER--REPO/snapshots/REV/...``), llama.cpp's cache
(``LLAMA_CACHE``, ``~/.cache/llama.cpp``), LM Studio (``~/.lmstudio/models/PUBLISHER/MODEL/``)
and Ollama (``OLLAMA_MODELS`` or ``~/.ollama/models``: a manifest's model layer is a GGUF blob).
Split models (``-00001-of-00003.gguf``) are one entry. Each entry's card comes from the file's
header only. Nothing here raises: an unreadable folder or file becomes a line saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.library.card import ModelCard, card_from_header
from tui.library.gguf_header import GGUFHeaderError, read_header

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
MAX_DEPTH = 8
"""Folders deeper than this below a scanned root are not looked into."""
MAX_FILES = 5000
"""At most this many GGUF files are read per scan."""
SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.IGNORECASE)

SOURCE_MODELS = "models folder"
SOURCE_FOLDER = "folder"
SOURCE_HUB = "hub cache"
SOURCE_LLAMA_CPP = "llama.cpp cache"
SOURCE_LM_STUDIO = "LM Studio"
SOURCE_OLLAMA = "Ollama"


@dataclass(frozen=True)
class Location:
    """A place to look for models."""

    source: str
    path: Path
    explicit: bool = False
    """Named by a setting or environment variable: when it is missing, say so."""


@dataclass(frozen=True)
class LibraryEntry:
    """One model in the library (a split model is one entry)."""

    path: Path
    """The file to load (the first part of a split model)."""
    source: str
    label: str
    """How the user knows it: a path under the models folder, ``OWNER/REPO/FILE``, an Ollama name."""
    parts: tuple[Path, ...] = ()
    card: ModelCard | None = None
    problem: str | None = None
    """Why it can't be used (damaged, missing part, unreadable), or None."""

    @property
    def usable(self) -> bool:
        """It has a card and no problem."""
        return self.card is not None and self.problem is None


@dataclass(frozen=True)
class Library:
    """The result of a scan: entries, and one line per folder that could not be looked through."""

    entries: tuple[LibraryEntry, ...]
    notes: tuple[str, ...] = ()
    locations: tuple[Location, ...] = field(default_factory=tuple)


def default_locations(
    models_dir: Path,
    extra_dirs: Sequence[Path] = (),
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> list[Location]:
    """The places to scan, from the settings, the environment and the home folder."""
    env = os.environ if environ is None else environ
    home = home if home is not None else Path.home()

    def env_path(name: str) -> Path | None:
        value = env.get(name)
        return Path(value).expanduser() if value else None

    cache_home = env_path("XDG_CACHE_HOME") or home / ".cache"
    locations = [Location(SOURCE_MODELS, models_dir, explicit=True)]
    locations += [Location(SOURCE_FOLDER, Path(extra).expanduser(), explicit=True) for extra in extra_dirs]
    hub_cache = env_path("HF_HUB_CACHE")
    hf_home = env_path("HF_HOME")
    if hub_cache:
        locations.append(Location(SOURCE_HUB, hub_cache, explicit=True))
    if hf_home:
        locations.append(Location(SOURCE_HUB, hf_home / "hub", explicit=not hub_cache))
    locations.append(Location(SOURCE_HUB, cache_home / "huggingface" / "hub"))
    llama_cache = env_path("LLAMA_CACHE")
    if llama_cache:
        locations.append(Location(SOURCE_LLAMA_CPP, llama_cache, explicit=True))
    locations.append(Location(SOURCE_LLAMA_CPP, cache_home / "llama.cpp"))
    locations.append(Location(SOURCE_LM_STUDIO, home / ".lmstudio" / "models"))
    locations.append(Location(SOURCE_LM_STUDIO, home / ".cache" / "lm-studio" / "models"))
    ollama = env_path("OLLAMA_MODELS")
    if ollama:
        locations.append(Location(SOURCE_OLLAMA, ollama, explicit=True))
    locations.append(Location(SOURCE_OLLAMA, home / ".ollama" / "models"))
    seen: set[Path] = set()
    unique: list[Location] = []
    for location in locations:
        key = location.path.absolute()
        if key not in seen:
            seen.add(key)
            unique.append(location)
    return unique


@dataclass
class _Found:
    """A GGUF file found while walking, before its card is read."""

    path: Path
    source: str
    label: str


@dataclass
class _Scan:
    notes: list[str] = field(default_factory=list)
    found: list[_Found] = field(default_factory=list)
    problems: list[LibraryEntry] = field(default_factory=list)
    seen_files: set[tuple[int, int]] = field(default_factory=set)

    def add(self, path: Path, source: str, label: str) -> None:
        if len(self.found) >= MAX_FILES:
            return
        try:
            info = path.stat()
        except OSError as exc:
            self.problems.append(LibraryEntry(path, source, label, (path,), problem=_os_problem(exc)))
            return
        key = (info.st_dev, info.st_ino)
        if key in self.seen_files:
            return
        self.seen_files.add(key)
        self.found.append(_Found(path, source, label))


def _os_problem(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "cannot read it: permission denied"
    if exc.errno is not None and exc.errno == 40:  # ELOOP
        return "a symbolic link loop"
    if isinstance(exc, FileNotFoundError):
        return "a broken link (its target is missing)"
    return f"cannot read it: {exc.strerror or exc}"


def _walk(root: Path, scan: _Scan, *, max_depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Files under ``root`` (links followed, each folder visited once), with notes on what failed."""
    visited: set[tuple[int, int]] = set()
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            info = folder.stat()
        except OSError as exc:
            scan.notes.append(f"{folder}: {_os_problem(exc)}, not looked into")
            continue
        key = (info.st_dev, info.st_ino)
        if key in visited:
            scan.notes.append(f"{folder}: a symbolic link loop (a folder already looked through), skipped")
            continue
        visited.add(key)
        try:
            with os.scandir(folder) as listing:
                children = sorted(listing, key=lambda item: item.name)
        except OSError as exc:
            scan.notes.append(f"{folder}: {_os_problem(exc)}, not looked into")
            continue
        subfolders: list[Path] = []
        for child in children:
            path = Path(child.path)
            try:
                is_dir = child.is_dir()
            except OSError:  # a link loop: reported when named like a model
                is_dir = False
            if is_dir:
                if depth < max_depth and not child.name.startswith("."):
                    subfolders.append(path)
            elif child.name.lower().endswith(".gguf"):
                yield path
        stack.extend((sub, depth + 1) for sub in reversed(subfolders))


def _scan_folder(location: Location, scan: _Scan) -> None:
    for path in _walk(location.path, scan):
        try:
            label = str(path.relative_to(location.path))
        except ValueError:
            label = str(path)
        if location.source == SOURCE_LM_STUDIO:
            label = label.replace(os.sep, "/")
        scan.add(path, location.source, label)


def _scan_hub(location: Location, scan: _Scan) -> None:
    try:
        repos = sorted(location.path.glob("models--*"))
    except OSError as exc:
        scan.notes.append(f"{location.path}: {_os_problem(exc)}, not looked into")
        return
    for repo in repos:
        repo_id = repo.name[len("models--") :].replace("--", "/")
        snapshots = repo / "snapshots"
        if not snapshots.is_dir():
            continue
        for path in _walk(snapshots, scan):
            try:
                inside = path.relative_to(snapshots).parts[1:]
            except ValueError:
                inside = (path.name,)
            scan.add(path, location.source, f"{repo_id}/{'/'.join(inside)}")


def ollama_name(manifest: Path, manifests_root: Path) -> str:
    """``llama3.2:3b`` for the default registry's library, else ``NAMESPACE/MODEL:TAG`` or with the host."""
    parts = manifest.relative_to(manifests_root).parts
    if len(parts) < 4:
        return "/".join(parts)
    host, *middle, model, tag = parts
    name = "/".join([*middle, model])
    if host == OLLAMA_DEFAULT_REGISTRY:
        if middle == ["library"]:
            name = model
        return f"{name}:{tag}"
    return f"{host}/{name}:{tag}"


def _scan_ollama(location: Location, scan: _Scan) -> None:
    manifests = location.path / "manifests"
    blobs = location.path / "blobs"
    if not manifests.is_dir():
        if location.explicit and location.path.exists():
            scan.notes.append(f"{location.path}: no Ollama manifests folder in it")
        return
    for manifest in _walk_all(manifests, scan):
        name = ollama_name(manifest, manifests)
        try:
            document = json.loads(manifest.read_text(encoding="utf-8"))
            layers = document.get("layers", []) if isinstance(document, dict) else []
            digest = next(
                (
                    layer.get("digest")
                    for layer in layers
                    if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER
                ),
                None,
            )
        except (OSError, ValueError) as exc:
            problem = f"its manifest {manifest} is unreadable ({exc.__class__.__name__})"
            scan.problems.append(LibraryEntry(manifest, location.source, name, problem=problem))
            continue
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            problem = f"its manifest {manifest} names no model layer"
            scan.problems.append(LibraryEntry(manifest, location.source, name, problem=problem))
            continue
        blob = blobs / digest.replace(":", "-", 1)
        if not blob.exists():
            problem = f"its model blob {blob.name[:19]}... is missing from {blobs}"
            scan.problems.append(LibraryEntry(blob, location.source, name, (blob,), problem=problem))
            continue
        scan.add(blob, location.source, name)


def _walk_all(root: Path, scan: _Scan) -> Iterator[Path]:
    """Every file under ``root`` (manifests have no extension)."""
    for dirpath, _dirs, files in os.walk(
        root, onerror=lambda exc: scan.notes.append(f"{exc.filename}: {_os_problem(exc)}, not looked into")
    ):
        for name in sorted(files):
            yield Path(dirpath) / name


def scan_library(locations: Sequence[Location], cards: CardCache | None = None) -> Library:
    """Look through ``locations`` and read every model's card; never raises."""
    scan = _Scan()
    for location in locations:
        try:
            if not location.path.is_dir():
                if location.explicit and location.source != SOURCE_MODELS:
                    what = "not a folder" if location.path.exists() else "no such folder"
                    scan.notes.append(f"{location.path} ({location.source}): {what}")
                continue
        except OSError as exc:
            scan.notes.append(f"{location.path}: {_os_problem(exc)}, not looked into")
            continue
        if location.source == SOURCE_HUB:
            _scan_hub(location, scan)
        elif location.source == SOURCE_OLLAMA:
            _scan_ollama(location, scan)
        else:
            _scan_folder(location, scan)
    cache = cards if cards is not None else CARD_CACHE
    entries = [*_group_splits(scan.found, cache), *scan.problems]
    cache.save()
    order = {location.source: index for index, location in enumerate(locations)}
    entries.sort(key=lambda entry: (order.get(entry.source, 99), entry.label.lower()))
    return Library(tuple(entries), tuple(scan.notes), tuple(locations))


def _group_splits(found: Sequence[_Found], cache: CardCache) -> Iterator[LibraryEntry]:
    groups: dict[tuple[Path, str, int], dict[int, _Found]] = {}
    for item in found:
        match = SPLIT_RE.match(item.path.name)
        if not match:
            yield _entry(item, (item.path,), cache)
            continue
        key = (item.path.parent, match.group("stem"), int(match.group("total")))
        groups.setdefault(key, {})[int(match.group("part"))] = item
    for (_folder, _stem, total), parts in groups.items():
        first = parts.get(1) or parts[min(parts)]
        label = (
            SPLIT_RE.sub(lambda m: f"{m.group('stem')}.gguf", first.label) if parts.get(1) else first.label
        )
        paths = tuple(parts[i].path for i in sorted(parts))
        missing = [str(i) for i in range(1, total + 1) if i not in parts]
        if missing:
            problem = f"split model: part {', '.join(missing)} of {total} missing"
            yield LibraryEntry(first.path, first.source, label, paths, problem=problem)
            continue
        yield _entry(_Found(first.path, first.source, label), paths, cache)


def _entry(item: _Found, parts: tuple[Path, ...], cache: CardCache) -> LibraryEntry:
    try:
        card = cache.card(item.path, parts)
    except GGUFHeaderError as exc:
        return LibraryEntry(item.path, item.source, item.label, parts, problem=str(exc))
    except OSError as exc:
        return LibraryEntry(item.path, item.source, item.label, parts, problem=_os_problem(exc))
    problem = None
    if not card.is_language_model:
        problem = f"a {card.architecture} part of a model (e.g. a vision projector), not a model to chat with"
    return LibraryEntry(item.path, item.source, item.label, parts, card, problem)


class CardCache:
    """Cards already read, by path, size, modification time and inode: a rescan reads only what
    changed. With a ``path``, the cards are kept in a JSON file between runs too (best effort:
    a cache that can't be read or written only costs time)."""

    VERSION = 1

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._cards: dict[str, ModelCard] = {}
        self._dirty = False
        if path is not None:
            self._load(path)

    @staticmethod
    def _key(path: Path, info: os.stat_result) -> str:
        return f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}"

    def _load(self, path: Path) -> None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("version") != self.VERSION:
                return
            for key, fields in document["cards"].items():
                fields["think_tags"] = tuple(fields["think_tags"]) if fields.get("think_tags") else None
                self._cards[key] = ModelCard(**fields)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self._cards.clear()

    def save(self) -> None:
        """Write the cards to ``path`` (atomically) if any were read since."""
        if self.path is None or not self._dirty:
            return
        document = {
            "version": self.VERSION,
            "cards": {k: dataclasses.asdict(c) for k, c in self._cards.items()},
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(document), encoding="utf-8")
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def card(self, path: Path, parts: Sequence[Path]) -> ModelCard:
        """The card of ``path`` (all ``parts`` together for the size); raises GGUFHeaderError or OSError."""
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise GGUFHeaderError("not a regular file")
        key = self._key(path, info)
        card = self._cards.get(key)
        if card is None:
            size = info.st_size + sum(part.stat().st_size for part in parts if part != path)
            card = card_from_header(read_header(path), path, size, split_count=max(1, len(parts)))
            self._cards[key] = card
            self._dirty = True
        return card


CARD_CACHE = CardCache()
"""The process's card cache (the picker opened again reads nothing new)."""


_SHARED: dict[Path, CardCache] = {}


def shared_cards(data_dir: Path | None) -> CardCache:
    """The process's card cache, kept in ``data_dir/model-cards.json`` between runs (None: memory only)."""
    if data_dir is None:
        return CARD_CACHE
    path = data_dir / "model-cards.json"
    if path not in _SHARED:
        _SHARED[path] = CardCache(path)
    return _SHARED[path]
