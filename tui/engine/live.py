"""LiveParams: the one reference the token loop reads before every token."""

from __future__ import annotations

import threading

from settings.sampling import SamplingParams


class LiveParams:
    """Holds the current (version, SamplingParams) pair.

    Writers replace the pair; readers take one snapshot per token. Reading a single
    attribute is atomic in CPython, so there are no torn values and no lock on the hot path.
    """

    def __init__(self, params: SamplingParams) -> None:
        self._snapshot: tuple[int, SamplingParams] = (0, params)
        self._write_lock = threading.Lock()

    def snapshot(self) -> tuple[int, SamplingParams]:
        """The current version number and parameters."""
        return self._snapshot

    @property
    def params(self) -> SamplingParams:
        """The current parameters."""
        return self._snapshot[1]

    @property
    def version(self) -> int:
        """The current version number (bumped by every :meth:`set`)."""
        return self._snapshot[0]

    def set(self, params: SamplingParams) -> int:
        """Replace the parameters; returns the new version number. No-op if equal."""
        with self._write_lock:
            version, current = self._snapshot
            if params == current:
                return version
            self._snapshot = (version + 1, params)
            return version + 1
