"""Authentication and function-level authorization of the portal (OWASP API2, API5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from arbor_shared.local_issuer import AUDIENCE, ISSUER
from tests.portal.conftest import Portal


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(subject: str) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": now,
        "exp": now + 600,
        "roles": [],
    }


def _unsigned(subject: str, kid: str) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(_claims(subject)).encode())}."


def _hs256_with_public_key(portal: Portal, subject: str) -> str:
    # The algorithm-confusion attack: HMAC keyed with the issuer's public key, which
    # a verifier that trusts the header's "alg" would accept.
    jwks = json.loads(Path(portal.issuer.jwks_path).read_text())
    public = jwt.algorithms.RSAAlgorithm.from_jwk(jwks["keys"][0])
    assert isinstance(public, rsa.RSAPublicKey)
    secret = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": portal.issuer.kid}
    signing_input = (
        f"{_b64(json.dumps(header).encode())}."
        f"{_b64(json.dumps(_claims(subject)).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _unknown_key(subject: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        _claims(subject), key, algorithm="RS256", headers={"kid": "not-our-key"}
    )


def _signed(portal: Portal, claims: dict[str, object]) -> str:
    """``claims`` signed with the issuer's own key, as only the issuer could."""
    pem = (portal.issuer.folder / "issuer-key.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return jwt.encode(
        claims, key, algorithm="RS256", headers={"kid": portal.issuer.kid}
    )


def _signed_without(portal: Portal, subject: str, claim: str) -> str:
    return _signed(portal, {k: v for k, v in _claims(subject).items() if k != claim})


REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")


def _forged_tokens(portal: Portal, subject: str) -> dict[str, str]:
    issuer = portal.issuer
    valid = issuer.mint(subject)
    head, body, signature = valid.split(".")
    return {
        "expired": issuer.mint(subject, lifetime=timedelta(minutes=-5)),
        "wrong_audience": issuer.mint(subject, audience="someone-else"),
        "wrong_issuer": issuer.mint(subject, issuer="https://evil.example"),
        "alg_none": _unsigned(subject, issuer.kid),
        "unknown_kid": _unknown_key(subject),
        "hs256_with_rsa_public_key": _hs256_with_public_key(portal, subject),
        "tampered_signature": f"{head}.{body}.{signature[::-1]}",
        "garbage": "not-a-token",
    } | {
        f"missing_{claim}": _signed_without(portal, subject, claim)
        for claim in REQUIRED_CLAIMS
    }


TOKEN_CASES = [
    "expired",
    "wrong_audience",
    "wrong_issuer",
    "alg_none",
    "unknown_kid",
    "hs256_with_rsa_public_key",
    "tampered_signature",
    "garbage",
    *(f"missing_{claim}" for claim in REQUIRED_CLAIMS),
]


@pytest.mark.parametrize("case", TOKEN_CASES)
async def test_bad_tokens_are_rejected_with_401(portal: Portal, case: str) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    token = _forged_tokens(portal, alice.subject)[case]

    response = await portal.client.get(
        f"/v1/invoices/{invoice_id}", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_token_signed_like_the_missing_claim_cases_is_accepted(
    portal: Portal,
) -> None:
    # The control for the missing_* cases: with every claim present, the same
    # hand-signed token passes, so a refusal above is the missing claim's doing.
    alice = await portal.customer()
    token = _signed(portal, _claims(alice.subject))

    response = await portal.client.get(
        "/v1/invoices", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200, response.text


async def test_the_same_request_with_a_valid_token_succeeds(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()

    response = await alice.get(f"/v1/invoices/{invoice_id}")

    assert response.status_code == 200


async def test_missing_token_is_rejected_with_401(portal: Portal) -> None:
    response = await portal.client.get("/v1/invoices")

    assert response.status_code == 401


async def test_valid_token_of_an_unlinked_subject_gets_403(portal: Portal) -> None:
    response = await portal.client.get(
        "/v1/invoices", headers=portal.auth("idp|nobody-linked-me")
    )

    assert response.status_code == 403
    assert "not linked" in response.json()["detail"]


async def test_customer_id_claim_in_the_token_is_not_trusted(portal: Portal) -> None:
    alice = await portal.customer()
    await alice.invoice()
    mallory = await portal.customer()
    token = portal.issuer.mint(
        mallory.subject, extra={"customer_id": alice.customer_id}
    )

    response = await portal.client.get(
        "/v1/invoices", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    assert response.json()["items"] == []


OPS_ROUTES = [
    ("POST", "/v1/ops/identities", {"subject": "x", "customer_id": "cus-x"}),
    ("GET", "/v1/ops/threads", None),
    ("POST", "/v1/ops/threads/thr_any/replies", {"body": "hello"}),
    ("GET", "/v1/ops/dead-letters?topic=billing.ledger.v1", None),
    (
        "POST",
        "/v1/ops/dead-letters:redrive",
        {"topic": "billing.ledger.v1", "offsets": ["0:1"]},
    ),
]


async def test_every_operations_route_is_listed_here(portal: Portal) -> None:
    declared = {
        (method.upper(), path)
        for path, operations in portal.app.openapi()["paths"].items()
        if path.startswith("/v1/ops")
        for method in operations
    }
    listed = {
        (m, p.replace("thr_any", "{thread_id}").partition("?")[0])
        for m, p, _ in OPS_ROUTES
    }

    assert declared == listed


@pytest.mark.parametrize(("method", "path", "body"), OPS_ROUTES)
async def test_operations_routes_refuse_customer_tokens(
    portal: Portal, method: str, path: str, body: object
) -> None:
    alice = await portal.customer()

    response = await portal.client.request(
        method, path, json=body, headers=alice.headers
    )

    assert response.status_code == 403


async def test_relinking_a_subject_to_another_customer_is_refused(
    portal: Portal,
) -> None:
    alice = await portal.customer()

    response = await portal.client.post(
        "/v1/ops/identities",
        json={"subject": alice.subject, "customer_id": "cus-someone-else"},
        headers=portal.auth("ops-1", roles=("operator",)),
    )

    assert response.status_code == 409
    assert (await alice.get("/v1/invoices")).status_code == 200
