"""``arbor cohorts|policies|kpis``: the services' operations APIs, with a token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

console = Console()
cohorts = typer.Typer(
    help="Preview and activate cohort definitions.", no_args_is_help=True
)
policies = typer.Typer(
    help="Dunning policies: simulate on past data.", no_args_is_help=True
)
kpis = typer.Typer(help="Collection KPIs: show and rebuild.", no_args_is_help=True)

Token = Annotated[
    str | None, typer.Option(envvar="ARBOR_TOKEN", help="operator bearer token")
]
TOKEN_FILE = Path(".local/operator.token")


def _client(url: str, token: str | None) -> httpx.Client:
    token = token or (TOKEN_FILE.read_text().strip() if TOKEN_FILE.exists() else None)
    if not token:
        raise typer.BadParameter(
            "pass --token, set ARBOR_TOKEN or run `make run` first"
        )
    return httpx.Client(
        base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )


def _call(url: str, token: str | None, method: str, path: str, **send: Any) -> None:
    """Send one request to the service at ``url`` and print its answer."""
    with _client(url, token) as client:
        try:
            response = client.request(method, path, **send)
        except httpx.TransportError as exc:
            reason = escape(f"cannot reach {url}: {exc}")
            console.print(f"[red]{reason}[/red]")
            raise typer.Exit(1) from exc
    _show(response)


def _show(response: httpx.Response) -> None:
    if response.is_error:
        # The body quotes the caller's input and patterns such as [a-z]: printed as
        # markup, Rich would swallow them as style tags.
        console.print(f"[red]{response.status_code}[/red] {escape(response.text)}")
        raise typer.Exit(1)
    console.print_json(response.text)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: {exc}") from exc


@cohorts.command("preview")
def preview(
    definition: Annotated[Path, typer.Argument(help="candidate definition (JSON)")],
    url: str = "http://127.0.0.1:8002",
    token: Token = None,
) -> None:
    """Show how many customers would move from which cohort to which."""
    _call(url, token, "POST", "/v1/cohorts:preview", json=_load(definition))


@cohorts.command("create")
def create(
    definition: Annotated[Path, typer.Argument(help="new definition version (JSON)")],
    url: str = "http://127.0.0.1:8002",
    token: Token = None,
) -> None:
    """Store a new definition version (validated; not yet active)."""
    _call(url, token, "POST", "/v1/cohorts", json=_load(definition))


@cohorts.command("activate")
def activate(
    version: Annotated[int, typer.Argument(help="definition version to activate")],
    url: str = "http://127.0.0.1:8002",
    token: Token = None,
) -> None:
    """Activate a version: every customer is re-scored and moves are published."""
    _call(url, token, "POST", f"/v1/cohorts/{version}/activations")


@policies.command("simulate")
def simulate_policy(
    request: Annotated[Path, typer.Argument(help="policy and past events (JSON)")],
    url: str = "http://127.0.0.1:8003",
    token: Token = None,
) -> None:
    """Replay past events through a candidate policy; nothing is sent."""
    _call(url, token, "POST", "/v1/policies:simulate", json=_load(request))


@kpis.command("show")
def show(
    as_of: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    # The KPIs are per currency, never summed across them: the API requires one.
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. EUR")],
    cohort: str | None = None,
    url: str = "http://127.0.0.1:8004",
    token: Token = None,
) -> None:
    """Print the KPIs as of a date, for a cohort and currency."""
    params = {"as_of": as_of, "currency": currency, "cohort": cohort}
    present = {name: value for name, value in params.items() if value}
    _call(url, token, "GET", "/v1/kpis", params=present)


@kpis.command("rebuild")
def rebuild() -> None:
    """Replay the source topics into fresh KPI state (uses ARBOR_METRICS_* settings)."""
    done = subprocess.run(
        [sys.executable, "-m", "arbor_metrics", "rebuild"], env=os.environ, check=False
    )
    raise typer.Exit(done.returncode)
