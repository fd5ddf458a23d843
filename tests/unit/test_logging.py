"""Service logs are JSON lines on stdout naming the trace of the work they describe."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, Tracer

from arbor_shared.logging import configure_logging

# configure_logging sets these loggers' levels; other tests must not inherit them.
QUIETED = ("aiokafka", "uvicorn.access", "celpy")
logger = logging.getLogger("arbor_ingest.handlers")


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """Undo what configure_logging did to the process-wide loggers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIETED}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, quieted in levels.items():
        logging.getLogger(name).setLevel(quieted)


@pytest.fixture
def tracer() -> Tracer:
    # A provider of the test's own: the process-wide one can be set only once.
    return TracerProvider().get_tracer("tests")


def _configure_as_services_do() -> None:
    # Called inside the test: the handler keeps the stdout it finds, and capsys
    # gives each test phase a stream of its own.
    configure_logging("ingest", level="INFO", fmt="json")


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _ids(span: Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def test_line_inside_a_span_carries_the_span_trace_and_span_id_in_hex(
    capsys: pytest.CaptureFixture[str], tracer: Tracer
) -> None:
    _configure_as_services_do()
    with tracer.start_as_current_span("POST /v1/events") as span:
        logger.info("stored event %s of type %s", "evt-1", "InvoiceIssued")

    [line] = _lines(capsys)
    assert (line["trace_id"], line["span_id"]) == _ids(span)
    assert line["event"] == "stored event evt-1 of type InvoiceIssued"
    assert (line["level"], line["logger"], line["service"]) == (
        "info",
        "arbor_ingest.handlers",
        "ingest",
    )
    assert line["timestamp"].endswith("Z")


def test_line_of_a_child_span_names_the_child_within_the_same_trace(
    capsys: pytest.CaptureFixture[str], tracer: Tracer
) -> None:
    _configure_as_services_do()
    with tracer.start_as_current_span("consume billing.invoices.v1") as parent:
        with tracer.start_as_current_span("handle InvoiceIssued") as child:
            logger.info("applied event %s", "evt-1")
        logger.info("committed offset %d", 42)

    in_child, in_parent = _lines(capsys)
    assert (in_child["trace_id"], in_child["span_id"]) == _ids(child)
    assert (in_parent["trace_id"], in_parent["span_id"]) == _ids(parent)
    assert in_child["trace_id"] == in_parent["trace_id"]


def test_line_outside_any_span_is_logged_without_a_trace_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _configure_as_services_do()
    logger.info("relay started for %s", "billing.invoices.v1")

    [line] = _lines(capsys)
    assert line["event"] == "relay started for billing.invoices.v1"
    assert "trace_id" not in line
    assert "span_id" not in line


def test_exception_and_extra_fields_stay_on_the_one_json_line(
    capsys: pytest.CaptureFixture[str], tracer: Tracer
) -> None:
    _configure_as_services_do()
    coordinates = {"topic": "billing.invoices.v1", "partition": 2, "offset": 7}
    with tracer.start_as_current_span("handle InvoiceIssued") as span:
        try:
            raise KeyError("no tariff for inv-2")
        except KeyError:
            logger.exception("handler failed on %s", "evt-2", extra=coordinates)

    [line] = _lines(capsys)
    assert line["trace_id"] == _ids(span)[0]
    assert line["level"] == "error"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("KeyError: 'no tariff for inv-2'")
    assert {name: line[name] for name in coordinates} == coordinates
