"""Parsing AR exports: the mapping, line-numbered rejections, the events of a row."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from arbor_ingest.ar_import import survey
from arbor_ingest.cli import app
from arbor_ingest.domain.ar_events import customer_created, event_id, row_events
from arbor_ingest.domain.ar_presets import IBM, preset
from arbor_ingest.domain.csv_import import (
    ArCsvMapping,
    ArRow,
    CsvImportError,
    RejectedRow,
    read_rows,
)
from arbor_ingest.import_client import chunks
from arbor_shared.events import (
    CustomerCreated,
    DisputeOpened,
    DisputeResolved,
    InvoiceIssued,
    PaymentReceived,
)
from tests.ingest.fixtures.data import IBM_CSV

HEADER = (
    "countryCode,customerID,PaperlessDate,invoiceNumber,InvoiceDate,DueDate,"
    "InvoiceAmount,Disputed,SettledDate,PaperlessBill,DaysToSettle,DaysLate\r\n"
)
GOOD = (
    "391,0379-NEVHP,4/6/2013,0000611365,1/2/2013,2/1/2013,55.94,No,1/15/2013,"
    "Paper,13,0\r\n"
)


def rows(*lines: str, mapping: ArCsvMapping = IBM) -> list[ArRow | RejectedRow]:
    """Parse the header and ``lines`` as a file, physical line by physical line."""
    return list(read_rows(io.StringIO("".join([HEADER, *lines]), newline=""), mapping))


def test_a_good_row_becomes_an_invoice_row_in_minor_units() -> None:
    (row,) = rows(GOOD)

    assert row == ArRow(
        line=2,
        customer_id="0379-NEVHP",
        invoice_id="0000611365",
        number="0000611365",
        issue_date=date(2013, 1, 2),
        due_date=date(2013, 2, 1),
        settled_date=date(2013, 1, 15),
        currency="USD",
        amount_minor=5594,
        disputed=False,
        country_code="391",
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            GOOD.replace("1/2/2013", "13/2/2013"),
            "InvoiceDate '13/2/2013' is not a date",
        ),
        (
            GOOD.replace("1/15/2013", "2013-01-15"),
            "SettledDate '2013-01-15' is not a date",
        ),
        (GOOD.replace("55.94", '"55,94"'), "InvoiceAmount '55,94' is not a decimal"),
        (GOOD.replace("55.94", "NaN"), "InvoiceAmount 'NaN' is not a decimal"),
        (GOOD.replace("55.94", "-5.00"), "InvoiceAmount -5.00 is negative"),
        (GOOD.replace("55.94", "55.945"), "more decimals than USD allows"),
        (GOOD.replace("55.94", ""), "InvoiceAmount '' is not a decimal"),
        (GOOD.replace(",No,", ",Maybe,"), "Disputed 'Maybe' is neither a yes nor a no"),
        (
            GOOD.replace("2/1/2013", "1/1/2013"),
            "DueDate 2013-01-01 is before InvoiceDate",
        ),
        (GOOD.replace("0379-NEVHP", "bad id!"), "customerID 'bad id!' must be"),
        (GOOD.replace(",0\r\n", "\r\n"), "expected 12 fields, found 11"),
    ],
)
def test_a_bad_row_is_rejected_with_its_line_and_reason(line: str, reason: str) -> None:
    good, rejected = rows(GOOD.replace("0000611365", "0000000001"), line)

    assert isinstance(good, ArRow)
    assert isinstance(rejected, RejectedRow)
    assert rejected.line == 3
    assert reason in rejected.reason


def test_a_repeated_invoice_number_is_rejected_naming_the_first_line() -> None:
    _first, repeated = rows(GOOD, GOOD)

    assert repeated == RejectedRow(3, "invoice 0000611365 repeats line 2")


def test_missing_columns_stop_the_import_naming_them() -> None:
    header = HEADER.replace("InvoiceDate,", "").replace("Disputed,", "")

    with pytest.raises(
        CsvImportError, match=r"line 1: missing column.*'InvoiceDate'.*'Disputed'"
    ):
        list(read_rows([header, GOOD], IBM))


def test_line_numbers_count_physical_lines_across_quoted_newlines() -> None:
    multiline = GOOD.replace("Paper", '"Paper\r\nand more"').replace(
        "0000611365", "0000000002"
    )

    result = rows(
        GOOD, multiline, "\r\n", GOOD.replace("55.94", "x").replace("0000611365", "3")
    )

    assert [r.line for r in result] == [2, 3, 6]
    assert isinstance(result[2], RejectedRow)


def test_a_mapping_needs_a_currency_or_a_currency_column() -> None:
    with pytest.raises(
        ValidationError, match="give either currency or currency_column"
    ):
        ArCsvMapping.model_validate(IBM.model_dump() | {"currency": None})


def test_a_mapping_refuses_an_unknown_time_zone() -> None:
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        ArCsvMapping.model_validate(
            IBM.model_dump() | {"default_time_zone": "Mars/Base"}
        )


def test_currency_of_the_preset_can_be_overridden_and_sets_the_exponent() -> None:
    (row,) = rows(GOOD.replace("55.94", "5594"), mapping=preset("ibm", currency="JPY"))

    assert isinstance(row, ArRow)
    assert (row.currency, row.amount_minor) == ("JPY", 5594)


def test_a_settled_disputed_row_is_issued_disputed_paid_and_resolved_in_order() -> None:
    (row,) = rows(GOOD.replace(",No,", ",Yes,"))
    assert isinstance(row, ArRow)

    events = row_events(row, IBM)

    kinds = [type(data) for _, data in events]
    assert kinds == [InvoiceIssued, DisputeOpened, PaymentReceived, DisputeResolved]
    invoice, _opened, (_, payment), (_, resolved) = events
    assert invoice[0] == event_id("invoice", "0000611365")
    assert isinstance(invoice[1], InvoiceIssued)
    assert invoice[1].issued_at == datetime(
        2013, 1, 2, 17, tzinfo=UTC
    )  # noon, New York
    assert isinstance(payment, PaymentReceived)
    assert payment.received_at == datetime(2013, 1, 15, 17, tzinfo=UTC)
    assert [(a.invoice_id, a.amount_minor) for a in payment.allocations] == [
        ("0000611365", 5594)
    ]
    assert isinstance(resolved, DisputeResolved)
    assert resolved.outcome == "won"


def test_event_ids_are_the_same_on_every_import_of_the_same_row() -> None:
    (first,) = rows(GOOD)
    (second,) = rows(GOOD)
    assert isinstance(first, ArRow)
    assert isinstance(second, ArRow)

    assert row_events(first, IBM) == row_events(second, IBM)


def test_an_unsettled_row_has_no_payment() -> None:
    (row,) = rows(GOOD.replace(",1/15/2013,", ",,"))
    assert isinstance(row, ArRow)

    assert [type(d) for _, d in row_events(row, IBM)] == [InvoiceIssued]


def test_a_customer_starts_at_its_first_invoice_in_a_region_of_its_code() -> None:
    later = GOOD.replace("1/2/2013,2/1/2013", "3/2/2013,4/1/2013").replace(
        "0000611365", "9"
    )
    earlier = GOOD.replace("1/2/2013,2/1/2013", "1/1/2012,1/31/2012").replace(
        "0000611365", "8"
    )

    seeds = survey([HEADER, later, earlier], IBM)
    _, data = customer_created(seeds["0379-NEVHP"], IBM)

    assert isinstance(data, CustomerCreated)
    assert data.started_on == date(2012, 1, 1)
    assert (data.country, data.region, data.time_zone) == (
        "US",
        "ibm-391",
        "America/New_York",
    )


def test_chunks_keep_the_header_and_the_file_line_of_their_first_record(
    tmp_path: Path,
) -> None:
    multiline = GOOD.replace("Paper", '"Paper\r\nPaper"')
    path = tmp_path / "export.csv"
    path.write_bytes((HEADER + GOOD + multiline + GOOD + GOOD).encode())

    parts = list(chunks(path, 2))

    assert [c.first_line for c in parts] == [2, 5]
    assert all(c.text.startswith(HEADER) for c in parts)
    assert parts[0].text.count("\r\n") == 4
    assert sum(c.size_bytes for c in parts) == path.stat().st_size


def test_the_ibm_export_parses_without_a_single_rejected_row() -> None:
    with IBM_CSV.open(newline="") as file:
        result = list(read_rows(file, IBM))

    assert len(result) == 2466
    assert all(isinstance(r, ArRow) for r in result)
    assert sum(r.disputed for r in result if isinstance(r, ArRow)) == 561


def test_cli_dry_run_validates_offline_and_lists_rejected_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        HEADER + GOOD + GOOD.replace("55.94", "abc").replace("0000611365", "2")
    )

    result = CliRunner().invoke(
        app, ["import", "ar-csv", str(path), "--mapping", "ibm", "--dry-run"]
    )

    assert result.exit_code == 1
    assert "line 3: InvoiceAmount 'abc' is not a decimal amount" in result.output


def test_cli_dry_run_of_the_ibm_export_exits_zero() -> None:
    result = CliRunner().invoke(
        app, ["import", "ar-csv", str(IBM_CSV), "--currency", "usd", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    assert "2466" in result.output
