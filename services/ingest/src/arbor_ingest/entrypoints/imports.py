"""Ledger exports: ``POST /v1/imports/ar-csv``.

The body is the CSV itself (``text/csv``) or a multipart form with ``file`` and an
optional ``mapping`` (JSON, as ``ArCsvMapping``). The mapping is a preset named in
the query (``?mapping=ibm``) unless the form carries one. The answer comes after every
batch has committed; a large file is sent in chunks (the CLI does), each with
``first_line`` so rejected rows keep the file's own line numbers.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from arbor_ingest.ar_import import ImportSummary, import_ar_csv
from arbor_ingest.domain.ar_presets import PRESETS, preset
from arbor_ingest.domain.csv_import import ArCsvMapping, CsvImportError
from arbor_ingest.entrypoints.auth import ImportsWriter
from arbor_shared.http import Runtime

router = APIRouter(prefix="/v1/imports", tags=["imports"])

_EXAMPLE_CSV = (
    "countryCode,customerID,PaperlessDate,invoiceNumber,InvoiceDate,DueDate,"
    "InvoiceAmount,Disputed,SettledDate,PaperlessBill,DaysToSettle,DaysLate\r\n"
    "391,0379-NEVHP,4/6/2013,0000611365,1/2/2013,2/1/2013,55.94,No,1/15/2013,"
    "Paper,13,0\r\n"
)


class RejectedRowRead(BaseModel):
    line: int
    reason: str


class ImportRead(BaseModel):
    """Rows read; new events accepted by kind; duplicates; every rejected row."""

    rows: int
    invoices: int
    payments: int
    customers: int
    disputes: int
    duplicates: int
    rejected: list[RejectedRowRead]


@router.post(
    "/ar-csv",
    responses={
        401: {"description": "Not signed by a known publisher, or stale"},
        403: {"description": "The publisher lacks the imports:write scope"},
        413: {"description": "Body over the limit: send the file in chunks"},
        429: {"description": "Over the publisher's rate; see Retry-After"},
        415: {"description": "Neither text/csv nor multipart/form-data"},
        422: {
            "description": "Unknown preset, bad mapping, or a header missing a "
            "mapped column; the field is named"
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": _EXAMPLE_CSV},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "mapping": {"type": "string", "description": "JSON"},
                        },
                    }
                },
            },
        }
    },
)
async def post_ar_csv(
    request: Request,
    runtime: Runtime,
    publisher: ImportsWriter,
    mapping: Annotated[
        str | None, Query(description=f"preset: {', '.join(sorted(PRESETS))}")
    ] = None,
    currency: Annotated[
        str | None, Query(pattern=r"^[A-Z]{3}$", description="overrides the preset")
    ] = None,
    first_line: Annotated[
        int, Query(ge=2, description="file line of the body's first data row")
    ] = 2,
) -> ImportRead:
    """Import an accounts-receivable export: invoices, payments, customers."""
    source, custom = await _source(request)
    chosen = custom or _preset(mapping, currency)
    try:
        summary = await import_ar_csv(
            runtime.sessions,
            runtime.outbox,
            source,
            chosen,
            publisher=publisher.key_id,
            first_line=first_line,
        )
    except CsvImportError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body"], "msg": str(exc), "type": "csv_header"}],
        ) from exc
    return _read(summary)


async def _source(
    request: Request,
) -> tuple[Callable[[], Iterator[str]], ArCsvMapping | None]:
    # The signature check has read the whole body already, so the text is decoded
    # once here; the import then streams it row by row, twice.
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("text/csv", "text/plain", "application/csv"):
        return _lines(await request.body()), None
    if kind == "multipart/form-data":
        async with request.form() as form:
            upload, text = form.get("file"), form.get("mapping")
            if not isinstance(upload, UploadFile):
                raise _unprocessable(["body", "file"], "a CSV file part is required")
            custom = _mapping(text) if isinstance(text, str) else None
            return _lines(await upload.read()), custom
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        f"content type {kind or 'none'!r}; send text/csv or multipart/form-data",
    )


def _lines(raw: bytes) -> Callable[[], Iterator[str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _unprocessable(
            ["body"], f"the file is not UTF-8 text (byte {exc.start})"
        ) from exc
    # newline="" hands CR LF to the csv module intact, as it requires.
    return lambda: io.StringIO(text, newline="")


def _preset(name: str | None, currency: str | None) -> ArCsvMapping:
    if name is None:
        raise _unprocessable(
            ["query", "mapping"], "name a preset, or send a mapping in the form"
        )
    try:
        return preset(name, currency=currency)
    except KeyError as exc:
        raise _unprocessable(["query", "mapping"], str(exc.args[0])) from exc


def _mapping(text: str) -> ArCsvMapping:
    try:
        return ArCsvMapping.model_validate(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        raise _unprocessable(["body", "mapping"], f"not JSON: {exc}") from exc
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["body", "mapping", *error["loc"]],
                    "msg": error["msg"],
                    "type": error["type"],
                }
                for error in exc.errors(include_url=False, include_input=False)
            ],
        ) from exc


def _unprocessable(loc: list[str], message: str) -> HTTPException:
    detail: list[dict[str, Any]] = [{"loc": loc, "msg": message, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _read(summary: ImportSummary) -> ImportRead:
    return ImportRead(
        rows=summary.rows,
        invoices=summary.invoices,
        payments=summary.payments,
        customers=summary.customers,
        disputes=summary.disputes,
        duplicates=summary.duplicates,
        rejected=[
            RejectedRowRead(line=r.line, reason=r.reason) for r in summary.rejected
        ],
    )
