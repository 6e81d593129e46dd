"""SQLite full-text plans: common and rare words give the same pages; day files are skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from logmaster.index import sqlite as backend
from logmaster.index.base import Batch, IndexedEvent, SearchRequest
from logmaster.index.fields import split_event
from logmaster.index.query import parse_query
from logmaster.index.sqlite import SqliteIndex

T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def fill(index: SqliteIndex, days: int = 3, per_day: int = 200) -> None:
    for d in range(days):
        batch = Batch()
        day = (T0 + dt.timedelta(days=d)).date()
        for n in range(per_day):
            ts = T0 + dt.timedelta(days=d, seconds=n * 400)
            words = "common" if n % 2 else "other"
            if n % 50 == 1:
                words += " rare"
            row, extra = split_event(
                {
                    "@timestamp": ts,
                    "event.created": ts,
                    "observer.name": f"gw{n % 3}",
                    "message": f"{words} line {d}-{n}",
                    "log.file.path": f"gw/{day}.log",
                    "log.offset": n,
                }
            )
            batch.events.append(IndexedEvent(day, row, extra))
        index.write(batch)


def pages(index: SqliteIndex, query: str) -> list[list[str]]:
    out, cursor = [], None
    while True:
        page = index.search(
            SearchRequest(parse_query(query), T0, T0 + dt.timedelta(days=4), 37, cursor)
        )
        out.append([h.event["message"] for h in page.hits])
        cursor = page.cursor
        if cursor is None:
            return out


@pytest.mark.parametrize("query", ["common", "rare", "common AND rare", "common OR line"])
def test_word_plans_give_identical_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    """Looking a word up row by row or collecting its matches returns the same pages."""
    index = SqliteIndex(tmp_path / "index")
    fill(index)
    collected = pages(index, query)
    monkeypatch.setattr(backend, "COMMON_WORD", 5)
    probed = pages(index, query)
    assert probed == collected
    assert sum(len(p) for p in collected) > 0
    index.close()


def test_full_page_skips_older_day_files(tmp_path: Path) -> None:
    """Once a page is full of newer events, older day files are not queried at all."""
    index = SqliteIndex(tmp_path / "index")
    fill(index)
    asked: list[dt.date] = []
    real = index._where

    def spy(request: SearchRequest, conn: object = None) -> tuple[str, list[object]]:
        asked.extend(d for (d, _shard), c in index._days.items() if c is conn)
        return real(request, conn)  # type: ignore[arg-type]

    index._where = spy  # type: ignore[method-assign]
    page = index.search(SearchRequest(parse_query("line"), T0, T0 + dt.timedelta(days=4), 10))
    assert len(page.hits) == 10
    assert asked and min(asked) > T0.date()  # the first day file was never searched
    index.close()


def test_common_word_is_a_membership_test_not_a_fetch_of_every_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word in most events must not make SQLite fetch all of them by id and sort them."""
    index = SqliteIndex(tmp_path / "index")
    fill(index)
    monkeypatch.setattr(backend, "COMMON_WORD", 5)  # "common" is in 100 events a day
    request = SearchRequest(parse_query("common"), T0, T0 + dt.timedelta(days=4), 10)
    (_, conn), *_ = index._candidate_dbs(request)
    where, params = index._where(request, conn)
    plan = " | ".join(
        row[3]
        for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM events WHERE {where} ORDER BY ts DESC LIMIT 11",
            params,
        )
    )
    assert "INTEGER PRIMARY KEY" not in plan, plan
    assert "CORRELATED" not in plan, plan  # not one FTS probe per row either
    assert "events_ts" in plan, plan
    index.close()
