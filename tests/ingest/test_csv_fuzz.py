"""Arbitrary AR export content: every row is imported or rejected with its line."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from arbor_ingest.domain.ar_events import row_events
from arbor_ingest.domain.ar_presets import IBM
from arbor_ingest.domain.csv_import import ArRow, RejectedRow, read_rows

COLUMNS = [
    "countryCode",
    "customerID",
    "PaperlessDate",
    "invoiceNumber",
    "InvoiceDate",
    "DueDate",
    "InvoiceAmount",
    "Disputed",
    "SettledDate",
    "PaperlessBill",
    "DaysToSettle",
    "DaysLate",
]

dates = st.one_of(
    st.dates().map(lambda d: f"{d.month}/{d.day}/{d.year}"), st.text(max_size=12)
)
amounts = st.one_of(st.decimals(allow_nan=True, places=3).map(str), st.text(max_size=8))
cells = {
    "countryCode": st.sampled_from(["391", "406", "", "999"]),
    "customerID": st.from_regex(r"[A-Z0-9\-]{0,10}", fullmatch=True),
    "PaperlessDate": st.text(max_size=5),
    "invoiceNumber": st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    "InvoiceDate": dates,
    "DueDate": dates,
    "InvoiceAmount": amounts,
    "Disputed": st.sampled_from(["Yes", "No", "", "maybe"]),
    "SettledDate": st.one_of(st.just(""), dates),
    "PaperlessBill": st.text(max_size=20),
    "DaysToSettle": st.just("0"),
    "DaysLate": st.just("0"),
}
rows = st.lists(st.fixed_dictionaries(cells), max_size=15)


def export(records: list[dict[str, str]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([[r[c] for c in COLUMNS] for r in records])
    return out.getvalue()


@settings(max_examples=200, deadline=None)
@given(rows)
def test_every_row_is_imported_or_rejected_with_its_line(
    records: list[dict[str, str]],
) -> None:
    text = export(records)

    parsed = list(read_rows(io.StringIO(text, newline=""), IBM))

    lines = [r.line for r in parsed]
    assert lines == sorted(set(lines))
    physical = len(io.StringIO(text, newline="").readlines())
    assert all(2 <= line <= physical for line in lines)
    for row in parsed:
        if isinstance(row, RejectedRow):
            assert row.reason
        else:
            assert isinstance(row, ArRow)
            assert row.due_date >= row.issue_date
            assert row.amount_minor >= 0
            assert row_events(row, IBM)  # valid canonical events, or it raises
