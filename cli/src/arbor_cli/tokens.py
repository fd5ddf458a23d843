"""``arbor token``: tokens from the local identity provider (dev and demo only)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from arbor_shared.local_issuer import LocalIssuer

app = typer.Typer(help="Mint tokens with the local issuer.", no_args_is_help=True)


@app.command("mint")
def mint(
    subject: Annotated[str, typer.Argument(help="customer id or operator name")],
    role: Annotated[
        list[str] | None, typer.Option(help="a role such as operator (repeatable)")
    ] = None,
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 30)] = 12.0,
    issuer_dir: Annotated[Path, typer.Option(help="the local issuer's keys")] = Path(
        ".local/issuer"
    ),
) -> None:
    """Print a signed token the services accept under `make run`."""
    issuer = LocalIssuer(issuer_dir)
    token = issuer.mint(
        subject, roles=tuple(role or ()), lifetime=timedelta(hours=hours)
    )
    typer.echo(token)
