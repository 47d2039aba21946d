"""Small helpers shared by the benchmarks: percentiles, peak RSS, import time, printing."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``values``, linearly interpolated."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(frozen=True)
class Summary:
    """Latencies in seconds, reported in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        if not seconds:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        return cls(
            n=len(seconds),
            mean_ms=statistics.fmean(seconds) * 1e3,
            p50_ms=percentile(seconds, 50) * 1e3,
            p99_ms=percentile(seconds, 99) * 1e3,
            max_ms=max(seconds) * 1e3,
        )


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def filesystem_of(path: str) -> str:
    """The filesystem type holding ``path`` (from /proc/mounts), or "unknown"."""
    try:
        path = os.path.realpath(path)
        best, fstype = "", "unknown"
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount_point = fields[1].replace("\\040", " ")
                inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, fstype = mount_point, fields[2]
        return fstype
    except OSError:
        return "unknown"


def import_time_ms(
    module: str, *, runs: int = 5, cwd: str | None = None, warmup: int = 1
) -> list[float]:
    """Wall time of ``import module`` in fresh interpreters (interpreter start-up excluded),
    in ms, one entry per run. ``warmup`` runs first (bytecode caches) are discarded."""
    code = (
        "import time; t = time.perf_counter(); "
        f"import {module}; "
        "print(repr((time.perf_counter() - t) * 1e3))"
    )
    times = []
    for i in range(warmup + runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True, text=True
        )
        if i >= warmup:
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def heaviest_imports(
    module: str, *, top: int = 6, cwd: str | None = None
) -> list[tuple[str, float]]:
    """Top-level packages (other than ``module`` and what a bare interpreter loads anyway)
    with the largest cumulative time under ``python -X importtime -c "import module"``, in ms."""

    def cumulative(code: str) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=cwd,
            check=True,
            capture_output=True,
            text=True,
        )
        result: dict[str, float] = {}
        for line in out.stderr.splitlines():
            if not line.startswith("import time:"):
                continue
            parts = line[len("import time:") :].split("|")
            if len(parts) != 3 or not parts[1].strip().isdigit():
                continue  # the header line
            name = parts[2].strip()
            result[name] = max(result.get(name, 0.0), int(parts[1]) / 1e3)
        return result

    baseline = cumulative("pass")
    rows = [
        (name, ms)
        for name, ms in cumulative(f"import {module}").items()
        if "." not in name and name != module and name not in baseline
    ]
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:top]


def fmt_ms(value: float) -> str:
    return f"{value:8.3f}"


def print_header(title: str) -> None:
    print()
    print(title)
    print("-" * len(title))


def print_latency_table(rows: Iterable[tuple[str, Summary]]) -> None:
    """One line per operation: p50, p99, mean, max in ms."""
    print(f"  {'operation':<26}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'max ms':>10}")
    for name, s in rows:
        print(f"  {name:<26}{s.p50_ms:>10.3f}{s.p99_ms:>10.3f}{s.mean_ms:>10.3f}{s.max_ms:>10.3f}")


def print_kv(rows: Iterable[tuple[str, str]], *, width: int = 34) -> None:
    for key, value in rows:
        print(f"  {key:<{width}}{value}")


def print_summary(
    rows: Iterable[tuple[str, str, str, bool | None]], title: str = "SUMMARY"
) -> None:
    """Rows of (figure, target, measured, met?) — ``met`` None when there is no target."""
    rows = list(rows)
    bar = "=" * 78
    print()
    print(bar)
    print(title)
    print(bar)
    print(f"  {'figure':<38}{'target':<16}{'measured':<16}{'':>6}")
    for name, target, measured, met in rows:
        mark = "" if met is None else ("ok" if met else "MISS")
        print(f"  {name:<38}{target:<16}{measured:<16}{mark:>6}")
    print(bar)
