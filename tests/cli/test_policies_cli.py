"""``arbor policies simulate``: a back-test of a policy, answered by dunning."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from arbor_dunning.adapters.policy_document import PolicyDocument
from arbor_dunning.bootstrap import create_app
from arbor_dunning.domain.policy import default_policy
from tests.cli.harness import arbor, printed_json, said, serving
from tests.conftest import Namespace
from tests.dunning.conftest import dunning_settings

HEADER = (
    "countryCode,customerID,PaperlessDate,invoiceNumber,InvoiceDate,DueDate,"
    "InvoiceAmount,Disputed,SettledDate,PaperlessBill,DaysToSettle,DaysLate"
)
# From the IBM sample: due Monday 25 February 2013, settled six days late.
LATE_PAYER = "406,8976-AMJEO,3/3/2012,0007900770,1/26/2013,2/25/2013,61.74,Yes,3/3/2013"


@pytest.fixture
async def dunning(namespace: Namespace) -> AsyncIterator[list[str]]:
    """Dunning's HTTP API on a loopback port; the options that reach it."""
    # A back-test reads nothing stored and sends nothing, so the runtime (consumers,
    # scheduler, relay) is not started, as in dunning's own API tests.
    app = create_app(dunning_settings(namespace))
    token = namespace.issuer.mint("ops-1", roles=("operator",))
    async with serving(app) as url:
        yield ["--url", url, "--token", token]
    await app.state.runtime.engine.dispose()


def _request(tmp_path: Path, csv_lines: list[str]) -> str:
    policy = PolicyDocument.from_policy(default_policy())
    body: dict[str, Any] = {
        "policy": policy.model_dump(mode="json"),
        "csv": "\n".join([HEADER, *csv_lines]),
    }
    path = tmp_path / "simulation.json"
    path.write_text(json.dumps(body))
    return str(path)


async def test_simulation_prints_the_actions_the_default_ladder_would_take(
    dunning: list[str], tmp_path: Path
) -> None:
    result = await arbor(
        "policies",
        "simulate",
        _request(tmp_path, [LATE_PAYER + ",Electronic,36,6"]),
        *dunning,
    )

    body = printed_json(result)
    assert (body["invoices"], body["contacted_invoices"]) == (1, 1)
    assert [(a["step"], a["send_at"][:10]) for a in body["actions"]] == [
        ("courtesy", "2013-02-22"),
        ("due_today", "2013-02-25"),
    ]
    assert body["actions_by_step"] == {"courtesy": 1, "due_today": 1}
    assert body["truncated"] is False


async def test_simulation_of_a_malformed_csv_exits_1_naming_the_line(
    dunning: list[str], tmp_path: Path
) -> None:
    impossible_date = "406,8976-AMJEO,3/3/2012,0007900770,1/26/2013,13/45/2013,61.74"

    result = await arbor(
        "policies", "simulate", _request(tmp_path, [impossible_date]), *dunning
    )

    assert result.exit_code == 1
    assert said(result).startswith("422 ")
    assert "CSV line 2: time data '13/45/2013'" in said(result)
