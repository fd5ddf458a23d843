"""The domain's CPU per consumed event, without Kafka or PostgreSQL.

    uv run python -m bench.segmentation.domain [customers] [--batch N]

Replays the throughput backlog (``throughput.py``, one topic in date order) through
the consumer's own reaction to each event, batch by batch, as the service does once
it holds a batch's states: decode the stored states, react to every event, encode
the states written, learn the settlements. Only the reaction and the codec are
timed. On a shared machine the service's figure moves by more than most domain
changes are worth; this one, alternated between two trees, shows them.
"""

from __future__ import annotations

import argparse
import gc
import time
from datetime import UTC, datetime

import orjson

from arbor_segmentation.adapters.changes import Changes
from arbor_segmentation.adapters.tables import messaging
from arbor_segmentation.domain import codec, rules
from arbor_segmentation.domain.defaults import DEFAULT_COHORT, SEED_RULES
from arbor_segmentation.domain.membership import Membership
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_segmentation.handlers import Segmenter, _Pending
from arbor_segmentation.work import Work
from arbor_shared.clock import FixedClock
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.topics import TopicNames
from bench.segmentation.throughput import backlog, by_time

NOW = datetime(2026, 12, 4, 9, tzinfo=UTC)
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def pending(customers: int) -> list[_Pending]:
    """The backlog's events as the consumer queues them."""
    events = by_time(backlog(customers, 2))
    return [
        _Pending(e, Envelope.for_data(e, source="bench", time=NOW), NOW, TRACE)
        for e in events
    ]


class Replay:
    """The states, memberships and model a run of batches carries along."""

    def __init__(self) -> None:
        self.definition = rules.build(1, SEED_RULES, DEFAULT_COHORT)
        self.model = LatePaymentModel()
        # Only _react is called: the definition cache and move counter stay unused.
        self.segmenter = Segmenter(self.model, None, None)  # type: ignore[arg-type]
        self.outbox = Outbox(
            messaging.outbox,
            topics=TopicNames("bench"),
            source="bench",
            clock=FixedClock(NOW),
        )
        self.stored: dict[str, bytes] = {}
        self.memberships: dict[str, Membership] = {}

    def batch(self, batch: list[_Pending]) -> None:
        """One batch: load, react, store, learn, as the service does."""
        ids = {p.event.customer_id for p in batch}
        states = {
            i: codec.load(orjson.loads(self.stored[i]))
            for i in ids & self.stored.keys()
        }
        held = {i: self.memberships[i] for i in ids & self.memberships.keys()}
        work = Work(states, held, self.definition, Changes(self.outbox))
        for one in batch:
            self.segmenter._react(work, one)
        for customer_id, (state, _) in work.changes.states.items():
            self.stored[customer_id] = codec.dumps(state)
        self.memberships.update(work.memberships)
        for example in work.examples.values():
            self.model.learn(example.inputs, example.late)


def main(arguments: argparse.Namespace) -> None:
    events = pending(arguments.customers)
    replay = Replay()
    # As serve runs: the startup heap frozen, young objects collected less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    cpu = 0.0
    for start in range(0, len(events), arguments.batch):
        begun = time.process_time()
        replay.batch(events[start : start + arguments.batch])
        cpu += time.process_time() - begun
    print(f"{len(events)} events, {1e6 * cpu / len(events):.1f} us CPU/event (domain)")


if __name__ == "__main__":
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("customers", type=int, nargs="?", default=20_000)
    options.add_argument("--batch", type=int, default=500)
    main(options.parse_args())
