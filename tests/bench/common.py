"""Shared benchmark setup: model, prompt, parameters, EOS handling, statistics."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from settings.sampling import SamplingMode, SamplingParams

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

N_GEN = int(os.environ.get("TOKENDIAL_BENCH_TOKENS", "256"))
"""New tokens per reply, for every contender (the env var is for quick trial runs only)."""
THREADS = int(os.environ.get("TOKENDIAL_BENCH_THREADS", "2"))
"""llama.cpp threads for every contender (the env var is for experiments only)."""
FLASH_ATTN = True
"""Flash attention for every contender: on, as our engine's context has it by default (LoadConfig), so
llama-bench (``-fa on``), llama-cpp-python and the raw loop all run the same attention kernels."""
FA_FLAG = "on" if FLASH_ATTN else "off"
"""llama-bench's ``-fa`` value for FLASH_ATTN."""
N_CTX = 2048
SEED = 1234
SYSTEM_PROMPT = "You are a helpful assistant."
PROMPT = (
    "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. "
    "Describe each day of the week that follows, the weather, the sea and what the keeper thinks."
)
"""Asks for a long reply; EOS is ignored as well (see :func:`ignore_eos`) so every run has N_GEN tokens."""

GREEDY = SamplingParams(mode=SamplingMode.GREEDY, repeat_penalty=1.0, max_new_tokens=N_GEN, seed=SEED)
SAMPLING = SamplingParams(
    mode=SamplingMode.SAMPLE,
    temperature=0.8,
    top_k=40,
    top_p=0.95,
    min_p=0.05,
    repeat_penalty=1.1,
    repeat_last_n=64,
    max_new_tokens=N_GEN,
    seed=SEED,
)
MODES: dict[str, SamplingParams] = {"greedy": GREEDY, "sampling": SAMPLING}


def model_path() -> Path:
    """The GGUF under test: ``$TOKENDIAL_TEST_MODEL`` or the default model."""
    env = os.environ.get("TOKENDIAL_TEST_MODEL")
    return Path(env) if env else DEFAULT_MODEL


@contextmanager
def ignore_eos() -> Iterator[None]:
    """Make ``llama_cpp.llama_vocab_is_eog`` answer False, for every contender alike.

    Both llama-cpp-python's completion loop and our engine ask this function whether a token
    ends the reply, so with it patched every run produces exactly N_GEN tokens (the count is
    checked after each run). Apply it before loading a model: a loader may cache the answer.
    """
    import llama_cpp

    original = llama_cpp.llama_vocab_is_eog

    def never_eog(vocab: object, token: int, /) -> bool:
        return False

    llama_cpp.llama_vocab_is_eog = never_eog
    try:
        yield
    finally:
        llama_cpp.llama_vocab_is_eog = original


@dataclass(frozen=True)
class Stat:
    """Median with min and max of a list of samples."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stat:
        """Build from any sequence of numbers."""
        return cls(tuple(samples))

    @property
    def median(self) -> float:
        """The median (nan when empty)."""
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def lo(self) -> float:
        """The smallest sample."""
        return min(self.samples) if self.samples else float("nan")

    @property
    def hi(self) -> float:
        """The largest sample."""
        return max(self.samples) if self.samples else float("nan")

    def fmt(self, digits: int = 1, unit: str = "") -> str:
        """``median (min-max)``."""
        if not self.samples:
            return "n/a"
        return f"{self.median:.{digits}f}{unit} ({self.lo:.{digits}f}-{self.hi:.{digits}f})"


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation."""
    if not samples:
        return float("nan")
    data = sorted(samples)
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def tokens_per_s(first: float, last: float, count: int) -> float:
    """Decode speed from the first to the last token's arrival (count tokens in all)."""
    if count < 2 or last <= first:
        return float("nan")
    return (count - 1) / (last - first)


def cpu_busy(window_s: float = 2.0) -> float:
    """Fraction of all CPUs busy over ``window_s`` (from /proc/stat; 0 where unavailable)."""

    def sample() -> tuple[int, int]:
        try:
            with open("/proc/stat") as stat:
                fields = [int(v) for v in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return 0, 0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(window_s)
    total1, idle1 = sample()
    if total1 <= total0:
        return 0.0
    return 1.0 - (idle1 - idle0) / (total1 - total0)


def wait_until_quiet(
    max_wait_s: float, busy_below: float = 0.25, log: Callable[[str], None] = print
) -> float:
    """Wait (up to ``max_wait_s``) until other processes leave the CPUs mostly idle; returns the last load."""
    deadline = time.monotonic() + max_wait_s
    busy = cpu_busy()
    while busy >= busy_below and time.monotonic() < deadline:
        log(f"CPUs {busy:.0%} busy with other work; waiting for a quieter moment...")
        time.sleep(10)
        busy = cpu_busy()
    return busy


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_ticks() -> tuple[int, int]:
    """(all CPU ticks, busy ticks) of the whole machine since boot."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), sum(fields) - idle


def _own_seconds() -> float:
    """CPU seconds used by this process (all threads) and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OthersMeter:
    """How much of the machine other processes used while a measurement ran (0-1 of all CPUs)."""

    def __enter__(self) -> OthersMeter:
        self.total0, self.busy0 = _cpu_ticks()
        self.own0 = _own_seconds()
        self.share = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        total1, busy1 = _cpu_ticks()
        own = (_own_seconds() - self.own0) * _TICKS
        total = total1 - self.total0
        self.share = max(0.0, (busy1 - self.busy0 - own) / total) if total > 0 else 0.0


OTHERS_LIMIT = float(os.environ.get("TOKENDIAL_BENCH_OTHERS_LIMIT", "0.15"))
"""A timed run is repeated when other processes used more than this share of all CPUs meanwhile."""
MAX_TRIES = 4


@dataclass
class Noise:
    """Counts of timed runs repeated because other processes were busy."""

    runs: int = 0
    repeated: int = 0
    kept_noisy: int = 0

    def summary(self) -> str:
        """One line for the table header."""
        return (
            f"Of {self.runs} timed runs, {self.runs - self.kept_noisy} ran while other processes used "
            f"at most "
            f"{OTHERS_LIMIT:.0%} of the CPUs ({self.repeated} repeats needed); {self.kept_noisy} were kept "
            f"after {MAX_TRIES} disturbed tries"
        )


NOISE = Noise()


def clean_run(fn: Callable[[], T], log: Callable[[str], None] | None = None, what: str = "") -> T:
    """Run ``fn`` until other processes stayed under OTHERS_LIMIT meanwhile (at most MAX_TRIES)."""
    NOISE.runs += 1
    for attempt in range(1, MAX_TRIES + 1):
        with OthersMeter() as meter:
            result = fn()
        if meter.share <= OTHERS_LIMIT:
            return result
        if attempt == MAX_TRIES:
            NOISE.kept_noisy += 1
            return result
        NOISE.repeated += 1
        if log is not None:
            log(f"{what}: other processes used {meter.share:.0%} of the CPUs, repeating")
        time.sleep(1.0)
    raise AssertionError("unreachable")
