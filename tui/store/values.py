"""Column values to and from Python: timestamps, sampling parameters, stop reasons, LIKE patterns."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from settings.sampling import SamplingParams
from tui.engine.events import StopKind, StopReason

DEFAULT_TITLE = "New chat"
TITLE_MAX = 60


def title_from_prompt(prompt: str) -> str:
    """A chat title from its first prompt: first non-empty line, whitespace collapsed, shortened."""
    line = next((ln for ln in prompt.splitlines() if ln.strip()), "")
    title = " ".join(line.split())
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title or DEFAULT_TITLE


def ts(value: datetime) -> str:
    """A stored timestamp (ISO, UTC)."""
    return value.astimezone(UTC).isoformat()


def dt(value: str) -> datetime:
    """A stored timestamp back as a datetime."""
    return datetime.fromisoformat(value)


def params_json(params: SamplingParams) -> str:
    """One parameter set as JSON."""
    return params.model_dump_json()


def load_params(raw: str | None) -> SamplingParams | None:
    """Parameters from JSON; unknown or invalid fields fall back to defaults instead of failing."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if k in SamplingParams.model_fields}
    try:
        return SamplingParams.model_validate(known)
    except ValidationError:
        valid: dict[str, Any] = {}
        for key, value in known.items():
            try:
                SamplingParams.model_validate({**valid, key: value})
            except ValidationError:
                continue
            valid[key] = value
        return SamplingParams.model_validate(valid)


def params_map_json(params: Mapping[int, SamplingParams]) -> str:
    """A reply's parameter versions as JSON (version -> parameters)."""
    return json.dumps({str(v): p.model_dump(mode="json") for v, p in sorted(params.items())})


def load_params_map(raw: str) -> dict[int, SamplingParams]:
    """A reply's parameter versions back from JSON (invalid values fall back as in load_params)."""
    result: dict[int, SamplingParams] = {}
    for version, value in json.loads(raw).items():
        params = load_params(json.dumps(value))
        if params is not None:
            result[int(version)] = params
    return result


def stop_json(stop: StopReason) -> str:
    """A stop reason as JSON."""
    return json.dumps(asdict(stop))


def load_stop(raw: str | None) -> StopReason | None:
    """A stop reason back from JSON (None when none was stored)."""
    if not raw:
        return None
    data = json.loads(raw)
    data["kind"] = StopKind(data["kind"])
    return StopReason(**data)


def like_pattern(text: str) -> str:
    """A LIKE pattern (ESCAPE '\\') that matches ``text`` anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
