"""JSON Schemas of the event catalogue, generated from the models and committed.

``python -m arbor_shared.events.schemas DIR`` rewrites one schema per event type. The
test suite fails when the committed files differ from the models (a contract change
must be deliberate) and when a stored sample of any earlier version no longer parses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from arbor_shared.events import EVENT_TYPES


def schema_of(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type's data, with its topic and version."""
    model = EVENT_TYPES[event_type]
    schema = model.model_json_schema(mode="serialization")
    schema["$id"] = f"urn:arbor:event:{event_type}:v{model.schema_version}"
    schema["x-topic"] = model.topic
    schema["x-schema-version"] = model.schema_version
    return schema


def render(event_type: str) -> str:
    return json.dumps(schema_of(event_type), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path) -> list[Path]:
    """Write every schema under ``folder``; return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in sorted(EVENT_TYPES):
        path = folder / f"{event_type}.v{EVENT_TYPES[event_type].schema_version}.json"
        path.write_text(render(event_type))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_all(Path(sys.argv[1])):
        sys.stdout.write(f"{written_path}\n")
