"""A local Prometheus for ``make run``: the compose configuration, aimed at loopback.

It scrapes the five services under the same job and ``service`` labels as the
docker-compose stack and the Helm chart, and loads the same alert rules, so every
dashboard query and alert can be tried against the running demo.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
RULES = REPO / "deploy" / "prometheus" / "rules"
SCRAPE_SECONDS = 5


def config(ports: dict[str, int], listen_port: int) -> str:
    """The compose configuration with loopback targets and absolute rule paths."""
    document = yaml.safe_load(COMPOSE_CONFIG.read_text())
    document["global"] |= {
        "scrape_interval": f"{SCRAPE_SECONDS}s",
        "evaluation_interval": f"{SCRAPE_SECONDS}s",
    }
    document["rule_files"] = [str(RULES / "*.yml")]
    for job in document["scrape_configs"]:
        if job["job_name"] == "arbor":
            job["static_configs"] = [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}}
                for name, port in ports.items()
            ]
        else:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{listen_port}"]}]
    return str(yaml.safe_dump(document, sort_keys=False))


def start(
    state: Path, ports: dict[str, int], listen_port: int
) -> subprocess.Popen[bytes] | None:
    """Start Prometheus under ``state``; ``None`` when it is not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    state.mkdir(parents=True, exist_ok=True)
    (state / "prometheus.yml").write_text(config(ports, listen_port))
    log = (state / "prometheus.log").open("wb")
    return subprocess.Popen(
        [
            binary,
            f"--config.file={state / 'prometheus.yml'}",
            f"--storage.tsdb.path={state / 'data'}",
            f"--web.listen-address=127.0.0.1:{listen_port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
