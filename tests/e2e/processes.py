"""Services as real OS processes, for tests that kill them or trace across them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 40.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """``python -m <module> serve`` with its own environment and log file."""

    module: str
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, extra_env: dict[str, str] | None = None) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "serve"],
            env=os.environ | self.env | (extra_env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", self.module, "migrate"],
            env=os.environ | self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    async def wait_ready(self) -> None:
        """Poll /readyz until 200; fail fast with the log if the process died."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                self._require_alive()
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.module} not ready:\n{self.log_tail()}")

    async def wait_exit(self, timeout: float = READY_TIMEOUT_SECONDS) -> int:
        """Wait for the process to end by itself (a failpoint) and return its code."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.module} still running:\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        return code

    def kill(self) -> None:
        """``kill -9``: no shutdown hooks, no offset commits, no flushing."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """SIGTERM and wait for the graceful shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        text = (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )
        return "\n".join(text.splitlines()[-lines:])

    def _require_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.module} exited with {self.process.returncode}:\n"
                f"{self.log_tail()}"
            )
