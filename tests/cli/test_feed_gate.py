"""The feed gate's rules, with hand-written backlog sources and clocks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from arbor_cli.backlog import Positions, outbox_backlog, unconsumed
from arbor_cli.feed_gate import BacklogSource, FeedGate, GateStatus, Progress
from arbor_cli.publisher import Pace

_P0, _P1 = TopicPartition("billing.invoices.v1", 0), TopicPartition("x", 1)


class ScriptedBacklog:
    """Answers from a script; the last answer repeats once the script runs out."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def records_behind(self) -> int:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class UnreachableBroker:
    async def records_behind(self) -> int:
        raise KafkaConnectionError("no broker")


def ticking(step: float = 1.0) -> Iterator[float]:
    now = 0.0
    while True:
        yield now
        now += step


def _gate(*sources: BacklogSource, limit: int = 100, stall: float = 5.0) -> FeedGate:
    clock = ticking()
    return FeedGate(
        sources,
        limit=limit,
        stall_seconds=stall,
        poll_seconds=0,
        clock=lambda: next(clock),
    )


def test_unconsumed_counts_from_the_commit_or_else_from_the_start() -> None:
    positions: list[Positions] = [{_P0: 7, _P1: None}, {_P0: 10}]

    behind = unconsumed(positions, starts={_P1: 2}, ends={_P0: 10, _P1: 6})

    assert behind == (10 - 7) + (6 - 2) + 0


def test_unconsumed_never_counts_a_commit_past_the_end_as_negative() -> None:
    assert unconsumed([{_P0: 12}], starts={}, ends={_P0: 10}) == 0


def test_outbox_backlog_is_read_from_ingest_gauge_and_absent_means_none() -> None:
    exposition = (
        "# HELP arbor_ingest_outbox_backlog_events Events committed...\n"
        "# TYPE arbor_ingest_outbox_backlog_events gauge\n"
        "arbor_ingest_outbox_backlog_events_created 1.7e9\n"
        "arbor_ingest_outbox_backlog_events 1234.0\n"
    )

    assert outbox_backlog(exposition) == 1234
    assert outbox_backlog("arbor_ingest_events_produced_total 5.0\n") == 0


def test_progress_stalls_only_after_no_new_low_for_the_whole_bound() -> None:
    progress = Progress(stall_seconds=10)

    assert not progress.stalled(500, now=0)
    assert not progress.stalled(600, now=6)
    assert not progress.stalled(499, now=9)
    assert not progress.stalled(550, now=18)
    assert progress.stalled(499, now=19)


async def test_gate_within_the_limit_lets_the_feed_on_without_a_pause() -> None:
    backlog = ScriptedBacklog(40, 60)
    gate = _gate(backlog, ScriptedBacklog(10), limit=100)

    await gate.wait_for_services()

    assert (gate.status.behind, gate.status.pauses, backlog.asked) == (50, 0, 1)


async def test_gate_waits_until_the_backlog_falls_to_the_limit() -> None:
    backlog = ScriptedBacklog(900, 700, 400, 100, 0)
    gate = _gate(backlog, limit=100)

    await gate.wait_for_services()

    assert backlog.asked == 4
    assert (gate.status.behind, gate.status.pauses, gate.status.gave_up) == (
        100,
        1,
        0,
    )
    assert gate.status.paused_since is None


async def test_gate_gives_up_when_the_backlog_stops_falling_and_says_so() -> None:
    backlog = ScriptedBacklog(900, 800, 800)
    gate = _gate(backlog, limit=100, stall=5)

    await gate.wait_for_services()

    assert (gate.status.behind, gate.status.gave_up) == (800, 1)
    assert "fed on 1 times when the backlog stopped falling" in gate.status.summary(
        now=100
    )


async def test_gate_that_cannot_measure_lets_the_feed_on() -> None:
    gate = _gate(ScriptedBacklog(5_000), UnreachableBroker(), limit=100)

    await gate.wait_for_services()

    assert (gate.status.behind, gate.status.pauses) == (None, 0)


def test_summary_says_the_feed_is_paused_and_how_far_behind() -> None:
    status = GateStatus(limit=2_000, behind=12_345)
    status.pause(now=100)

    line = status.summary(now=108)

    assert line.startswith("feed paused: 12,345 records behind (limit 2,000) for 8 s")
    assert "paused 1 times, 8 s in all" in line


def test_summary_after_a_pause_says_the_feed_runs_and_keeps_the_total() -> None:
    status = GateStatus(limit=2_000, behind=12_345)
    status.pause(now=100)
    status.behind = 1_500
    status.resume(now=130, stalled=False)

    line = status.summary(now=500)

    assert line == (
        "feed running: 1,500 records behind (limit 2,000); paused 1 times, 30 s in all"
    )


async def test_pace_behind_its_schedule_starts_again_instead_of_hurrying() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    pace = Pace(speed=86_400.0)
    await pace.until(start)
    assert pace.origin is not None

    pace.origin = (start, pace.origin[1] - 3600)
    await pace.until(start + timedelta(hours=6))

    assert pace.origin[0] == start + timedelta(hours=6)
