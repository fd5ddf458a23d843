"""``arbor cohorts``: preview, create and activate against segmentation over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from arbor_segmentation.bootstrap import MIGRATIONS, create_app
from arbor_segmentation.config import SegmentationSettings
from arbor_shared import topics
from arbor_shared.events import EventData
from tests.cli.harness import arbor, printed_json, said, serving
from tests.conftest import Namespace
from tests.segmentation.conftest import customer
from tests.segmentation.test_operations_api import CARD_FIRST
from tests.support import (
    encode,
    migrate,
    produce,
    read_topic,
    running,
    service_settings,
)


@dataclass
class Served:
    namespace: Namespace
    options: list[str]

    async def send(self, *events: EventData) -> None:
        for event in events:
            topic = f"{self.namespace.name}.{event.topic}"
            await produce(self.namespace.kafka.bootstrap, topic, [encode(event)])

    async def moves(self, count: int) -> list[dict[str, Any]]:
        topic = f"{self.namespace.name}.{topics.COHORTS}"
        records = await read_topic(self.namespace.kafka.bootstrap, topic, count)
        return [orjson.loads(r.value) for r in records]


@pytest.fixture
async def segmentation(namespace: Namespace) -> AsyncIterator[Served]:
    """Segmentation on a loopback port with four scored customers."""
    overrides = {"timer_poll_seconds": 0.2, "rescore_poll_seconds": 0.2}
    settings = service_settings(
        SegmentationSettings, namespace, "segmentation", **overrides
    )
    await migrate(MIGRATIONS, settings)
    app = create_app(settings)
    token = namespace.issuer.mint("ops-1", roles=("operator",))
    async with running(app), serving(app) as url:
        served = Served(namespace, ["--url", url, "--token", token])
        await served.send(
            customer("cus-1", payment_method="card"),
            customer("cus-2", payment_method="card", country="FR", time_zone="UTC"),
            customer("cus-3", payment_method="direct_debit"),
            customer("cus-4", country="FR", time_zone="UTC"),
        )
        await served.moves(4)
        yield served


def _file(folder: Path, name: str, document: dict[str, Any]) -> str:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document))
    return str(path)


async def test_definition_previewed_created_and_activated_moves_whom_preview_said(
    segmentation: Served, tmp_path: Path
) -> None:
    definition, options = (
        _file(tmp_path, "card-first", CARD_FIRST),
        segmentation.options,
    )

    previewed = await arbor("cohorts", "preview", definition, *options)
    created = await arbor("cohorts", "create", definition, *options)
    version = printed_json(created)["version"]
    activation = printed_json(
        await arbor("cohorts", "activate", str(version), *options)
    )
    moves = await segmentation.moves(4 + 3)

    preview = printed_json(previewed)
    flows = {(f["from_cohort"], f["to_cohort"]): f["count"] for f in preview["flows"]}
    assert preview["moving"] == 3
    assert flows[("standard", "card-payers")] == 2
    assert flows[("direct-debit", "german")] == 1
    assert printed_json(created)["status"] == "draft"
    assert (activation["definition_version"], activation["total"]) == (version, 4)
    rescored = {
        (m["customer_id"], m["to_cohort"])
        for m in moves
        if m["definition_version"] == version
    }
    assert rescored == {
        ("cus-1", "card-payers"),
        ("cus-2", "card-payers"),
        ("cus-3", "german"),
    }


async def test_refused_definition_exits_1_quoting_the_rule_and_the_pattern(
    segmentation: Served, tmp_path: Path
) -> None:
    typo = {
        "default_cohort": "standard",
        "rules": [{"name": "typo", "priority": 1, "expression": "on_time_rat_90 < 1"}],
    }
    misnamed = CARD_FIRST | {"default_cohort": "Standard Customers"}

    previewed = await arbor(
        "cohorts", "preview", _file(tmp_path, "typo", typo), *segmentation.options
    )
    created = await arbor(
        "cohorts",
        "create",
        _file(tmp_path, "misnamed", misnamed),
        *segmentation.options,
    )

    assert (previewed.exit_code, created.exit_code) == (1, 1)
    assert said(previewed).startswith("422 ")
    assert "unknown feature on_time_rat_90" in said(previewed)
    assert said(created).startswith("422 ")
    assert "Standard Customers" in said(created)
    # Printed as Rich markup, the bracketed character classes would vanish.
    assert "String should match pattern '^[a-z0-9][a-z0-9_" in said(created)


async def test_activating_a_version_that_does_not_exist_exits_1_naming_it(
    segmentation: Served,
) -> None:
    result = await arbor("cohorts", "activate", "99", *segmentation.options)

    assert result.exit_code == 1
    assert said(result) == '404 {"detail":"no cohort definition version 99"}'
