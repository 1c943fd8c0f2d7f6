"""A benchmark's measured child process: its wall time, CPU time, peak RSS and JSON output.

Why: the scale benchmarks measure each run in a process of its own, so that one run's peak memory is not
another's, and read the child's resources from the kernel (`wait4`) rather than sampling them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float  # user + system, of the child and its threads
    peak_rss_gb: float
    out: dict[str, Any]  # the JSON object the child printed last on stdout ({} if none)


def measured(script: str, args: list[str]) -> Measured:
    """Run ``python script *args`` and measure it; SystemExit if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if code := os.waitstatus_to_exitcode(status):
        raise SystemExit(f"child {args} failed with exit code {code}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return Measured(
        wall_s=time.perf_counter() - t0,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_gb=usage.ru_maxrss / 1024**2,  # Linux: ru_maxrss in KiB
        out=json.loads(lines[-1]) if lines else {},
    )


def ratios(benchmark: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The summary line of a scale benchmark: each row's peak RSS, wall and CPU time per Mpx as ratios to the
    first (smallest) row's, measured in the same run."""
    small = rows[0]
    return {
        "benchmark": benchmark,
        **extra,
        "sizes": [r["size"] for r in rows],
        "rss_ratios": [round(r["peak_rss_gb"] / small["peak_rss_gb"], 2) for r in rows],
        "s_per_mpx_ratios": [round(r["s_per_mpx"] / small["s_per_mpx"], 2) for r in rows],
        "cpu_s_per_mpx_ratios": [round(r["cpu_s_per_mpx"] / small["cpu_s_per_mpx"], 2) for r in rows],
    }
