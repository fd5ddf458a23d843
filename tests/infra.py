"""Start and stop the real Kafka broker and PostgreSQL server the tests run against.

Thin wrappers around ``deploy/local/kafka.sh`` and ``deploy/local/postgres.sh``, so a
test session and a developer's shell start the services the same way. Each handle
owns one state dir; its ``stop`` is safe to call more than once.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka.sh"
POSTGRES_SCRIPT = REPO_ROOT / "deploy" / "local" / "postgres.sh"

# The first start on a machine also resolves the broker jars from Maven Central
# (5 to 10 s when the registry is quick, far longer when it is not); the broker then
# takes 3 to 8 s to become ready on two cores.
KAFKA_START_TIMEOUT_SECONDS = 600.0
POSTGRES_START_TIMEOUT_SECONDS = 120.0
# The scripts allow 30 s for a clean stop before SIGKILL; leave them room.
STOP_TIMEOUT_SECONDS = 60.0
OUTPUT_TAIL_LINES = 40


class InfraError(RuntimeError):
    """A service script failed; the message ends with the tail of its output."""

    def __init__(self, script: Path, command: str, reason: str, output: str) -> None:
        tail = "\n".join(output.splitlines()[-OUTPUT_TAIL_LINES:])
        super().__init__(f"{script.name} {command} {reason}\n{tail}")
        self.script = script
        self.command = command
        self.output = output


@dataclass
class KafkaHandle:
    """A running single-node broker; ``bootstrap`` is ``127.0.0.1:<port>``."""

    state_dir: Path
    bootstrap: str
    _stopped: bool = field(default=False, init=False, repr=False)

    def stop(self) -> None:
        """Stop the broker and drop its data; later calls do nothing."""
        if not self._stopped:
            _run(KAFKA_SCRIPT, "stop", _kafka_env(self.state_dir), STOP_TIMEOUT_SECONDS)
            self._stopped = True

    def kill(self) -> None:
        """``kill -9`` the broker (a crash), keeping its data for :meth:`restart`."""
        env = _kafka_env(self.state_dir) | {"ARBOR_KAFKA_KEEP": "1"}
        _run(KAFKA_SCRIPT, "kill", env, STOP_TIMEOUT_SECONDS)

    def stop_keeping_data(self) -> None:
        """Shut the broker down cleanly, keeping its data for :meth:`restart`."""
        env = _kafka_env(self.state_dir) | {"ARBOR_KAFKA_KEEP": "1"}
        _run(KAFKA_SCRIPT, "stop", env, STOP_TIMEOUT_SECONDS)

    def restart(self) -> None:
        """Start the same broker again: same port, topics, records and offsets."""
        env = _kafka_env(self.state_dir) | {"ARBOR_KAFKA_KEEP": "1"}
        bootstrap = _run(KAFKA_SCRIPT, "start", env, KAFKA_START_TIMEOUT_SECONDS)
        if bootstrap != self.bootstrap:
            raise InfraError(
                KAFKA_SCRIPT, "start", f"moved to {bootstrap}", self.bootstrap
            )


@dataclass
class PostgresHandle:
    """A running private cluster; the URLs are SQLAlchemy asyncpg URLs.

    ``url`` points at the ``arbor`` database; ``admin_url`` at the ``postgres``
    maintenance database, for creating and dropping per-test databases. The role
    ``arbor`` is a superuser and needs no password.
    """

    state_dir: Path
    url: str
    admin_url: str
    _stopped: bool = field(default=False, init=False, repr=False)

    def stop(self) -> None:
        """Shut the server down, keeping its data; later calls do nothing."""
        if not self._stopped:
            env = _postgres_env(self.state_dir)
            _run(POSTGRES_SCRIPT, "stop", env, STOP_TIMEOUT_SECONDS)
            self._stopped = True

    def stop_server(self) -> None:
        """Fast shutdown (sessions rolled back) in the middle of the test."""
        _run(
            POSTGRES_SCRIPT, "stop", _postgres_env(self.state_dir), STOP_TIMEOUT_SECONDS
        )

    def start_server(self) -> None:
        """Start the stopped server again on the same port, so every URL still works."""
        port = self.url.rpartition(":")[2].partition("/")[0]
        env = _postgres_env(self.state_dir) | {"PGPORT": port}
        _run(POSTGRES_SCRIPT, "start", env, POSTGRES_START_TIMEOUT_SECONDS)


def start_kafka(state_dir: Path) -> KafkaHandle:
    """Start a broker whose config, log and data live in ``state_dir``."""
    env = _kafka_env(state_dir)
    bootstrap = _start(KAFKA_SCRIPT, env, KAFKA_START_TIMEOUT_SECONDS)
    return KafkaHandle(state_dir=state_dir, bootstrap=bootstrap)


def start_postgres(state_dir: Path) -> PostgresHandle:
    """Start (creating if needed) a cluster in ``state_dir``.

    Run as root, the server runs as an unprivileged account that must be able to
    reach ``state_dir``: pytest's own temporary dirs for root are private (0700), so
    take the dir from ``tempfile.mkdtemp()`` instead.
    """
    env = _postgres_env(state_dir)
    url = _start(POSTGRES_SCRIPT, env, POSTGRES_START_TIMEOUT_SECONDS)
    admin_url = url.rpartition("/")[0] + "/postgres"
    return PostgresHandle(state_dir=state_dir, url=url, admin_url=admin_url)


def _kafka_env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "ARBOR_KAFKA_DIR": str(state_dir)}


def _postgres_env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "ARBOR_PG_DIR": str(state_dir)}


def _start(script: Path, env: dict[str, str], timeout: float) -> str:
    # A half-started service must not outlive a failed start: stop it, then report.
    try:
        return _run(script, "start", env, timeout)
    except InfraError:
        # The start failure is the one worth reporting, not a failed clean-up.
        with contextlib.suppress(InfraError):
            _run(script, "stop", env, STOP_TIMEOUT_SECONDS)
        raise


def _run(script: Path, command: str, env: dict[str, str], timeout: float) -> str:
    """Run ``script command`` and return its stdout, which is one value or empty."""
    try:
        done = subprocess.run(
            ["bash", str(script), command],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        reason = f"timed out after {timeout:.0f} s"
        raise InfraError(script, command, reason, output) from exc
    if done.returncode != 0:
        reason = f"failed with exit code {done.returncode}"
        raise InfraError(script, command, reason, done.stdout + done.stderr)
    return done.stdout.strip()


def _text(stream: str | bytes | None) -> str:
    if isinstance(stream, bytes):
        return stream.decode(errors="replace")
    return stream or ""
