"""The ``arbor`` command line: ``arbor import ar-csv FILE --mapping ibm ...``.

Exit status: 0 when every row was imported (or would be, with ``--dry-run``), 1 when
rows were rejected (they are listed with their line numbers), 2 when the import
could not run at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from arbor_ingest.domain.ar_presets import PRESETS, preset
from arbor_ingest.domain.csv_import import (
    ArCsvMapping,
    ArRow,
    CsvImportError,
    read_rows,
)
from arbor_ingest.import_client import (
    Chunk,
    ImportFailedError,
    ImportTotals,
    Publisher,
    send_file,
)

app = typer.Typer(
    help="Arbor: billing cohorts for cash collection.", no_args_is_help=True
)
import_ = typer.Typer(help="Import billing data into ingest.", no_args_is_help=True)
app.add_typer(import_, name="import")

console = Console(stderr=True)

# A customer's start date is its earliest invoice among the rows of the request that
# first names it, so fewer, larger requests give exact dates (a 5,000-row request
# of a typical export is well under a megabyte).
ROWS_PER_REQUEST = 5000

FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV export")
]


@import_.command("ar-csv")
def import_ar_csv(
    file: FileArgument,
    mapping: Annotated[
        str, typer.Option(help=f"preset ({', '.join(sorted(PRESETS))}) or a JSON file")
    ] = "ibm",
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 code of the file's amounts")
    ] = None,
    url: Annotated[str, typer.Option(help="ingest base URL")] = "http://127.0.0.1:8001",
    key_id: Annotated[str | None, typer.Option(envvar="ARBOR_KEY_ID")] = None,
    secret: Annotated[
        str | None, typer.Option(envvar="ARBOR_SECRET", help="publisher secret")
    ] = None,
    batch_rows: Annotated[
        int, typer.Option(min=1, max=50_000, help="rows per signed request")
    ] = ROWS_PER_REQUEST,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only validate, offline")
    ] = False,
) -> None:
    """Import an accounts-receivable export: one row per invoice."""
    chosen = _mapping(mapping, currency.upper() if currency else None)
    if dry_run:
        totals = _validate(file, chosen)
    else:
        if not key_id or not secret:
            _fail("--key-id and --secret (or ARBOR_KEY_ID, ARBOR_SECRET) are required")
        publisher = Publisher(key_id or "", secret or "")
        totals = _send(file, url, publisher, chosen, batch_rows)
    _report(totals, dry_run=dry_run)
    raise typer.Exit(1 if totals.rejected else 0)


def _mapping(name: str, currency: str | None) -> ArCsvMapping:
    try:
        if name in PRESETS:
            return preset(name, currency=currency)
        document = json.loads(Path(name).read_text())
        if currency:
            document["currency"] = currency
        return ArCsvMapping.model_validate(document)
    except (OSError, ValueError, ValidationError) as exc:
        _fail(f"mapping {name!r}: {exc}")
        raise


def _validate(path: Path, mapping: ArCsvMapping) -> ImportTotals:
    totals, customers = ImportTotals(), set()
    with _progress() as progress, path.open(encoding="utf-8-sig", newline="") as file:
        task = progress.add_task("validating", total=path.stat().st_size)
        try:
            for row in read_rows(_tracked(file, progress, task), mapping):
                totals.rows += 1
                if not isinstance(row, ArRow):
                    totals.rejected.append((row.line, row.reason))
                    continue
                customers.add(row.customer_id)
                totals.invoices += 1
                totals.payments += row.settled_date is not None and row.amount_minor > 0
                totals.disputes += row.disputed
        except CsvImportError as exc:
            _fail(str(exc))
    totals.customers = len(customers)
    return totals


def _tracked(lines: Iterator[str], progress: Progress, task: object) -> Iterator[str]:
    for line in lines:
        progress.advance(task, len(line.encode()))  # type: ignore[arg-type]
        yield line


def _send(
    path: Path, url: str, publisher: Publisher, mapping: ArCsvMapping, rows: int
) -> ImportTotals:
    # The mapping travels whole, so the service applies exactly what was validated.
    with _progress() as progress:
        task = progress.add_task("importing", total=path.stat().st_size)

        def advance(chunk: Chunk, _totals: ImportTotals) -> None:
            progress.advance(task, chunk.size_bytes)

        async def run() -> ImportTotals:
            async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
                return await send_file(
                    client,
                    path,
                    publisher=publisher,
                    params={},
                    mapping_json=mapping.model_dump_json(),
                    rows_per_chunk=rows,
                    on_chunk=advance,
                )

        try:
            return asyncio.run(run())
        except ImportFailedError as exc:
            _fail(str(exc))
            raise


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _report(totals: ImportTotals, *, dry_run: bool) -> None:
    table = Table(title="would import" if dry_run else "imported")
    for name in ("rows", "invoices", "payments", "customers", "disputes"):
        table.add_column(name, justify="right")
    if not dry_run:
        table.add_column("duplicates", justify="right")
    table.add_column("rejected", justify="right")
    values = [totals.rows, totals.invoices, totals.payments, totals.customers]
    values.append(totals.disputes)
    if not dry_run:
        values.append(totals.duplicates)
    table.add_row(*map(str, [*values, len(totals.rejected)]))
    console.print(table)
    for line, reason in sorted(totals.rejected):
        console.print(f"line {line}: {reason}", markup=False, highlight=False)


def _fail(message: str) -> None:
    console.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(2)


if __name__ == "__main__":
    app()
