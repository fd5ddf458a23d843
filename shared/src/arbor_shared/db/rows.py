"""A batch's rows as one statement parameter.

A statement that writes thousands of rows takes them as one JSON document, which
PostgreSQL turns back into rows (``json_to_recordset``, ``json_array_elements``).
Passed as an array per column instead, every value costs asyncpg a type check
against an abstract base class, the largest part of a batch's driver time. The
statement's text does not depend on the batch size, so it stays prepared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson


def as_json(rows: Sequence[Any]) -> str:
    """``rows`` (dicts for a recordset, tuples for arrays) as one JSON document."""
    # Dates and instants are written in ISO 8601 with their offsets, which
    # PostgreSQL reads back as the same date or timestamptz.
    return orjson.dumps(rows).decode()
