"""``arbor``: the operator command line.

Each command group talks to one part of the system: ``import`` and ``simulate`` to
ingest as a signed publisher, ``dead-letters`` to Kafka, ``cohorts``, ``policies``
and ``kpis`` to the services' operations APIs with an operator token, ``token`` to
the local identity provider.
"""

from __future__ import annotations

import typer

from arbor_cli import dead_letters, operations, simulate, tokens
from arbor_ingest.cli import import_

app = typer.Typer(
    name="arbor",
    help="Operate Arbor: import billing data, review dead letters, roll out cohort "
    "definitions and policies, rebuild KPIs, run the demo simulator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(import_, name="import")
app.add_typer(dead_letters.app, name="dead-letters")
app.add_typer(operations.cohorts, name="cohorts")
app.add_typer(operations.policies, name="policies")
app.add_typer(operations.kpis, name="kpis")
app.add_typer(tokens.app, name="token")
app.command("simulate")(simulate.simulate)

if __name__ == "__main__":
    app()
