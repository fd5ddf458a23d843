"""The relay places keyed records where aiokafka's default partitioner would."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from arbor_shared.kafka.relay import KeyPlacer


@given(
    keys=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30),
    count=st.integers(1, 64),
)
def test_remembered_hashes_choose_the_default_partitioners_partition(
    keys: list[bytes], count: int
) -> None:
    placer, default = KeyPlacer(), DefaultPartitioner()
    partitions = list(range(count))

    # Twice: the second round is answered from the remembered hashes.
    for _round in range(2):
        for key in keys:
            chosen = placer.partition(key, partitions)
            assert chosen == default(key, partitions, partitions)


def test_a_key_keeps_its_partition_when_the_memory_is_cleared() -> None:
    placer = KeyPlacer()
    partitions = list(range(6))
    first = placer.partition(b"cus-00042", partitions)

    for n in range(100_001):
        placer.partition(f"cus-{n}".encode(), partitions)

    assert placer.partition(b"cus-00042", partitions) == first
