"""Per-stage timing, end-to-end latency and frame rate for the live path.

No threads and no clock of its own: callers pass durations or timestamps, or give a
:class:`StageTimer` an injectable clock (``time.perf_counter`` by default), so tests can
drive it with a fake clock. Samples are kept in a bounded window so a 10-minute run does
not grow memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

Clock = Callable[[], float]  # returns seconds from a monotonic origin


@dataclass(frozen=True)
class StageStats:
    """Summary of one stage's durations, in milliseconds."""

    count: int  # samples recorded in total (not only those still in the window)
    p50_ms: float
    p95_ms: float
    max_ms: float
    mean_ms: float

    def describe(self) -> str:
        return f"p50 {self.p50_ms:6.1f} ms  p95 {self.p95_ms:6.1f} ms  max {self.max_ms:6.1f} ms  (n={self.count})"


EMPTY_STATS = StageStats(count=0, p50_ms=0.0, p95_ms=0.0, max_ms=0.0, mean_ms=0.0)


class StageTimer:
    """Durations per named stage (thread-safe); ``summary()`` gives p50/p95/max in ms.

    ``window`` bounds the samples kept per stage (the newest win); ``max`` is over the
    whole run.
    """

    def __init__(self, clock: Clock = time.perf_counter, window: int = 2000) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.clock = clock
        self.window = window
        self._samples: dict[str, deque[float]] = {}
        self._count: dict[str, int] = {}
        self._max: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float) -> None:
        """Add one duration (seconds) to a stage."""
        with self._lock:
            if stage not in self._samples:
                self._samples[stage] = deque(maxlen=self.window)
                self._count[stage] = 0
                self._max[stage] = 0.0
            self._samples[stage].append(float(seconds))
            self._count[stage] += 1
            self._max[stage] = max(self._max[stage], float(seconds))

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        """Time a ``with`` block with this timer's clock."""
        t0 = self.clock()
        try:
            yield
        finally:
            self.record(stage, self.clock() - t0)

    def stages(self) -> list[str]:
        with self._lock:
            return list(self._samples)

    def stats(self, stage: str) -> StageStats:
        """p50/p95/max/mean of one stage in ms; zeros when the stage has no samples."""
        with self._lock:
            samples = np.asarray(self._samples.get(stage, ()), np.float64)
            count = self._count.get(stage, 0)
            mx = self._max.get(stage, 0.0)
        if samples.size == 0:
            return EMPTY_STATS
        ms = samples * 1000.0
        return StageStats(
            count=count,
            p50_ms=float(np.percentile(ms, 50)),
            p95_ms=float(np.percentile(ms, 95)),
            max_ms=mx * 1000.0,
            mean_ms=float(ms.mean()),
        )

    def summary(self) -> dict[str, StageStats]:
        return {s: self.stats(s) for s in self.stages()}


class FpsMeter:
    """Frames per second from event timestamps: over the whole run and over a recent window."""

    def __init__(self, window: int = 30) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        self._recent: deque[float] = deque(maxlen=window)
        self._first: float | None = None
        self._last: float | None = None
        self.count = 0
        self._lock = threading.Lock()

    def tick(self, t: float) -> None:
        """One event (a frame) at time ``t`` seconds."""
        with self._lock:
            if self._first is None:
                self._first = t
            self._last = t
            self._recent.append(t)
            self.count += 1

    @property
    def fps(self) -> float:
        """Recent rate (over the last ``window`` events); 0 before two events."""
        with self._lock:
            if len(self._recent) < 2:
                return 0.0
            span = self._recent[-1] - self._recent[0]
            return (len(self._recent) - 1) / span if span > 0 else 0.0

    @property
    def average_fps(self) -> float:
        """Rate over the whole run (first to last event)."""
        with self._lock:
            if self._first is None or self._last is None or self.count < 2:
                return 0.0
            span = self._last - self._first
            return (self.count - 1) / span if span > 0 else 0.0


def format_summary(summary: dict[str, StageStats]) -> str:
    """A few aligned lines, one per stage, for logs and the CLI."""
    if not summary:
        return "(no timings)"
    width = max(len(s) for s in summary)
    return "\n".join(f"{name:<{width}}  {st.describe()}" for name, st in summary.items())
