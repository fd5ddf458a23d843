"""CPU seconds of processes, read from /proc: a figure a loaded machine leaves alone.

Wall-clock rates on a shared two-core machine move with whatever else runs; the CPU
time a process spends per accepted event does not, so the benchmark reports both.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces; fields follow it.
    return text[text.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User plus system time of ``pid``; with ``children``, of its reaped ones too."""
    fields = _stat_fields(pid)
    # After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def children_of(parent: int) -> list[int]:
    """The live processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry.name))[1]) == parent:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU of ``root`` and its live children, plus the children it has reaped."""
    total = process_cpu_seconds(root, children=True)
    for pid in children_of(root):
        try:
            total += process_cpu_seconds(pid)
        except OSError:
            continue
    return total


async def postmaster_pid(database_url: str) -> int:
    """The PostgreSQL server process behind ``database_url`` (on this machine)."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        backend: int = await connection.fetchval("SELECT pg_backend_pid()")
        # Read while connected: the backend exits with the connection.
        return int(_stat_fields(backend)[1])
    finally:
        await connection.close()


def server_pid(module: str) -> int:
    """The child of this process that runs ``python -m module serve``."""
    for pid in children_of(os.getpid()):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if module.encode() in command and b"serve" in command:
            return pid
    raise LookupError(f"no child process runs {module}")


@dataclass(frozen=True)
class CpuMeter:
    """CPU per counted unit of the service process and the database server."""

    server: int
    postgres: int

    async def per_event(self, work: Awaitable[dict[str, float]]) -> dict[str, float]:
        """Await ``work`` (whose result has a ``count``) and add CPU per unit."""
        server, database = self._read()
        result = await work
        count = max(result["count"], 1)
        after_server, after_database = self._read()
        result["server_cpu_us"] = 1e6 * (after_server - server) / count
        result["postgres_cpu_us"] = 1e6 * (after_database - database) / count
        return result

    def _read(self) -> tuple[float, float]:
        # Backends come and go with connections, so the database is counted whole.
        return process_cpu_seconds(self.server), tree_cpu_seconds(self.postgres)
