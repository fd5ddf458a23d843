"""Fixtures that run services as separate processes inside the test's namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Namespace
from tests.e2e.processes import ServiceProcess, free_port

PREFIXES = {
    "ingest": "ARBOR_INGEST_",
    "segmentation": "ARBOR_SEGMENTATION_",
    "dunning": "ARBOR_DUNNING_",
    "metrics": "ARBOR_METRICS_",
    "portal-api": "ARBOR_PORTAL_",
}
MODULES = {
    "ingest": "arbor_ingest",
    "segmentation": "arbor_segmentation",
    "dunning": "arbor_dunning",
    "metrics": "arbor_metrics",
    "portal-api": "arbor_portal",
}

ServiceFactory = Callable[..., ServiceProcess]


@pytest.fixture
def service_process(namespace: Namespace, tmp_path: Path) -> Iterator[ServiceFactory]:
    """Make (and migrate) service processes; every one is stopped after the test."""
    started: list[ServiceProcess] = []

    def make(name: str, **extra: str) -> ServiceProcess:
        prefix = PREFIXES[name]
        env = namespace.env(name, prefix, free_port())
        env |= {f"{prefix}{key.upper()}": value for key, value in extra.items()}
        process = ServiceProcess(
            MODULES[name], env, int(env[f"{prefix}HTTP_PORT"]), tmp_path / f"{name}.log"
        )
        process.migrate()
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()
