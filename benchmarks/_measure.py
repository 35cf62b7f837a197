"""What every benchmark here shares: timing with the GC paused, sides of a comparison, tables."""

from __future__ import annotations

import contextlib
import gc
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off (as timeit does), after a collection."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def timed(action: Callable[[], object]) -> float:
    """Seconds *action* takes, with the garbage collector paused."""
    with gc_paused():
        started = time.perf_counter()
        action()
        return time.perf_counter() - started


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@dataclass
class Side:
    """One thing measured and its times in seconds."""

    label: str
    times: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "best_ms": ms(self.best), "median_ms": ms(self.median),
                "times_ms": [ms(t) for t in self.times]}


def print_sides(title: str, sides: Sequence[Side], unit: float = 1e3, suffix: str = "ms") -> None:
    print(f"\n{title}")
    width = max(len(side.label) for side in sides) + 2
    print(f"  {'':<{width}}{'best ' + suffix:>12}{'median ' + suffix:>12}{'runs':>6}")
    for side in sides:
        print(f"  {side.label:<{width}}{side.best * unit:>12.1f}{side.median * unit:>12.1f}"
              f"{len(side.times):>6}")


def print_summary(summary: Sequence[tuple[str, str, str, bool | None]]) -> None:
    """The closing table: figure, value, target, met or not (None: no target)."""
    print("\nsummary")
    print(f"  {'figure':<42}{'value':>12}  {'target':<14}{'':>8}")
    for figure, value, target, ok in summary:
        verdict = "" if ok is None else ("met" if ok else "NOT met")
        print(f"  {figure:<42}{value:>12}  {target:<14}{verdict:>8}")


def finish(results: dict[str, Any], json_path: Path | None, strict: bool,
           note: str | None = None) -> int:
    """A benchmark's end: its summary printed (then *note*), its JSON written to *json_path*;
    exit status 1 when *strict* and a target was missed, else 0."""
    print_summary(results["summary"])
    if note:
        print(note)
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if strict and any(ok is False for *_, ok in results["summary"]):
        return 1
    return 0
