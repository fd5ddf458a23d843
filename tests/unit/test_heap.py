"""The start hook that freezes the startup heap and spaces young collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import cast

import pytest

from arbor_shared.heap import frozen_after_start
from arbor_shared.runtime import ServiceRuntime

NO_RUNTIME = cast(ServiceRuntime, None)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
async def test_the_hook_freezes_what_exists_and_spaces_young_collections() -> None:
    gc.unfreeze()
    _young, older, oldest = gc.get_threshold()

    await frozen_after_start(young_collection_every=50_000)(NO_RUNTIME)

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (50_000, older, oldest)


@pytest.mark.usefixtures("restored_collector")
async def test_without_a_threshold_the_collector_keeps_its_own() -> None:
    before = gc.get_threshold()

    await frozen_after_start()(NO_RUNTIME)

    assert gc.get_threshold() == before
