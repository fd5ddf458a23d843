"""The Helm chart: renders, is valid Kubernetes, passes checkov, keeps its promises.

helm is built from its Go module by deploy/helm/install-helm.sh (cached in
.local/bin). checkov runs through ``uvx`` in its own environment, because its
dependencies clash with the workspace's; it is told not to phone home.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no type hints
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = REPO_ROOT / "deploy" / "helm"
CHART = HELM_DIR / "arbor"
INSTALL_HELM = HELM_DIR / "install-helm.sh"
CHECKOV_CONFIG = HELM_DIR / ".checkov.yaml"
CHECKOV = "checkov==3.3.30"

# The oldest Kubernetes the chart is checked against; kubernetes-validate ships it.
KUBE_VERSION = "1.30.0"
# Kinds from CRDs (KEDA, Prometheus Operator) that kubernetes-validate cannot know.
CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor"}
RELEASE = "arbor"
NAMESPACE = "arbor"
# The values that have no default, being site-specific.
SITE = {
    "config.oidc.issuer": "https://login.example.com/realms/arbor",
    "config.oidc.jwksUrl": "https://login.example.com/realms/arbor/certs",
    "services.dunning.env.SMTP_HOST": "smtp.example.com",
    "services.dunning.env.MAIL_FROM": "collections@example.com",
    "services.dunning.env.WEBHOOK_URL": "https://messaging.example.com/v1",
}
VALUE_SETS = {
    "default": [f"--set={key}={value}" for key, value in SITE.items()],
    "production": ["--values", str(CHART / "values-production.yaml")],
}
SERVICES = {
    "ingest": ("arbor_ingest", "ARBOR_INGEST_", 8001),
    "segmentation": ("arbor_segmentation", "ARBOR_SEGMENTATION_", 8002),
    "dunning": ("arbor_dunning", "ARBOR_DUNNING_", 8003),
    "metrics": ("arbor_metrics", "ARBOR_METRICS_", 8004),
    "portal-api": ("arbor_portal", "ARBOR_PORTAL_", 8005),
}
SETTINGS_CLASSES = {
    "ingest": "IngestSettings",
    "segmentation": "SegmentationSettings",
    "dunning": "DunningSettings",
    "metrics": "MetricsSettings",
    "portal-api": "PortalSettings",
}
# What a Secret would hold, for settings that validate their secret's content.
SECRET_STAND_INS = {
    "ARBOR_INGEST_PUBLISHERS": json.dumps(
        [{"key_id": "billing", "secret": "s" * 32, "scopes": ["events:write"]}]
    ),
}
HTTP_SCALED = {"ingest", "portal-api"}
LAG_SCALED = {"segmentation", "dunning", "metrics"}
# The services' own drain (arbor_shared.cli.GRACEFUL_SHUTDOWN_SECONDS).
SERVICE_DRAIN_SECONDS = 30
HELM_TIMEOUT_SECONDS = 900
CHECKOV_TIMEOUT_SECONDS = 600

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def helm() -> str:
    """The helm binary, built on first use."""
    result = subprocess.run(
        ["bash", str(INSTALL_HELM)],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"install-helm.sh failed:\n{result.stderr}"
    return result.stdout.strip().splitlines()[-1]


def _template(helm: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def values_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def manifests(helm: str, values_name: str) -> list[Manifest]:
    rendered = _template(helm, *VALUE_SETS[values_name])
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.fixture(scope="module")
def rendered_dir(
    helm: str, values_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp(f"chart-{values_name}")
    rendered = _template(helm, *VALUE_SETS[values_name], "--output-dir", str(out))
    assert rendered.returncode == 0, rendered.stderr
    return out


def _of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """Manifests of ``kind`` by their component label (or name when unlabelled)."""
    found = {}
    for manifest in manifests:
        if manifest["kind"] == kind:
            labels = manifest["metadata"].get("labels", {})
            key = labels.get(
                "app.kubernetes.io/component", manifest["metadata"]["name"]
            )
            found[key] = manifest
    return found


def _pod_spec(manifest: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def _workloads(manifests: list[Manifest]) -> Iterator[Manifest]:
    return (m for m in manifests if m["kind"] in ("Deployment", "Job"))


# --- Rendering and validity ------------------------------------------------------


@pytest.mark.parametrize("missing", sorted(SITE))
def test_chart_refuses_to_render_without_a_site_setting(
    helm: str, missing: str
) -> None:
    given = [f"--set={key}={value}" for key, value in SITE.items() if key != missing]
    rendered = _template(helm, *given)

    assert rendered.returncode != 0
    assert f"{missing} is required" in rendered.stderr


def test_chart_passes_helm_lint(helm: str, values_name: str) -> None:
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *VALUE_SETS[values_name]],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_SECONDS,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_manifest_is_valid_kubernetes(manifests: list[Manifest]) -> None:
    errors = []
    for manifest in manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(map(str, error.path))
            errors.append(f"{name}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name}: {error.message}")

    assert not errors, "\n".join(errors)


def test_checkov_finds_no_failed_check(rendered_dir: Path) -> None:
    uvx = shutil.which("uvx")
    assert uvx is not None, "uvx (from uv) is needed to run checkov"
    # No call to Prisma Cloud for guidelines, nor to PyPI for a newer version.
    env = os.environ | {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "1"}
    result = subprocess.run(
        [
            *(uvx, "--python", "3.11", CHECKOV),
            *("--directory", str(rendered_dir)),
            *("--config-file", str(CHECKOV_CONFIG)),
            *("--skip-download", "--output", "json", "--quiet"),
        ],
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_SECONDS,
        check=False,
        env=env,
    )
    report = json.loads(result.stdout)
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]

    assert result.returncode == 0, "\n".join(failed) or result.stderr
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0


def test_checkov_skips_are_explained() -> None:
    text = CHECKOV_CONFIG.read_text()
    skipped = yaml.safe_load(text)["skip-check"]

    for check in skipped:
        comment = text.split(f"- {check}")[0].rsplit("skip-check:", 1)[-1]
        assert comment.strip().splitlines()[-1].lstrip().startswith("#"), check


# --- Deployments -----------------------------------------------------------------


def test_one_deployment_per_service_runs_it_on_its_port(
    manifests: list[Manifest],
) -> None:
    deployments = _of_kind(manifests, "Deployment")

    assert deployments.keys() == SERVICES.keys()
    for name, (module, _, port) in SERVICES.items():
        (container,) = _pod_spec(deployments[name])["containers"]
        assert container["command"] == ["python", "-m", module, "serve"]
        assert container["ports"] == [
            {"name": "http", "containerPort": port, "protocol": "TCP"}
        ]


def test_deployments_probe_start_readiness_and_liveness(
    manifests: list[Manifest],
) -> None:
    for deployment in _of_kind(manifests, "Deployment").values():
        (container,) = _pod_spec(deployment)["containers"]

        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_pods_leave_time_to_drain_and_leave_the_consumer_group(
    manifests: list[Manifest],
) -> None:
    for deployment in _of_kind(manifests, "Deployment").values():
        spec = _pod_spec(deployment)
        (container,) = spec["containers"]
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])

        assert spec["terminationGracePeriodSeconds"] > SERVICE_DRAIN_SECONDS + pre_stop


def test_workloads_run_restricted_with_only_tmp_writable(
    manifests: list[Manifest],
) -> None:
    for workload in _workloads(manifests):
        spec = _pod_spec(workload)
        (container,) = spec["containers"]
        context = container["securityContext"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}

        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]


def test_secrets_come_only_from_secret_references(
    manifests: list[Manifest],
) -> None:
    assert not [m for m in manifests if m["kind"] == "Secret"]
    for workload in _workloads(manifests):
        (container,) = _pod_spec(workload)["containers"]
        for variable in container["env"]:
            if re.search(r"PASSWORD|SECRET|PUBLISHERS", variable["name"]):
                assert "secretKeyRef" in variable["valueFrom"], variable["name"]


def test_database_url_is_built_from_variables_defined_before_it(
    manifests: list[Manifest],
) -> None:
    for workload in _workloads(manifests):
        (container,) = _pod_spec(workload)["containers"]
        names = [variable["name"] for variable in container["env"]]
        (url,) = [v for v in container["env"] if v["name"].endswith("_DATABASE_URL")]
        referenced = re.findall(r"\$\((\w+)\)", url["value"])

        assert url["value"].startswith("postgresql+asyncpg://")
        assert referenced == ["ARBOR_DB_USERNAME", "ARBOR_DB_PASSWORD"]
        assert all(names.index(r) < names.index(url["name"]) for r in referenced)


def test_each_service_config_has_its_prefixed_settings(
    manifests: list[Manifest],
) -> None:
    configs = _of_kind(manifests, "ConfigMap")
    required = [
        "DATABASE_SCHEMA",
        "HTTP_HOST",
        "HTTP_PORT",
        "KAFKA__BOOTSTRAP",
        "KAFKA__SECURITY_PROTOCOL",
        "OIDC_ISSUER",
        "OIDC_AUDIENCE",
        "OIDC_JWKS_URL",
    ]
    for name, (_, prefix, port) in SERVICES.items():
        data = configs[name]["data"]

        assert all(key.startswith(prefix) for key in data), name
        assert all(data[prefix + key] for key in required), name
        assert data[f"{prefix}HTTP_PORT"] == str(port)


def _container_environment(
    configs: dict[str, Manifest], deployment: Manifest
) -> dict[str, str]:
    """The environment Kubernetes would give the container, Secrets stood in for."""
    (container,) = _pod_spec(deployment)["containers"]
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        component = source["configMapRef"]["name"].removeprefix(f"{RELEASE}-")
        environment |= configs[component]["data"]
    for variable in container["env"]:
        name = variable["name"]
        if "value" in variable:
            expand = re.sub(
                r"\$\((\w+)\)", lambda m: environment[m.group(1)], variable["value"]
            )
            environment[name] = expand
        else:
            environment[name] = SECRET_STAND_INS.get(name, "stand-in-secret-" * 2)
    return environment


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_settings_accept_the_rendered_environment(
    manifests: list[Manifest], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, prefix, port = SERVICES[name]
    settings_type = getattr(
        importlib.import_module(f"{module}.config"), SETTINGS_CLASSES[name]
    )
    environment = _container_environment(
        _of_kind(manifests, "ConfigMap"), _of_kind(manifests, "Deployment")[name]
    )
    for key in os.environ:
        if key.startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    settings = settings_type()

    assert settings.http_port == port
    assert settings.database_url.get_secret_value().startswith("postgresql+asyncpg://")


def test_kafka_ca_file_setting_points_into_the_mounted_secret(
    manifests: list[Manifest],
) -> None:
    configs = _of_kind(manifests, "ConfigMap")
    for name, deployment in _of_kind(manifests, "Deployment").items():
        cafile = configs[name]["data"].get(f"{SERVICES[name][1]}KAFKA__SSL_CAFILE")
        if cafile is None:
            continue
        (container,) = _pod_spec(deployment)["containers"]
        mounts = [m["mountPath"] for m in container["volumeMounts"]]

        assert any(cafile.startswith(f"{mount}/") for mount in mounts), name


# --- Migrations, scaling, disruption ---------------------------------------------


def test_migrations_run_as_hook_jobs_before_install_and_upgrade(
    manifests: list[Manifest],
) -> None:
    jobs = _of_kind(manifests, "Job")

    assert jobs.keys() == {f"migrate-{name}" for name in SERVICES}
    for name, (module, _, _) in SERVICES.items():
        job = jobs[f"migrate-{name}"]
        (container,) = _pod_spec(job)["containers"]
        hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")

        assert container["command"] == ["python", "-m", module, "migrate"]
        assert sorted(hooks) == ["pre-install", "pre-upgrade"]
        assert "envFrom" not in container, "a hook cannot read the release's config"


def test_http_services_scale_on_cpu_and_consumers_never_by_two_scalers(
    manifests: list[Manifest],
) -> None:
    hpas = _of_kind(manifests, "HorizontalPodAutoscaler")
    scaled = _of_kind(manifests, "ScaledObject")
    deployments = _of_kind(manifests, "Deployment")

    assert hpas.keys() == HTTP_SCALED
    assert scaled.keys() in (set(), LAG_SCALED)
    assert not hpas.keys() & scaled.keys()
    for name in hpas.keys() | scaled.keys():
        assert "replicas" not in deployments[name]["spec"], name


def test_lag_scaling_never_exceeds_the_partition_count(
    manifests: list[Manifest],
) -> None:
    configs = _of_kind(manifests, "ConfigMap")
    for name, scaled in _of_kind(manifests, "ScaledObject").items():
        prefix = SERVICES[name][1]
        partitions = int(configs[name]["data"][f"{prefix}KAFKA__TOPIC_PARTITIONS"])
        (trigger,) = scaled["spec"]["triggers"]

        assert scaled["spec"]["maxReplicaCount"] <= partitions
        assert f"{prefix.lower()}consumer_lag_records" in trigger["metadata"]["query"]


def test_every_service_has_a_disruption_budget(manifests: list[Manifest]) -> None:
    budgets = _of_kind(manifests, "PodDisruptionBudget")
    deployments = _of_kind(manifests, "Deployment")

    assert budgets.keys() == SERVICES.keys()
    for name, budget in budgets.items():
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector == deployments[name]["spec"]["selector"]["matchLabels"]


# --- Network ---------------------------------------------------------------------


def test_network_is_denied_by_default_for_every_pod(manifests: list[Manifest]) -> None:
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    deny = [
        p for p in policies if "ingress" not in p["spec"] and "egress" not in p["spec"]
    ]

    assert len(deny) == 1
    assert sorted(deny[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    selector = deny[0]["spec"]["podSelector"]["matchLabels"]
    for workload in _workloads(manifests):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), workload["metadata"]["name"]


def test_network_allows_dns_database_and_broker_egress(
    manifests: list[Manifest],
) -> None:
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    egress_ports = {
        port["port"]
        for policy in policies
        for rule in policy["spec"].get("egress", [])
        for port in rule["ports"]
    }
    ingress_ports = {
        port["port"]
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        for port in rule["ports"]
    }

    assert {53, 5432, 443} <= egress_ports
    assert {9092, 9093} & egress_ports
    assert ingress_ports == {port for _, _, port in SERVICES.values()}
