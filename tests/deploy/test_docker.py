"""The one image: built from the lock, from every workspace member, run as non-root.

No Docker daemon is at hand in CI, so this reads the Dockerfile instead of building
it; what it checks is what has broken builds before: a workspace member added to
pyproject.toml but not copied into the image.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def _workspace_members() -> list[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["uv"]["workspace"]["members"]
    return sorted(
        path.parent.relative_to(REPO_ROOT).as_posix()
        for pattern in patterns
        for path in REPO_ROOT.glob(f"{pattern}/pyproject.toml")
    )


def _instructions() -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _copied_sources() -> list[str]:
    return [
        line.split()[1]
        for line in _instructions()
        if line.startswith("COPY ") and "--from" not in line
    ]


def _context_includes(path: str) -> bool:
    """Whether .dockerignore lets ``path`` into the build context (last match wins)."""
    included = True
    for rule in DOCKERIGNORE.read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negated = rule.startswith("!")
        pattern = rule.removeprefix("!")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, f"{pattern}/*"):
            included = negated
    return included


def test_every_workspace_member_is_copied_manifest_first() -> None:
    copied = _copied_sources()
    members = _workspace_members()

    assert members
    for member in members:
        assert f"{member}/pyproject.toml" in copied, member
        assert any(member.startswith(source.rstrip("/")) for source in copied), member


def test_every_workspace_member_reaches_the_build_context() -> None:
    for member in _workspace_members():
        assert _context_includes(f"{member}/pyproject.toml"), member
        assert _context_includes(f"{member}/src/pkg/__init__.py"), member
    assert _context_includes("uv.lock")
    assert not _context_includes(".venv/bin/python")


def test_dependencies_come_from_the_lock_without_dev_tools() -> None:
    syncs = [line for line in _instructions() if "uv sync" in line]

    assert syncs
    assert all("--frozen" in line and "--no-dev" in line for line in syncs)


def test_image_runs_as_a_numeric_non_root_user() -> None:
    instructions = _instructions()
    runtime = instructions[
        max(i for i, x in enumerate(instructions) if x.startswith("FROM")) :
    ]
    (user,) = [line.split()[1] for line in runtime if line.startswith("USER ")]
    args = dict(
        line.split()[1].split("=", 1) for line in runtime if line.startswith("ARG ")
    )
    uid = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], user).split(":")[0]

    assert uid.isdigit()
    assert int(uid) >= 10000
