"""The ``arbor`` command tree, ``token mint``, and inputs refused before any request."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from arbor_shared.auth import TokenVerifier
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer
from tests.cli.harness import arbor, said

# A command's name opens its row of the help panel; wrapped descriptions are indented.
_LISTED = re.compile(r"^│ (\S+)\s{2,}", re.MULTILINE)


@pytest.fixture
def nowhere() -> Iterator[str]:
    """A loopback URL that refuses connections: bound, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


def _listed(help_text: str) -> list[str]:
    commands = help_text.partition("Commands")[2]
    return _LISTED.findall(commands)


async def test_help_lists_every_command_group() -> None:
    result = await arbor("--help")

    assert result.exit_code == 0, said(result)
    assert sorted(_listed(result.stdout)) == [
        "cohorts",
        "dead-letters",
        "import",
        "kpis",
        "policies",
        "simulate",
        "token",
    ]


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        ("import", ["ar-csv"]),
        ("dead-letters", ["list", "redrive"]),
        ("cohorts", ["activate", "create", "preview"]),
        ("policies", ["simulate"]),
        ("kpis", ["rebuild", "show"]),
        ("token", ["mint"]),
    ],
)
async def test_group_help_lists_its_commands(group: str, commands: list[str]) -> None:
    result = await arbor(group, "--help")

    assert result.exit_code == 0, said(result)
    assert sorted(_listed(result.stdout)) == commands


async def test_minted_token_verifies_against_the_issuer_jwks(tmp_path: Path) -> None:
    # The services already trust this folder's JWKS: minting must reuse its key.
    issuer = LocalIssuer(tmp_path)
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url)

    result = await arbor(
        "token",
        "mint",
        "ops-7",
        "--role",
        "operator",
        "--role",
        "auditor",
        "--hours",
        "2",
        "--issuer-dir",
        str(tmp_path),
    )

    assert result.exit_code == 0, said(result)
    token = result.stdout.strip()
    principal = await verifier.verify(token)
    assert principal.subject == "ops-7"
    assert principal.roles == {"operator", "auditor"}
    assert (principal.claims["iss"], principal.claims["aud"]) == (ISSUER, AUDIENCE)
    lifetime = principal.claims["exp"] - principal.claims["iat"]
    assert lifetime == timedelta(hours=2).total_seconds()
    assert jwt.get_unverified_header(token)["kid"] == issuer.kid


async def test_minting_with_a_lifetime_of_zero_hours_is_refused(
    tmp_path: Path,
) -> None:
    result = await arbor(
        "token", "mint", "ops-7", "--hours", "0", "--issuer-dir", str(tmp_path)
    )

    assert result.exit_code == 2
    assert "Invalid value for '--hours'" in said(result)
    assert result.stdout == ""


async def test_operations_command_without_a_token_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nowhere: str
) -> None:
    # The token file is looked up relative to the working directory.
    monkeypatch.chdir(tmp_path)

    result = await arbor(
        "cohorts", "activate", "2", "--url", nowhere, env={"ARBOR_TOKEN": None}
    )

    assert result.exit_code == 2
    assert "pass --token, set ARBOR_TOKEN or run `make run` first" in said(result)


async def test_unreadable_definition_file_is_refused_naming_the_file(
    tmp_path: Path, nowhere: str
) -> None:
    broken = tmp_path / "definition.json"
    broken.write_text('{"rules": [')
    missing = tmp_path / "nowhere.json"

    bad_json = await arbor(
        "cohorts", "preview", str(broken), "--url", nowhere, "--token", "t"
    )
    absent = await arbor(
        "policies", "simulate", str(missing), "--url", nowhere, "--token", "t"
    )

    assert (bad_json.exit_code, absent.exit_code) == (2, 2)
    assert f"{broken}: Expecting value" in said(bad_json)
    assert f"{missing}: [Errno 2] No such file or directory" in said(absent)


async def test_kpis_without_a_currency_are_refused_before_asking_the_service(
    nowhere: str,
) -> None:
    result = await arbor(
        "kpis", "show", "--as-of", "2024-03-15", "--url", nowhere, "--token", "t"
    )

    assert result.exit_code == 2
    assert "Missing option '--currency'" in said(result)


async def test_unreachable_service_exits_1_naming_the_url(nowhere: str) -> None:
    result = await arbor(
        "kpis",
        "show",
        "--as-of",
        "2024-03-15",
        "--currency",
        "EUR",
        "--url",
        nowhere,
        "--token",
        "t",
    )

    assert result.exit_code == 1
    assert said(result) == f"cannot reach {nowhere}: [Errno 111] Connection refused"
