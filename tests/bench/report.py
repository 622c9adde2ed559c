"""The one results table (Markdown, readable in a terminal too) and the machine it ran on."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    section: str
    measure: str
    ours: str
    reference: str
    result: str
    target: str = ""
    met: bool | None = None
    """None = no target (information only)."""
    note: str = ""


def machine() -> str:
    """CPU model and core count from /proc/cpuinfo, plus Python and llama-cpp-python versions."""
    model = platform.processor() or "unknown CPU"
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    simd = "/".join(f for f in ("avx2", "avx512f", "fma", "f16c") if f in flags)
    try:
        import llama_cpp

        lcp = llama_cpp.__version__
    except ImportError:  # pragma: no cover - the bench needs it anyway
        lcp = "?"
    cores = os.cpu_count()
    return (
        f"{model}, {cores} cores{f' ({simd})' if simd else ''}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, llama-cpp-python {lcp}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rows: list[Row], header: str) -> str:
    """The table as Markdown, preceded by ``header`` lines."""
    lines = [
        header,
        "",
        "| # | Measure | tokendial | Reference | Result | Target | Met | Notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "-" if row.met is None else ("yes" if row.met else "**no**")
        cells = (row.section, row.measure, row.ours, row.reference, row.result, row.target, met, row.note)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def stamp() -> str:
    """The current UTC date and time, to the minute."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
