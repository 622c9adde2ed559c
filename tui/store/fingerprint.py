"""Model file fingerprints: sha256 of the whole file when cheap, else of its size, head and tail."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from tui.store.records import FingerprintKind, ModelRef

FULL_HASH_LIMIT = 512 * 1024 * 1024
"""Files up to this size are hashed whole (about half a second); bigger ones get the quick hash."""

_MIB = 1024 * 1024
_cache: dict[tuple[str, int, int], ModelRef] = {}
_cache_lock = threading.Lock()


def _full_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * _MIB):
            digest.update(chunk)
    return digest.hexdigest()


def _quick_sha256(path: Path, size: int) -> str:
    digest = hashlib.sha256(f"size={size};".encode())
    with path.open("rb") as f:
        digest.update(f.read(_MIB))
        f.seek(max(0, size - _MIB))
        digest.update(f.read(_MIB))
    return digest.hexdigest()


def fingerprint_model(path: Path, *, full_hash_limit: int = FULL_HASH_LIMIT) -> ModelRef:
    """Fingerprint a model file (cached per path, size and mtime; may take a moment: not on the UI thread).

    Raises OSError when the file cannot be read.
    """
    resolved = path.expanduser().resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and (stat.st_size <= full_hash_limit) == (
        cached.fingerprint_kind is FingerprintKind.SHA256
    ):
        return cached
    if stat.st_size <= full_hash_limit:
        kind, digest = FingerprintKind.SHA256, _full_sha256(resolved)
    else:
        kind, digest = FingerprintKind.QUICK, _quick_sha256(resolved, stat.st_size)
    ref = ModelRef(
        path=str(resolved),
        fingerprint=digest,
        fingerprint_kind=kind,
        size=stat.st_size,
        mtime=stat.st_mtime,
    )
    with _cache_lock:
        _cache[key] = ref
    return ref
