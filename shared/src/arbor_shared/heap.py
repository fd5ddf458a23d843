"""Keeping the cyclic garbage collector off what a service builds at start.

Everything that exists once a service has started (frameworks, routes, schemas,
validators, the pool, compiled rules) lives as long as the process. Left to the
collector, it is walked again in every full collection, which request and batch
garbage triggers every few seconds; frozen, a full collection walks only what was
allocated since.
"""

from __future__ import annotations

import gc

from arbor_shared.http import Hook
from arbor_shared.runtime import ServiceRuntime


def frozen_after_start(*, young_collection_every: int | None = None) -> Hook:
    """A start hook that freezes the startup heap.

    With ``young_collection_every``, the youngest generation is collected after that
    many new allocations instead of CPython's 700: a service whose requests or
    batches allocate hundreds of thousands of objects otherwise spends a pass over
    them every few hundred.
    """

    async def freeze(_runtime: ServiceRuntime) -> None:
        gc.collect()
        gc.freeze()
        if young_collection_every is not None:
            _young, older, oldest = gc.get_threshold()
            gc.set_threshold(young_collection_every, older, oldest)

    return freeze
