"""docker-compose.yml: valid Compose, and the start order the services rely on.

The schema in ``compose-spec.json`` is the Compose Specification's JSON schema as
shipped in the PyPI package docker-compose==1.29.2 (compose/config/compose_spec.json,
sha256 0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac). It predates
top-level ``name`` and healthcheck ``start_interval``, so the compose file uses
neither; every key it does use is checked.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")

# service name -> (Python package, settings prefix, HTTP port)
ARBOR_SERVICES = {
    "ingest": ("arbor_ingest", "ARBOR_INGEST_", 8001),
    "segmentation": ("arbor_segmentation", "ARBOR_SEGMENTATION_", 8002),
    "dunning": ("arbor_dunning", "ARBOR_DUNNING_", 8003),
    "metrics": ("arbor_metrics", "ARBOR_METRICS_", 8004),
    "portal-api": ("arbor_portal", "ARBOR_PORTAL_", 8005),
}
ONE_SHOTS = {"keys", "simulator", *(f"migrate-{name}" for name in ARBOR_SERVICES)}
SETTINGS_CLASSES = {
    "ingest": "IngestSettings",
    "segmentation": "SegmentationSettings",
    "dunning": "DunningSettings",
    "metrics": "MetricsSettings",
    "portal-api": "PortalSettings",
}

Compose = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> Compose:
    document: Compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    # The file's $schema is a misspelt 2019-09 URI that jsonschema cannot look up,
    # so the draft it names is chosen here rather than guessed by the library.
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def _services(compose: Compose) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """The service's dependencies with their conditions; the list form means started."""
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: spec["condition"] for name, spec in depends.items()}


def test_compose_file_matches_the_compose_specification(
    compose: Compose, validator: jsonschema.protocols.Validator
) -> None:
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    messages = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    assert not messages, "\n".join(messages)


def test_schema_rejects_a_misspelt_service_key(
    compose: Compose, validator: jsonschema.protocols.Validator
) -> None:
    # Proves the vendored schema is strict enough for the test above to mean much.
    broken = json.loads(json.dumps(compose))
    broken["services"]["ingest"]["helthcheck"] = broken["services"]["ingest"].pop(
        "healthcheck"
    )

    assert not validator.is_valid(broken)


def test_every_long_running_service_has_a_healthcheck(compose: Compose) -> None:
    missing = [
        name
        for name, service in _services(compose).items()
        if name not in ONE_SHOTS and "healthcheck" not in service
    ]

    assert not missing


def test_one_shot_services_are_never_restarted(compose: Compose) -> None:
    services = _services(compose)

    restarts = {name: services[name].get("restart") for name in ONE_SHOTS}

    assert restarts == dict.fromkeys(ONE_SHOTS, "no")


def test_dependency_conditions_fit_what_they_wait_for(compose: Compose) -> None:
    services = _services(compose)
    wrong = []
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            if target not in services:
                wrong.append(f"{name} depends on unknown {target}")
            elif (
                condition == "service_healthy" and "healthcheck" not in services[target]
            ):
                wrong.append(
                    f"{name} waits for {target} to be healthy; it has no check"
                )
            elif (
                condition == "service_completed_successfully"
                and target not in ONE_SHOTS
            ):
                wrong.append(f"{name} waits for long-running {target} to complete")

    assert not wrong


def test_dependencies_have_no_cycle(compose: Compose) -> None:
    graph = {name: set(_depends_on(s)) for name, s in _services(compose).items()}
    started: list[str] = []
    while graph:
        ready = sorted(name for name, needs in graph.items() if needs <= set(started))
        assert ready, f"cycle among {sorted(graph)}"
        started.extend(ready)
        for name in ready:
            del graph[name]


@pytest.mark.parametrize("name", ARBOR_SERVICES)
def test_service_starts_after_its_migration_the_broker_and_the_keys(
    compose: Compose, name: str
) -> None:
    depends = _depends_on(_services(compose)[name])

    assert depends[f"migrate-{name}"] == "service_completed_successfully"
    assert depends["keys"] == "service_completed_successfully"
    assert depends["kafka"] == "service_healthy"


@pytest.mark.parametrize("name", ARBOR_SERVICES)
def test_migration_waits_for_a_healthy_database(compose: Compose, name: str) -> None:
    migrate = _services(compose)[f"migrate-{name}"]
    package = ARBOR_SERVICES[name][0]

    assert migrate["command"] == ["python", "-m", package, "migrate"]
    assert _depends_on(migrate) == {"postgres": "service_healthy"}


@pytest.mark.parametrize("name", ARBOR_SERVICES)
def test_service_serves_and_probes_readyz_on_its_own_port(
    compose: Compose, name: str
) -> None:
    service = _services(compose)[name]
    package, prefix, port = ARBOR_SERVICES[name]
    probe = " ".join(service["healthcheck"]["test"])

    assert service["command"] == ["python", "-m", package, "serve"]
    assert service["environment"][f"{prefix}HTTP_PORT"] == str(port)
    assert service["environment"][f"{prefix}HTTP_HOST"] == "0.0.0.0"
    assert re.search(rf"http://127\.0\.0\.1:{port}/readyz\b", probe)
    assert f"127.0.0.1:{port}:{port}" in service["ports"]


@pytest.mark.parametrize("name", ARBOR_SERVICES)
def test_service_settings_carry_only_its_own_prefix(
    compose: Compose, name: str
) -> None:
    prefix = ARBOR_SERVICES[name][1]
    environment = _services(compose)[name]["environment"]

    assert all(key.startswith(prefix) for key in environment)
    assert environment[f"{prefix}DATABASE_SCHEMA"] in (name, name.split("-")[0])
    assert environment[f"{prefix}OIDC_JWKS_URL"] == "file:///keys/jwks.json"
    assert environment[f"{prefix}OTLP_ENDPOINT"] == "http://jaeger:4318"


def test_every_arbor_process_runs_the_one_image_with_a_read_only_root(
    compose: Compose,
) -> None:
    arbor = [*ARBOR_SERVICES, *ONE_SHOTS]
    services = _services(compose)

    assert {services[n]["build"]["dockerfile"] for n in arbor} == {
        "deploy/docker/Dockerfile"
    }
    assert {services[n]["image"] for n in arbor} == {"arbor:local"}
    assert all(services[n]["read_only"] is True for n in arbor)
    assert all("/tmp" in services[n]["tmpfs"] for n in arbor)


def test_monitoring_mounts_the_configuration_kept_in_deploy(
    compose: Compose,
) -> None:
    services = _services(compose)
    mounts = [
        volume.split(":")[0]
        for name in ("prometheus", "grafana")
        for volume in services[name]["volumes"]
    ]

    assert sorted(mounts) == [
        "./deploy/grafana/dashboards",
        "./deploy/grafana/provisioning",
        "./deploy/prometheus",
    ]
    assert all((REPO_ROOT / mount).is_dir() for mount in mounts)


@pytest.mark.parametrize("name", ARBOR_SERVICES)
def test_service_settings_accept_the_compose_environment(
    compose: Compose, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    package, prefix, port = ARBOR_SERVICES[name]
    settings_type = getattr(
        importlib.import_module(f"{package}.config"), SETTINGS_CLASSES[name]
    )
    for key in os.environ:
        if key.startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in _services(compose)[name]["environment"].items():
        monkeypatch.setenv(key, str(value))

    settings = settings_type()

    assert settings.http_port == port
