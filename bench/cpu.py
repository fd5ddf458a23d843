"""CPU time per process and for the whole machine, from Linux's ``/proc``.

On a machine shared with other benchmarks the latencies say as much about the
neighbours as about the code; the CPU each process spends per payment (or event)
does not, and tells how many a second a core could carry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used so far."""
    # The command name in field 2 may hold spaces; utime and stime are fields 14
    # and 15, the 12th and 13th after its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _machine() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    # user nice system idle iowait irq softirq steal; guest time is inside user.
    values = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class Snapshot:
    processes: dict[str, float]
    machine: tuple[int, int]


def snapshot(pids: dict[str, int]) -> Snapshot:
    return Snapshot({n: process_seconds(p) for n, p in pids.items()}, _machine())


def spent(
    before: Snapshot, after: Snapshot, count: int, *, per: str = "payment"
) -> dict[str, float | dict[str, float]]:
    """CPU ms per ``per`` by process, and how busy the whole machine was (%)."""
    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    per_item = {
        name: round(1000 * (after.processes[name] - seconds) / count, 2)
        for name, seconds in before.processes.items()
    }
    return {
        f"cpu_ms_per_{per}": per_item,
        "machine_busy_percent": round(100 * busy / total, 1) if total else 0.0,
    }
