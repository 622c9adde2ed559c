"""Where the model is in its life (shown by the status bar, checked by every flow that needs the model)."""

from __future__ import annotations

from enum import StrEnum


class ModelState(StrEnum):
    """Where the model is in its life."""

    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"
    FAILED = "failed"
