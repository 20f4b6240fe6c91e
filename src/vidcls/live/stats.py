"""What happened to one live source: results, drops, reconnects, latency."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LATENCIES = 4096  # recent capture-to-result latencies kept


@dataclass
class SourceStats:
    """One live source's counts; the scheduler counts results and drops, the source its
    frames and reconnects."""

    name: str
    fed: int = 0  # results produced
    dropped: int = 0  # ticks at the feed rate not served because the model was behind
    resets: int = 0  # state resets after the source was reopened
    captured: int = 0  # frames the source delivered
    reconnects: int = 0
    seconds: float = 0.0  # how long it was fed
    error: str | None = None  # why it ended, if it failed
    latencies: np.ndarray = field(
        default_factory=lambda: np.zeros(LATENCIES, np.float32), repr=False
    )

    def record(self, latency_ms: float) -> None:
        """Count one result and its capture-to-result latency."""
        self.latencies[self.fed % LATENCIES] = latency_ms
        self.fed += 1

    def latency_percentiles(self, *qs: float) -> list[float]:
        """Percentiles of the recent capture-to-result latencies (ms); NaN before any."""
        kept = self.latencies[: min(self.fed, LATENCIES)]
        return [float(np.percentile(kept, q)) if kept.size else float("nan") for q in qs]

    @property
    def rate(self) -> float:
        """Results per second."""
        return self.fed / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One line for people: ``door: 23 results (4.95/s) of 131 frames, ...``."""
        text = (
            f"{self.name}: {self.fed} results ({self.rate:.2f}/s) of {self.captured} frames, "
            f"{self.dropped} dropped, {self.reconnects} reconnects"
        )
        if self.fed:
            p50, p99 = self.latency_percentiles(50, 99)
            text += f", latency p50 {p50:.0f} ms p99 {p99:.0f} ms"
        return text + (f"; {self.error}" if self.error else "")
