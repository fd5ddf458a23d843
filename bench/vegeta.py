"""Open-loop load with vegeta: requests start on a fixed schedule, whatever the
answers do, so the latencies are those of a server offered exactly that rate,
queueing included. A closed-loop client (wrk, or one waiting for each answer) slows
down with the server it measures and hides the queue.

vegeta is a Go program; ``make install`` builds it into ``.tools/bin``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parents[1] / ".tools" / "bin"


@dataclass(frozen=True)
class Target:
    """One request; vegeta sends the targets in turn, round and round."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def line(self) -> str:
        """The target in vegeta's JSON targets format."""
        found: dict[str, Any] = {
            "method": self.method,
            "url": self.url,
            "header": {name: [value] for name, value in self.headers.items()},
        }
        if self.body is not None:
            found["body"] = base64.b64encode(self.body).decode()
        return json.dumps(found)


def binary() -> str:
    """The vegeta binary: on the PATH, or where ``make install`` builds it."""
    found = shutil.which("vegeta") or shutil.which("vegeta", path=str(TOOLS))
    if found is None:
        raise SystemExit("vegeta is missing: run `make install`")
    return found


async def attack(
    targets: Iterable[Target], *, rate: float, seconds: float
) -> dict[str, float]:
    """Offer ``rate`` requests/s for ``seconds``; the answers' rate and latencies.

    The result has a ``count`` (requests sent), as the CPU meters expect.
    """
    folder = Path(tempfile.mkdtemp(prefix="arbor-vegeta-"))
    listed = folder / "targets.jsonl"
    listed.write_text("".join(target.line() + "\n" for target in targets))
    results = folder / "results.bin"
    attacking = await asyncio.create_subprocess_exec(
        binary(),
        "attack",
        "-format=json",
        f"-targets={listed}",
        f"-rate={rate:.0f}/s",
        f"-duration={seconds:.0f}s",
        "-timeout=5s",
        f"-output={results}",
    )
    if await attacking.wait() != 0:
        raise RuntimeError("vegeta attack failed")
    reporting = await asyncio.create_subprocess_exec(
        binary(),
        "report",
        "-type=json",
        str(results),
        stdout=asyncio.subprocess.PIPE,
    )
    report, _ = await reporting.communicate()
    shutil.rmtree(folder)
    return summary(json.loads(report))


def summary(report: dict[str, Any]) -> dict[str, float]:
    """The figures of a ``vegeta report -type=json``, latencies in milliseconds."""
    latency = report["latencies"]
    codes: dict[str, int] = report["status_codes"]
    return {
        "count": float(report["requests"]),
        "offered_rps": float(report["rate"]),
        "answered_rps": float(report["throughput"]),
        "p50_ms": latency["50th"] / 1e6,
        "p90_ms": latency["90th"] / 1e6,
        "p99_ms": latency["99th"] / 1e6,
        "max_ms": latency["max"] / 1e6,
        "failed": float(
            sum(n for code, n in codes.items() if not code.startswith("2"))
        ),
    }
