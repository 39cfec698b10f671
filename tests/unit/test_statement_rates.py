"""Figures of the Queries tab from two readings: deltas, rates, resets and evictions."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from pgtop.collectors.statements import (
    COUNTER_COLUMNS,
    COUNTER_FIELDS,
    Counters,
    Mode,
    Reading,
    Statement,
    StatementKey,
    StatementsSnapshot,
    counters_since,
    figures_between,
    lifetime_figures,
    mode_figures,
    statements_from_rows,
)

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


def counters(**values: Any) -> Counters:
    """Counters with every field 0 (None for the times a version lacks) but ``values``."""
    base: dict[str, Any] = dict.fromkeys(COUNTER_FIELDS, 0)
    base.update(calls=0, exec_ms=0.0)
    base.update(values)
    return Counters(**base)


def statement(queryid: int | None = 1, **values: Any) -> Statement:
    entries = values.pop("entries", 1)
    since = values.pop("stats_since", None)
    return Statement(
        userid=10,
        dbid=5,
        toplevel=True,
        queryid=queryid,
        user="app",
        database="shop",
        counters=counters(**values),
        stats_since=since,
        entries=entries,
    )


def reading(seconds: float, *items: Statement) -> Reading:
    return Reading(T0 + timedelta(seconds=seconds), {s.key: s for s in items})


def snapshot(current: Reading, previous: Reading | None) -> StatementsSnapshot:
    return StatementsSnapshot(
        current=current,
        previous=previous,
        texts={},
        extension_version="1.12",
        server_version_num=180001,
        database="shop",
        user="pgtop",
        sees_all=True,
    )


def key(queryid: int | None = 1) -> StatementKey:
    return (10, 5, queryid, True)


def test_interval_deltas_and_rates() -> None:
    before = reading(0, statement(calls=100, exec_ms=1000.0, rows=400, shared_blks_read=8))
    after = reading(
        5,
        statement(
            calls=150,
            exec_ms=3500.0,
            rows=600,
            shared_blks_hit=50,
            shared_blks_read=18,
            temp_blks_written=25,
        ),
    )
    f = figures_between(before, after)[key()]
    assert (f.calls, f.exec_ms, f.rows) == (50, 2500.0, 200)
    assert (f.shared_blks_hit, f.shared_blks_read, f.temp_blks_written) == (50, 10, 25)
    assert f.seconds == 5
    assert f.per_second(f.calls) == 10
    assert f.mean_ms == 50  # 2500 ms over 50 calls in the interval, not the lifetime 23.3
    assert f.load == 0.5  # half a core's worth of execution
    assert f.per_second(f.rows) == 40
    assert f.per_second(f.temp_blks_written) == 5
    assert not f.restarted


def test_an_entry_new_since_the_base_counts_in_full() -> None:
    before = reading(0, statement(1, calls=10))
    after = reading(2, statement(1, calls=10), statement(2, calls=6, exec_ms=3.0))
    figures = figures_between(before, after)
    assert figures[key(2)].calls == 6
    assert not figures[key(1)].active


@pytest.mark.parametrize(
    "new",
    [
        # pg_stat_statements_reset(): everything restarts at zero, then grows a little
        statement(calls=3, exec_ms=1.5, rows=3),
        # evicted and created again: fewer calls than before
        statement(calls=40, exec_ms=9000.0, rows=4000),
        # only the time went backwards (a reset followed by a burst of calls)
        statement(calls=500, exec_ms=10.0, rows=500),
        # blocks went backwards
        statement(calls=500, exec_ms=9000.0, rows=4000, shared_blks_read=1),
    ],
    ids=["reset", "evicted", "time-backwards", "blocks-backwards"],
)
def test_counters_that_go_backwards_restart_from_zero(new: Statement) -> None:
    old = statement(calls=100, exec_ms=5000.0, rows=1000, shared_blks_read=50)
    f = figures_between(reading(0, old), reading(4, new))[key()]
    assert f.restarted
    c = new.counters
    assert (f.calls, f.exec_ms, f.rows, f.shared_blks_read) == (
        c.calls,
        c.exec_ms,
        c.rows,
        c.shared_blks_read,
    )
    assert f.seconds == 4


def test_a_new_stats_since_is_a_restart_even_when_counters_grew() -> None:
    old = statement(calls=10, exec_ms=10.0, stats_since=T0)
    new = statement(calls=25, exec_ms=30.0, stats_since=T0 + timedelta(seconds=3))
    f = figures_between(reading(0, old), reading(5, new))[key()]
    assert f.restarted
    assert f.calls == 25


def test_hidden_entries_summed_restart_when_one_is_evicted() -> None:
    old = statement(None, calls=100, exec_ms=100.0, entries=3)
    grew = statement(None, calls=130, exec_ms=160.0, entries=4)
    shrank = statement(None, calls=90, exec_ms=80.0, entries=2)
    assert figures_between(reading(0, old), reading(1, grew))[key(None)].calls == 30
    f = figures_between(reading(0, old), reading(1, shrank))[key(None)]
    assert f.restarted
    assert f.calls == 90


def test_no_rate_is_ever_negative() -> None:
    chance = random.Random(4)
    previous = statement()
    base = reading(0, previous)
    for step in range(1, 300):
        c = previous.counters
        if chance.random() < 0.15:  # a reset or an eviction
            values: dict[str, Any] = {"calls": chance.randint(0, 5), "exec_ms": chance.random()}
        else:
            values = {
                "calls": c.calls + chance.randint(0, 50),
                "exec_ms": c.exec_ms + chance.random() * 100,
                "rows": c.rows + chance.randint(0, 9),
                "shared_blks_hit": c.shared_blks_hit + chance.randint(0, 9),
                "shared_blks_read": c.shared_blks_read + chance.randint(0, 9),
                "temp_blks_written": c.temp_blks_written + chance.randint(0, 9),
            }
        current = statement(**values)
        now = reading(step, current)
        for f in (*figures_between(base, now).values(), *figures_between(reading(0), now).values()):
            numbers = (
                f.calls,
                f.exec_ms,
                f.rows,
                f.shared_blks_hit,
                f.shared_blks_read,
                f.temp_blks_written,
                f.load or 0,
                f.mean_ms or 0,
            )
            assert min(numbers) >= 0, (step, f)
        base, previous = now, current


def test_modes() -> None:
    first = reading(0, statement(calls=10, exec_ms=20.0))
    second = reading(6, statement(calls=16, exec_ms=32.0))
    mark = reading(-60, statement(calls=1, exec_ms=2.0))
    # now: needs a previous reading
    assert mode_figures(Mode.NOW, snapshot(first, None), None) is None
    now = mode_figures(Mode.NOW, snapshot(second, first), None)
    assert now is not None
    assert now[key()].calls == 6
    assert now[key()].seconds == 6
    # since mark: needs a mark
    assert mode_figures(Mode.MARK, snapshot(second, first), None) is None
    since = mode_figures(Mode.MARK, snapshot(second, first), mark)
    assert since is not None
    assert since[key()].calls == 15
    assert since[key()].seconds == 66
    # lifetime: cumulative, no span
    life = mode_figures(Mode.LIFETIME, snapshot(second, None), None)
    assert life is not None
    assert life[key()].calls == 16
    assert life[key()].seconds is None
    assert life[key()].load is None
    assert life == lifetime_figures(second)
    assert [m.next() for m in Mode] == [Mode.MARK, Mode.LIFETIME, Mode.NOW]


def test_every_counter_of_the_detail_since_a_base() -> None:
    old = statement(calls=10, exec_ms=20.0, wal_bytes=1000, jit_functions=None)
    new = statement(calls=12, exec_ms=26.0, wal_bytes=1500, jit_functions=None)
    span, restarted = counters_since(old, new)
    assert not restarted
    assert (span.calls, span.exec_ms, span.wal_bytes) == (2, 6.0, 500)
    assert span.jit_functions is None  # not tracked by this extension version: stays unknown
    assert counters_since(None, new) == (new.counters, False)
    back, restarted = counters_since(new, old)
    assert restarted
    assert back == old.counters


def _row(queryid: int | None, calls: int, toplevel: bool | None = True) -> tuple[Any, ...]:
    values: dict[str, Any] = dict.fromkeys(COUNTER_COLUMNS, 0)
    values.update(
        userid=10, dbid=5, toplevel=toplevel, queryid=queryid, user="u", database="d", calls=calls
    )
    values.update(stats_since=None, minmax_stats_since=None)
    return tuple(values[name] for name in COUNTER_COLUMNS)


def test_rows_sharing_a_key_are_summed() -> None:
    rows = [_row(None, 5), _row(None, 7), _row(42, 3), _row(42, 4, toplevel=False)]
    by_key = statements_from_rows(rows)
    hidden = by_key[(10, 5, None, True)]
    assert hidden.hidden
    assert (hidden.counters.calls, hidden.entries) == (12, 2)
    assert by_key[(10, 5, 42, True)].counters.calls == 3
    assert by_key[(10, 5, 42, False)].nested


def test_lifetime_figures_keep_the_counters() -> None:
    s = replace(statement(calls=4, exec_ms=10.0), mean_exec_ms=2.5)
    f = lifetime_figures(reading(0, s))[key()]
    assert (f.calls, f.exec_ms, f.mean_ms) == (4, 10.0, 2.5)
