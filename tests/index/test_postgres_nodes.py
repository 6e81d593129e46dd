"""Several nodes in one PostgreSQL index: node-qualified file references, node-scoped drops."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from logmaster.index.base import Batch, IndexedEvent, SearchRequest
from logmaster.index.fields import split_event
from logmaster.index.postgres import PostgresIndex
from logmaster.index.query import parse_query
from logmaster.index.sessions import Timeouts, session_ops

pytestmark = pytest.mark.postgres

DAY = dt.date(2026, 11, 28)
NAT = {
    "event.action": "translation-built",
    "network.transport": "tcp",
    "source.ip": "192.168.1.10",
    "source.port": 5000,
    "source.nat.ip": "203.0.113.1",
    "source.nat.port": 40000,
    "destination.ip": "198.51.100.1",
    "destination.port": 443,
}


@pytest.fixture
def index(pg_url: str) -> Iterator[PostgresIndex]:
    backend = PostgresIndex(pg_url)
    yield backend
    backend.close()


def _write(index: PostgresIndex, node: str) -> str:
    """One NAT event of device gw, day DAY, from ``node``'s archive; its file reference."""
    ref = f"{node}:gw/{DAY:%Y/%m/%d}.log"
    event = {
        "@timestamp": dt.datetime.combine(DAY, dt.time(10), tzinfo=dt.UTC),
        "observer.name": "gw",
        "log.file.path": ref,
        "log.offset": 0,
        "message": f"from {node}",
        **NAT,
    }
    row, extra = split_event(event)
    batch = Batch()
    batch.events.append(IndexedEvent(DAY, row, extra))
    batch.sessions.extend(session_ops(event, ref, 0, DAY, Timeouts()))
    batch.files[ref] = (DAY, 100, 1, 0)
    index.write(batch)
    return ref


def test_two_nodes_same_path_do_not_collide(index: PostgresIndex) -> None:
    """The same archive path on two nodes: two checkpoints, two events, two sessions."""
    ref_a, ref_b = _write(index, "a"), _write(index, "b")
    assert index.checkpoint(ref_a, DAY) == 100 and index.checkpoint(ref_b, DAY) == 100
    assert index.checkpoint(f"gw/{DAY:%Y/%m/%d}.log", DAY) == 0
    whole_day = (
        dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC),
        dt.datetime.combine(DAY, dt.time(23), tzinfo=dt.UTC),
    )
    page = index.search(SearchRequest(parse_query(""), *whole_day, 10))
    assert sorted(h.event["log.file.path"] for h in page.hits) == [ref_a, ref_b]
    assert set(index.parse_stats(DAY)) == {ref_a, ref_b}


def test_drop_node_days_keeps_the_other_nodes(index: PostgresIndex) -> None:
    """Reindex/retention on node a forgets a's rows of the day only; b's stay, as does the day."""
    ref_a, ref_b = _write(index, "a"), _write(index, "b")
    index.drop_node_days(DAY, DAY, "a")
    assert index.checkpoint(ref_a, DAY) == 0 and index.checkpoint(ref_b, DAY) == 100
    assert index.days() == [DAY]
    whole_day = (
        dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC),
        dt.datetime.combine(DAY, dt.time(23), tzinfo=dt.UTC),
    )
    page = index.search(SearchRequest(parse_query(""), *whole_day, 10))
    assert [h.event["message"] for h in page.hits] == ["from b"]
    assert set(index.parse_stats(DAY)) == {ref_b}
