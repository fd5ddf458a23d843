"""Schemathesis against the portal running in-process (uvicorn on a loopback port).

Every response must be documented, match its schema and never be a 5xx, and no
object customer A reads may reach customer B: B asking for it gets 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.engine.recorder import ScenarioRecorder
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    object_level_authorization,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from arbor_portal.bootstrap import create_app
from arbor_shared.local_issuer import LocalIssuer
from tests.infra import KafkaHandle, PostgresHandle
from tests.portal.served import Served, offline_settings, serve

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

OWNER, PEER = "customer-a", "customer-b"
"""The two identities of the Web Fuzzing Commons document the peer schema loads."""


@pytest.fixture(scope="module")
def served(
    kafka: KafkaHandle, postgres: PostgresHandle, issuer: LocalIssuer
) -> Iterator[Served]:
    with serve(kafka, postgres, issuer) as running:
        yield running


def _openapi() -> dict[str, Any]:
    return create_app(offline_settings()).openapi()


schema = schemathesis.openapi.from_dict(_openapi())

FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ
def test_customer_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case[Any], served: Served
) -> None:
    case.call_and_validate(
        base_url=served.base_url,
        headers={"Authorization": f"Bearer {served.owner_token}"},
        checks=[*CHECKS, PeerProbes(served.peer_token).replay_as_peer],
    )


@schema.include(path_regex="^/v1/ops").parametrize()
@FUZZ
def test_operations_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case[Any], served: Served
) -> None:
    case.call_and_validate(
        base_url=served.base_url,
        headers={"Authorization": f"Bearer {served.operator_token}"},
        checks=CHECKS,
    )


def _bearer(name: str, token: str) -> dict[str, object]:
    header = {"name": "Authorization", "value": f"Bearer {token}"}
    return {"name": name, "fixedHeaders": [header]}


@pytest.fixture(scope="module")
def peer_schema(
    served: Served, tmp_path_factory: pytest.TempPathFactory
) -> schemathesis.BaseSchema:
    """The schema with both customers' tokens: requests go as A, and B is A's peer."""
    # The Web Fuzzing Commons document with `peers` is how Schemathesis's
    # object-level authorization check learns of a second identity.
    document = tmp_path_factory.mktemp("wfc") / "auth.json"
    users = [_bearer(OWNER, served.owner_token), _bearer(PEER, served.peer_token)]
    document.write_text(json.dumps({"auth": users}))
    wfc = {"path": str(document), "user": OWNER, "peers": [OWNER, PEER]}
    config = schemathesis.Config.from_dict({"auth": {"wfc": wfc}})
    return schemathesis.openapi.from_dict(_openapi(), config=config)


def _reads_one_object(case: schemathesis.Case[Any]) -> bool:
    return case.method == "GET" and bool(case.path_parameters)


@dataclass
class PeerProbes:
    """B's answers for A's objects: our replays and Schemathesis's own probes.

    Schemathesis's check fails only when B gets an equivalent body; the portal
    promises more (P8): another customer's id answers 404, like a missing one.
    """

    peer_token: str
    replayed: set[str] = field(default_factory=set)
    by_schemathesis: dict[str, set[int]] = field(default_factory=dict)

    def replay_as_peer(
        self,
        ctx: schemathesis.CheckContext,
        response: schemathesis.Response,
        case: schemathesis.Case[Any],
    ) -> bool | None:
        """A check: B asking for what A has just read gets 404."""
        if not _reads_one_object(case) or not 200 <= response.status_code < 300:
            return None
        sent_to = response.request.url
        assert sent_to is not None
        replay = httpx.get(
            sent_to, headers={"Authorization": f"Bearer {self.peer_token}"}
        )
        assert replay.status_code == 404, (
            f"{PEER} got {replay.status_code} for {OWNER}'s {case.formatted_path}"
        )
        self.replayed.add(case.operation.label)
        return True

    def collect(self, recorder: ScenarioRecorder) -> None:
        """Keep what Schemathesis's check was answered when it asked as B."""
        for sent in recorder.find_all_cases():
            answer = recorder.find_response(case_id=sent.id)
            if sent.auth_identity == PEER and _reads_one_object(sent) and answer:
                label = sent.operation.label
                self.by_schemathesis.setdefault(label, set()).add(answer.status_code)


# The links reach A's invoice from A's list; a walk that never asks for it as B has
# not tested isolation at all. The walk is derandomized so that reaching it is a
# property of the code, not of luck: if a change to the API stops it, raise the
# example count.
ALWAYS_PROBED = "GET /v1/invoices/{invoice_id}"
WALK = settings(
    max_examples=30,
    stateful_step_count=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_stateful_scenarios_never_fail_and_keep_customers_apart(
    served: Served, peer_schema: schemathesis.BaseSchema
) -> None:
    """Chains of calls linked by ids; B asks for every object of A's they read."""
    probes = PeerProbes(served.peer_token)
    checks = [*CHECKS, object_level_authorization, probes.replay_as_peer]
    # Both customers get 403 from the operations API; its routes only dilute the walk.
    customer_api = peer_schema.exclude(path_regex="^/v1/ops")

    class PortalMachine(customer_api.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, object]:
            return {"base_url": served.base_url}

        def validate_response(
            self,
            response: schemathesis.Response,
            case: schemathesis.Case[Any],
            additional_checks: object = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response, checks=checks, transport_kwargs=kwargs, recorder=self.recorder
            )

        def teardown(self) -> None:
            probes.collect(self.recorder)

    PortalMachine.run(settings=WALK)

    assert ALWAYS_PROBED in probes.replayed, probes.replayed
    assert ALWAYS_PROBED in probes.by_schemathesis, "Schemathesis never asked as B"
    answers = probes.by_schemathesis.values()
    assert all(codes == {404} for codes in answers), probes.by_schemathesis
