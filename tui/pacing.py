"""How often the app redraws a streaming reply (no Textual here, so it can be tested with fake clocks).

Each redraw of the growing reply costs the UI thread a Textual layout and render pass (about
10 ms on a slow 2-core machine, 1-2 ms on a fast one). When the model decodes on the CPU with
every core busy, that time is taken from decoding. :class:`RedrawPacer` redraws every ``min_s``
while the UI thread uses at most ``budget`` of one core, and slows down (up to ``max_s``) while it
uses more; it speeds up again when the UI gets cheaper. The tokens themselves are never late: the
records are updated at once, only the drawing waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_S = 0.1
"""Fastest redraw rate: 10 per second."""
MAX_S = 0.25
"""Slowest redraw rate: 4 per second."""
BUDGET = 0.08
"""Share of one core the UI thread may use while a reply streams before redraws slow down."""
STEP = 1.25
"""Factor by which the interval grows (over budget) or shrinks (well under budget)."""


@dataclass
class RedrawPacer:
    """The interval between redraws of a streaming reply, adapted to what the redraws cost."""

    min_s: float = MIN_S
    max_s: float = MAX_S
    budget: float = BUDGET
    cpu_clock: Callable[[], float] = time.thread_time
    """CPU seconds of the UI thread (call it from that thread)."""
    clock: Callable[[], float] = time.monotonic
    interval: float = field(init=False)
    """Seconds to wait after a redraw before the next one."""
    last_share: float | None = field(init=False, default=None)
    """The UI thread's share of one core between the last two redraws."""
    _mark: tuple[float, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s:
            raise ValueError("need 0 < min_s <= max_s")
        self.interval = self.min_s

    def start(self) -> None:
        """A reply starts: measure from its first redraw (sending the prompt costs more)."""
        self._mark = None

    def drawn(self) -> None:
        """A redraw was done: measure the UI thread's CPU share since the previous one and adapt."""
        now, cpu = self.clock(), self.cpu_clock()
        if self._mark is not None:
            wall = now - self._mark[0]
            if wall > 0:
                share = (cpu - self._mark[1]) / wall
                self.last_share = share
                if share > self.budget:
                    self.interval = min(self.interval * STEP, self.max_s)
                elif share < self.budget * 0.6:
                    self.interval = max(self.interval / STEP, self.min_s)
        self._mark = (now, cpu)
