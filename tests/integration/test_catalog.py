"""The Tables, Vacuum and Indexes collectors against real servers and staged sessions.

Sizes are compared with the server's own size functions; locks, dead rows, idle
transactions and broken indexes are staged on real connections. Statistics reach the
views asynchronously: each test asks the writing session to flush them
(``pg_stat_force_next_flush()``, PostgreSQL 15+) and polls with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
import pytest
from collecting import context, once_source
from psycopg.conninfo import conninfo_to_dict

from pgtop import pg, sql
from pgtop.collectors.activity import ActivityCollector
from pgtop.collectors.catalog import (
    LIST_EVERY,
    SCAN_EVERY,
    CatalogCollector,
    CatalogNeeds,
    CatalogShared,
    DatabaseList,
    IndexesCollector,
    IndexesData,
    TablesCollector,
    TablesData,
    VacuumCollector,
    VacuumData,
    under_lock_timeout,
)
from pgtop.collectors.catalog import collectors as catalog_collectors
from pgtop.model import Capabilities
from pgtop.once import print_once

Connection = psycopg.AsyncConnection[dict[str, Any]]
T = TypeVar("T")

HANG = 10.0
"""A collection still running after this long is hung (the goal is far less: no wait)."""


@pytest.fixture
async def monitor(fresh_db: str) -> AsyncIterator[tuple[Connection, Capabilities]]:
    """pgtop's monitoring connection to the test database, and its capabilities."""
    conn = await pg.connect(fresh_db)
    try:
        yield conn, await pg.probe(conn)
    finally:
        await conn.close()


@pytest.fixture
def db(fresh_db: str, sessions: Any) -> psycopg.Connection[Any]:
    """A superuser autocommit session in the test database, for staging."""
    conn: psycopg.Connection[Any] = sessions.open("catalog-stage", dbname=dbname_of(fresh_db))
    return conn


def dbname_of(conninfo: str) -> str:
    return str(conninfo_to_dict(conninfo)["dbname"])


def name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def own(conn: Connection) -> frozenset[int]:
    return frozenset({conn.info.backend_pid})


async def bounded(work: Awaitable[T]) -> T:
    """``work``, failing the test if it does not finish: it must never wait on a lock."""
    return await asyncio.wait_for(work, timeout=HANG)


async def collect(
    collector: CatalogCollector,
    conn: Connection,
    needs: CatalogNeeds | None = None,
    *,
    due: bool = True,
) -> Any:
    """What ``collector`` gives its source after an Activity poll, for a pane that
    needs ``needs``."""
    activity = await ActivityCollector(collector.capabilities, own(conn)).collect(conn)
    data = await bounded(collector.collect(conn, activity, needs, due=due))
    assert data is not None
    return data


async def until(
    read: Callable[[], Awaitable[T]], condition: Callable[[T], bool], what: str, timeout: float = 30
) -> T:
    """Read again until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if condition(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def wait_forever_on_locks(conn: Connection) -> None:
    """Drop the monitoring session's lock_timeout: a statement that waits on a lock now
    hangs (and ``bounded`` fails) instead of failing after 500 ms."""
    await conn.execute("SET lock_timeout = 0")


def flush_stats(conn: psycopg.Connection[Any]) -> None:
    """Make the next transaction of ``conn`` send its statistics at once (15+)."""
    if conn.info.server_version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")


def oid_of(conn: psycopg.Connection[Any], relation: str) -> int:
    row = conn.execute("SELECT %s::regclass::oid::bigint", [relation]).fetchone()
    assert row is not None
    return int(row[0])


def lock_exclusive(sessions: Any, fresh_db: str, table: str) -> psycopg.Connection[Any]:
    """A session holding ACCESS EXCLUSIVE on ``table`` in an open transaction."""
    holder: psycopg.Connection[Any] = sessions.open("catalog-locker", dbname=dbname_of(fresh_db))
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return holder


# -- Tables ----------------------------------------------------------------------------------


def make_tables(db: psycopg.Connection[Any]) -> dict[str, str]:
    """A table with TOAST data and two indexes, a plain one, an empty one."""
    wide, plain, empty = name("wide"), name("plain"), name("empty")
    db.execute(f"CREATE TABLE {wide} (id int PRIMARY KEY, body text, tag int)")
    db.execute(f"CREATE INDEX ON {wide} (tag)")
    db.execute(
        f"INSERT INTO {wide} SELECT g, (SELECT string_agg(md5(g::text || x::text), '') "
        f"FROM generate_series(1, 200) x), g % 7 FROM generate_series(1, 300) g"
    )
    db.execute(f"CREATE TABLE {plain} (id bigint, v text)")
    db.execute(f"INSERT INTO {plain} SELECT g, 'v' || g FROM generate_series(1, 5000) g")
    db.execute(f"CREATE TABLE {empty} (id int)")
    return {"wide": wide, "plain": plain, "empty": empty}


async def test_sizes_match_the_servers_size_functions(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    tables = make_tables(db)
    data = await collect(TablesCollector(context(caps)), conn)
    assert isinstance(data, TablesData)
    by_name = {t.name: t for t in data.tables}
    assert set(tables.values()) <= set(by_name)
    for table in tables.values():
        row = db.execute(
            "SELECT pg_total_relation_size(c.oid), pg_table_size(c.oid), "
            "pg_indexes_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, "
            "0)), 0) FROM pg_class c WHERE c.oid = %s::regclass",
            [table],
        ).fetchone()
        assert row is not None
        total, heap_and_toast, indexes, toast = row
        info = by_name[table]
        assert not info.size_is_estimate
        assert not info.locked
        assert info.total_bytes == total
        assert info.table_bytes + info.toast_bytes == heap_and_toast
        assert info.index_bytes == indexes
        assert info.toast_bytes == toast
    assert by_name[tables["wide"]].toast_bytes > 0, "the wide table stores TOAST data"
    assert data.header.database == dbname_of(conn.info.dsn)


async def test_only_the_rows_asked_for_are_sized_exactly(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    tables = make_tables(db)
    db.execute(f"ANALYZE {tables['plain']}")
    collector = TablesCollector(context(caps))
    data = await collect(collector, conn, CatalogNeeds(on_screen=(oid_of(db, tables["plain"]),)))
    by_name = {t.name: t for t in data.tables}
    assert not by_name[tables["plain"]].size_is_estimate
    wide = by_name[tables["wide"]]
    assert wide.size_is_estimate, "not on screen: the relpages estimate"
    row = db.execute(
        "SELECT relpages * current_setting('block_size')::int FROM pg_class WHERE oid = %s",
        [oid_of(db, tables["wide"])],
    ).fetchone()
    assert row is not None
    assert wide.table_bytes == row[0]

    # The cursor moves to the wide table: only sizes are read again, on the same rows.
    needs = CatalogNeeds(on_screen=(oid_of(db, tables["wide"]),), sizes_asked=1)
    resized = await collect(collector, conn, needs, due=False)
    assert resized.collected_at == data.collected_at, "no full read for a size request"
    by_name = {t.name: t for t in resized.tables}
    assert not by_name[tables["wide"]].size_is_estimate
    assert by_name[tables["plain"]] == next(t for t in data.tables if t.name == tables["plain"])


async def test_a_table_locked_access_exclusive_keeps_its_estimate_and_nothing_waits(
    fresh_db: str,
    monitor: tuple[Connection, Capabilities],
    db: psycopg.Connection[Any],
    sessions: Any,
) -> None:
    conn, caps = monitor
    tables = make_tables(db)
    db.execute(f"ANALYZE {tables['wide']}")
    lock_exclusive(sessions, fresh_db, tables["wide"])
    await wait_forever_on_locks(conn)

    data = await collect(TablesCollector(context(caps)), conn)
    vacuum = await collect(VacuumCollector(context(caps)), conn)
    indexes = await collect(IndexesCollector(context(caps)), conn)

    by_name = {t.name: t for t in data.tables}
    locked = by_name[tables["wide"]]
    assert locked.locked
    assert locked.size_is_estimate
    assert locked.table_bytes > 0, "the estimate from the last ANALYZE"
    assert not by_name[tables["plain"]].size_is_estimate, "other tables are sized exactly"
    assert {t.name for t in vacuum.tables if t.locked} == {tables["wide"]}
    assert any(i.table == tables["wide"] for i in indexes.indexes)


async def test_a_queued_access_exclusive_request_is_not_waited_behind(
    fresh_db: str,
    monitor: tuple[Connection, Capabilities],
    db: psycopg.Connection[Any],
    sessions: Any,
) -> None:
    """An ALTER TABLE waiting behind a long reader makes every new reader queue too."""
    conn, caps = monitor
    tables = make_tables(db)
    dbname = dbname_of(fresh_db)
    reader = sessions.open("catalog-reader", dbname=dbname)
    reader.execute("BEGIN")
    reader.execute(f"SELECT count(*) FROM {tables['plain']}")
    migration = sessions.open("catalog-migration", dbname=dbname)
    sessions.run_in_background(migration, f"ALTER TABLE {tables['plain']} ADD COLUMN x int")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock')",
        [migration.info.backend_pid],
    )
    await wait_forever_on_locks(conn)
    data = await collect(TablesCollector(context(caps)), conn)
    queued = next(t for t in data.tables if t.name == tables["plain"])
    assert queued.locked
    assert queued.size_is_estimate


async def test_a_lock_taken_after_the_check_costs_the_short_timeout_only(
    fresh_db: str,
    monitor: tuple[Connection, Capabilities],
    db: psycopg.Connection[Any],
    sessions: Any,
) -> None:
    """The last line of defence: sizes are read under a 50 ms lock_timeout."""
    conn, _ = monitor
    tables = make_tables(db)
    lock_exclusive(sessions, fresh_db, tables["plain"])
    unguarded = sql.Query(
        "unguarded_sizes",
        ((130000, "SELECT pg_relation_size(o) AS bytes FROM unnest(%(oids)s::oid[]) o"),),
    )
    await wait_forever_on_locks(conn)
    rows, problem = await bounded(
        under_lock_timeout(conn, unguarded, [oid_of(db, tables["plain"])])
    )
    assert rows == []
    assert "locked" in problem
    cur = await conn.execute("SELECT current_setting('lock_timeout') AS lock_timeout")
    row = await cur.fetchone()
    assert row is not None
    assert row["lock_timeout"] == "0", "the session's own setting is back after the read"


# -- Vacuum ----------------------------------------------------------------------------------


async def test_dead_rows_after_an_update(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    table = name("churn")
    db.execute(f"CREATE TABLE {table} (id int, v int) WITH (autovacuum_enabled = off)")
    db.execute(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 1000) g")
    flush_stats(db)
    db.execute(f"UPDATE {table} SET v = 1 WHERE id <= 300")

    def row(data: VacuumData) -> Any:
        return next((t for t in data.tables if t.name == table), None)

    data = await until(
        lambda: collect(VacuumCollector(context(caps)), conn),
        lambda d: row(d) is not None and row(d).n_dead_tup == 300,
        "300 dead rows",
    )
    churn = row(data)
    assert churn.n_live_tup == 1000
    assert churn.dead_ratio == pytest.approx(300 / 1300)
    assert not churn.verdict.enabled
    assert not churn.verdict.due, "autovacuum is off for this table"
    assert churn.xid_age is not None
    assert churn.xid_age >= 0


async def test_a_table_past_its_autovacuum_threshold_is_due(
    fresh_db: str,
    monitor: tuple[Connection, Capabilities],
    db: psycopg.Connection[Any],
    sessions: Any,
) -> None:
    conn, caps = monitor
    due, off = name("due"), name("off")
    db.execute(
        f"CREATE TABLE {due} (id int) WITH (autovacuum_vacuum_threshold = 10, "
        "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_insert_threshold = -1)"
    )
    db.execute(f"CREATE TABLE {off} (id int) WITH (autovacuum_enabled = false)")
    # Autovacuum skips a table it cannot lock: keep it due while the test looks.
    holder = sessions.open("catalog-av-blocker", dbname=dbname_of(fresh_db))
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {due} IN SHARE UPDATE EXCLUSIVE MODE")
    for table in (due, off):
        db.execute(f"INSERT INTO {table} SELECT generate_series(1, 100)")
        flush_stats(db)
        db.execute(f"DELETE FROM {table} WHERE id <= 11")

    def by_name(data: VacuumData) -> dict[str, Any]:
        return {t.name: t for t in data.tables}

    data = await until(
        lambda: collect(VacuumCollector(context(caps)), conn),
        lambda d: all(by_name(d)[t].n_dead_tup == 11 for t in (due, off)),
        "11 dead rows in each table",
    )
    verdict = by_name(data)[due].verdict
    assert verdict.vacuum == "dead rows"
    assert verdict.vacuum_threshold == 10
    assert not by_name(data)[off].verdict.due
    assert data.settings.active


async def test_an_idle_transaction_is_shown_holding_the_xmin_horizon(
    fresh_db: str,
    monitor: tuple[Connection, Capabilities],
    db: psycopg.Connection[Any],
    sessions: Any,
) -> None:
    conn, caps = monitor
    dbname = dbname_of(fresh_db)
    busy = sessions.open("catalog-long-query", dbname=dbname)
    sessions.run_in_background(busy, "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s AND backend_xmin IS NOT NULL"
        " AND wait_event = 'PgSleep')",
        [busy.info.backend_pid],
    )
    for _ in range(3):
        db.execute("SELECT txid_current()")  # the idle one's snapshot is younger
    idle = sessions.open("catalog-idle-in-tx", dbname=dbname)
    idle.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    idle.execute("SELECT 1")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s"
        " AND state = 'idle in transaction' AND backend_xmin IS NOT NULL)",
        [idle.info.backend_pid],
    )
    data = await collect(VacuumCollector(context(caps)), conn)
    sessions_shown = [h for h in data.holders if h.kind == "session"]
    pids = [h.pid for h in sessions_shown]
    assert pids[:2] == [idle.info.backend_pid, busy.info.backend_pid]
    first = sessions_shown[0]
    assert first.idle_in_transaction
    assert first.database == dbname
    assert first.xmin is not None
    busy_age = sessions_shown[1].age
    assert first.age is not None
    assert busy_age is not None
    assert busy_age > first.age, "the idle one comes first although younger"
    assert conn.info.backend_pid not in pids, "pgtop's own session is never listed"


async def test_a_running_vacuum_is_listed_with_its_phase(
    monitor: tuple[Connection, Capabilities],
    db: psycopg.Connection[Any],
    sessions: Any,
    fresh_db: str,
) -> None:
    conn, caps = monitor
    table = name("big")
    db.execute(f"CREATE TABLE {table} (id int, pad text) WITH (autovacuum_enabled = off)")
    db.execute(f"INSERT INTO {table} SELECT g, repeat('x', 200) FROM generate_series(1, 50000) g")
    db.execute(f"DELETE FROM {table} WHERE id % 2 = 0")
    vacuumer = sessions.open("catalog-vacuum", dbname=dbname_of(fresh_db))
    # Throttled so that it is still running when pgtop looks.
    vacuumer.execute("SET vacuum_cost_delay = '100ms'")
    vacuumer.execute("SET vacuum_cost_limit = 1")
    sessions.run_in_background(vacuumer, f"VACUUM {table}")
    data = await until(
        lambda: collect(VacuumCollector(context(caps)), conn),
        lambda d: any(p.pid == vacuumer.info.backend_pid for p in d.running),
        "the vacuum in progress",
    )
    running = next(p for p in data.running if p.pid == vacuumer.info.backend_pid)
    assert running.command == "VACUUM"
    assert running.relation == f"public.{table}"
    assert running.phase
    assert running.heap_blks_total
    sessions.admin.execute("SELECT pg_cancel_backend(%s)", [vacuumer.info.backend_pid])


# -- Indexes ---------------------------------------------------------------------------------


async def test_unused_invalid_and_duplicate_indexes_are_flagged(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    t = name("orders")
    db.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, email text UNIQUE, status int, note text)")
    db.execute(f"INSERT INTO {t} SELECT g, 'u' || g, g % 5, 'n' FROM generate_series(1, 2000) g")
    db.execute(f"CREATE INDEX {t}_status ON {t} (status)")
    db.execute(f"CREATE INDEX {t}_status_again ON {t} (status)")
    db.execute(f"CREATE INDEX {t}_note ON {t} (note) WHERE status = 1")
    db.execute(f"CREATE INDEX {t}_lower ON {t} (lower(note))")
    db.execute(f"CREATE INDEX {t}_lower_again ON {t} (lower(note))")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {t}_status_unique ON {t} (status)")
    db.execute(f"ANALYZE {t}")
    # One index used: the partial one, by a query that matches its predicate.
    flush_stats(db)
    db.execute("SET enable_seqscan = off")
    db.execute(f"SELECT note FROM {t} WHERE status = 1 AND note = 'n'")
    db.execute("RESET enable_seqscan")

    def flags(data: IndexesData) -> dict[str, Any]:
        return {i.name: i for i in data.indexes if i.table == t}

    data = await until(
        lambda: collect(IndexesCollector(context(caps)), conn),
        lambda d: flags(d).get(f"{t}_note") is not None and flags(d)[f"{t}_note"].idx_scan > 0,
        "the partial index scanned",
    )
    shown = flags(data)
    assert shown[f"{t}_status_unique"].invalid
    assert shown[f"{t}_status_unique"].duplicate_of == f"{t}_status", "a leftover is a duplicate"
    assert shown[f"{t}_status_again"].duplicate_of == f"{t}_status"
    assert shown[f"{t}_status"].duplicate_of is None
    assert shown[f"{t}_lower_again"].duplicate_of == f"{t}_lower"
    assert shown[f"{t}_note"].duplicate_of is None, "a partial index is not a duplicate"
    assert shown[f"{t}_status"].unused
    assert not shown[f"{t}_note"].unused
    for constraint in (f"{t}_pkey", f"{t}_email_key"):
        index = shown[constraint]
        assert index.idx_scan == 0
        assert index.enforces_constraint
        assert not index.unused, f"{constraint} enforces a constraint"
        assert not index.invalid
    assert {i for i, info in shown.items() if info.invalid} == {f"{t}_status_unique"}
    assert all(not info.size_is_estimate for info in shown.values())
    sizes = dict(
        db.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass",
            [t],
        ).fetchall()
    )
    assert {i: info.index_bytes for i, info in shown.items()} == sizes


async def test_a_foreign_key_keeps_the_referenced_index_out_of_unused(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    parent, child = name("parent"), name("child")
    db.execute(f"CREATE TABLE {parent} (id int)")
    db.execute(f"CREATE UNIQUE INDEX {parent}_id ON {parent} (id)")
    db.execute(f"CREATE TABLE {child} (parent_id int REFERENCES {parent} (id))")
    data = await collect(IndexesCollector(context(caps)), conn)
    index = next(i for i in data.indexes if i.name == f"{parent}_id")
    assert index.backs_constraint
    assert not index.unused


async def test_constraints_are_read_again_after_the_slower_cadence_or_for_new_indexes(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    parent, child = name("parent"), name("child")
    db.execute(f"CREATE TABLE {parent} (id int, code int)")
    db.execute(f"CREATE UNIQUE INDEX {parent}_id ON {parent} (id)")
    db.execute(f"CREATE TABLE {child} (parent_id int, parent_code int)")
    collector = IndexesCollector(context(caps))

    async def backs(index: str) -> bool:
        data = await collect(collector, conn)
        return bool(next(i for i in data.indexes if i.name == index).backs_constraint)

    assert not await backs(f"{parent}_id")
    db.execute(f"ALTER TABLE {child} ADD FOREIGN KEY (parent_id) REFERENCES {parent} (id)")
    for _ in range(SCAN_EVERY - 1):
        assert not await backs(f"{parent}_id"), "constraints are not read on every refresh"
    assert await backs(f"{parent}_id"), "read again after the slower cadence"

    # A new index: shown by its own flags at once, and the constraints are read again on
    # the next refresh rather than after a whole cycle.
    db.execute(f"CREATE UNIQUE INDEX {parent}_code ON {parent} (code)")
    db.execute(f"ALTER TABLE {child} ADD FOREIGN KEY (parent_code) REFERENCES {parent} (code)")
    data = await collect(collector, conn)
    new = next(i for i in data.indexes if i.name == f"{parent}_code")
    assert not new.backs_constraint
    assert new.enforces_constraint, "unique"
    assert not new.unused
    assert await backs(f"{parent}_code")


# -- between two reads of the whole list ------------------------------------------------------


def _counter(tab: str, data: Any, table: str) -> int | None:
    """The counter each tab shows that the staged writes move, for ``table``'s row (its
    primary key's in Indexes); None when the row is not listed."""
    if tab == "indexes":
        found = [i.idx_scan for i in data.indexes if i.table == table and i.is_primary]
    elif tab == "tables":
        found = [t.n_tup_ins for t in data.tables if t.name == table]
    else:
        found = [t.n_ins_since_vacuum for t in data.tables if t.name == table]
    return found[0] if found else None


def _server_counter(db: psycopg.Connection[Any], tab: str, table: str) -> int:
    if tab == "indexes":
        sql = "SELECT idx_scan FROM pg_stat_user_indexes WHERE relid = %s::regclass"
    elif tab == "tables":
        sql = "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = %s::regclass"
    else:
        sql = "SELECT n_ins_since_vacuum FROM pg_stat_user_tables WHERE relid = %s::regclass"
    row = db.execute(sql, [table]).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("tab", ["tables", "vacuum", "indexes"])
async def test_between_whole_reads_the_rows_on_screen_and_new_relations_are_read(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any], tab: str
) -> None:
    conn, caps = monitor
    kinds = {"tables": TablesCollector, "vacuum": VacuumCollector, "indexes": IndexesCollector}
    collector = kinds[tab](context(caps))
    seen, unseen, dropped_seen, dropped_unseen, created = (
        name(prefix) for prefix in ("seen", "unseen", "dropseen", "dropunseen", "created")
    )
    for table in (seen, unseen, dropped_seen, dropped_unseen):
        db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY) WITH (autovacuum_enabled = off)")
    first = await collect(collector, conn)
    assert first.header.listed_at is None, "a read of the whole list"
    assert _counter(tab, first, seen) == _counter(tab, first, unseen) == 0

    def relation(table: str) -> int:
        return oid_of(db, f"{table}_pkey" if tab == "indexes" else table)

    needs = CatalogNeeds(on_screen=(relation(seen), relation(dropped_seen)))
    flush_stats(db)
    with db.transaction():
        for table in (seen, unseen):
            db.execute(f"INSERT INTO {table} SELECT generate_series(1, 50)")
            db.execute("SET LOCAL enable_seqscan = off")
            db.execute(f"SELECT id FROM {table} WHERE id = 7")
    db.execute(f"DROP TABLE {dropped_seen}, {dropped_unseen}")
    db.execute(f"CREATE TABLE {created} (id int PRIMARY KEY)")

    async def server_counts() -> dict[str, int]:
        return {table: _server_counter(db, tab, table) for table in (seen, unseen)}

    moved = await until(server_counts, lambda c: all(c.values()), "the server to count them")

    partial = await collect(collector, conn, needs)
    assert partial.header.listed_at == first.header.collected_at
    assert _counter(tab, partial, seen) == moved[seen], "a row on screen is read anew"
    assert _counter(tab, partial, unseen) == 0, "a row off screen waits for the whole list"
    assert _counter(tab, partial, dropped_seen) is None, "dropped, on screen: gone"
    assert _counter(tab, partial, dropped_unseen) == 0, "dropped, off screen: still listed"
    assert _counter(tab, partial, created) == 0, "created since: listed at once"

    whole = await collect(collector, conn, replace(needs, list_asked=1))
    assert whole.header.listed_at is None
    assert _counter(tab, whole, unseen) == moved[unseen]
    assert _counter(tab, whole, dropped_unseen) is None
    assert _counter(tab, whole, created) == 0


@pytest.mark.parametrize(("interval", "max_age"), [(0.2, 3600.0), (3600.0, 1.0)])
async def test_the_whole_list_is_read_again_after_six_intervals_or_the_longest_age(
    monitor: tuple[Connection, Capabilities],
    monkeypatch: pytest.MonkeyPatch,
    interval: float,
    max_age: float,
) -> None:
    conn, caps = monitor
    monkeypatch.setattr(catalog_collectors, "LIST_MAX_AGE", max_age)
    monkeypatch.setattr(VacuumCollector, "fixed_interval", interval)
    collector = VacuumCollector(context(caps))
    age = min(LIST_EVERY * interval, max_age)
    first = await collect(collector, conn)
    assert first.header.listed_at is None
    between = await collect(collector, conn)
    assert between.header.listed_at == first.collected_at
    await asyncio.sleep(age + 0.05)
    again = await collect(collector, conn)
    assert again.header.listed_at is None, "the whole list again"


async def test_write_rates_are_per_row_and_kept_while_the_row_is_not_read(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    busy = name("busy")
    db.execute(f"CREATE TABLE {busy} (id int)")
    collector = TablesCollector(context(caps))
    needs = CatalogNeeds(exact_default=0)

    def rate(data: TablesData) -> float | None:
        return next(t.ins_per_s for t in data.tables if t.name == busy)

    first = await collect(collector, conn, needs)
    assert rate(first) is None, "no earlier read to compare with"
    needs = replace(needs, on_screen=(oid_of(db, busy),))
    flush_stats(db)
    db.execute(f"INSERT INTO {busy} SELECT generate_series(1, 600)")

    async def counted() -> int:
        return _server_counter(db, "tables", busy)

    await until(counted, lambda n: n == 600, "the server to count the rows")
    measured = await collect(collector, conn, needs)
    elapsed = (measured.collected_at - first.collected_at).total_seconds()
    assert rate(measured) == pytest.approx(600 / elapsed), "since its last read"

    needs = replace(needs, on_screen=())
    off_screen = await collect(collector, conn, needs)
    assert rate(off_screen) == rate(measured), "not read: the rate last measured"

    quiet = await collect(collector, conn, replace(needs, list_asked=1))
    assert rate(quiet) == 0.0, "read again, nothing written since"


# -- the database size in the header --------------------------------------------------------


def database_bytes(db: psycopg.Connection[Any]) -> int:
    row = db.execute(
        "SELECT sum(relpages)::bigint * current_setting('block_size')::int FROM pg_class"
    ).fetchone()
    assert row is not None
    return int(row[0])


async def test_the_database_size_counts_every_relation_and_follows_the_tables_rows(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    grows = name("grows")
    db.execute(
        f"CREATE TABLE {grows} (id int PRIMARY KEY, body text) "
        "WITH (autovacuum_enabled = off, toast.autovacuum_enabled = off)"
    )
    db.execute(f"ANALYZE {grows}")
    shared = context(caps)
    tables = TablesCollector(shared)
    needs = CatalogNeeds(exact_default=0)

    def rows_bytes(data: TablesData) -> int:
        assert all(t.size_is_estimate for t in data.tables)
        return sum(t.total_bytes for t in data.tables)

    # The first read sums every relation (autovacuum may change a catalog's relpages
    # meanwhile: read again, with nothing kept, until both agree).
    async def first_read() -> tuple[TablesData, int]:
        shared.shared(CatalogShared).pages.expire()
        data = await collect(tables, conn, needs)
        return data, database_bytes(db)

    first, _ = await until(first_read, lambda r: r[0].header.database_bytes == r[1], "the sum")
    outside = first.header.database_bytes - rows_bytes(first)
    assert outside > 0, "the system catalogs are counted too"

    # Between two reads of every relation, the Tables tab counts its own rows again.
    db.execute(f"INSERT INTO {grows} SELECT g, repeat('x', 500) FROM generate_series(1, 2000) g")
    db.execute(f"ANALYZE {grows}")
    second = await collect(tables, conn, replace(needs, list_asked=1))
    assert second.header.database_bytes > first.header.database_bytes
    assert second.header.database_bytes == outside + rows_bytes(second)

    # The other tabs share the figure until the next read.
    vacuum = await collect(VacuumCollector(shared), conn)
    indexes = await collect(IndexesCollector(shared), conn)
    assert vacuum.header.database_bytes == second.header.database_bytes
    assert indexes.header.database_bytes == second.header.database_bytes


async def test_the_database_size_is_read_again_after_the_slower_cadence(
    monitor: tuple[Connection, Capabilities], db: psycopg.Connection[Any]
) -> None:
    conn, caps = monitor
    grows = name("grows")
    db.execute(f"CREATE TABLE {grows} (id int) WITH (autovacuum_enabled = off)")
    collector = VacuumCollector(context(caps))
    needs = CatalogNeeds(on_screen=(oid_of(db, grows),))
    first = await collect(collector, conn, needs)
    db.execute(f"INSERT INTO {grows} SELECT generate_series(1, 20000)")
    db.execute(f"ANALYZE {grows}")
    for _ in range(SCAN_EVERY - 1):
        kept = await collect(collector, conn, needs)
        assert kept.header.database_bytes == first.header.database_bytes
    read = await collect(collector, conn, needs)
    grown = next(t for t in read.tables if t.name == grows).relpages * read.header.block_size
    assert grown > 0
    assert read.header.database_bytes >= first.header.database_bytes + grown


# -- the database switch, and --once ---------------------------------------------------------


async def test_the_catalog_tabs_read_the_database_chosen(
    dsn: str, fresh_db: str, db: psycopg.Connection[Any]
) -> None:
    table = name("elsewhere")
    db.execute(f"CREATE TABLE {table} (id int)")
    conn = await pg.connect(dsn)
    caps = await pg.probe(conn)
    shared = context(caps, dsn)
    tables, vacuum_tab = TablesCollector(shared), VacuumCollector(shared)
    try:
        databases = {d.name: d for d in await DatabaseList().read(conn)}
        chosen = dbname_of(fresh_db)
        assert databases[caps.database].current
        assert databases[chosen].bytes
        assert databases[chosen].can_connect

        data = await collect(tables, conn, CatalogNeeds(database=chosen))
        assert isinstance(data, TablesData)
        assert data.database == chosen
        assert table in {t.name for t in data.tables}
        vacuum = await collect(vacuum_tab, conn, CatalogNeeds(database=chosen))
        assert isinstance(vacuum, VacuumData)
        assert vacuum.database == chosen

        back = await collect(tables, conn, CatalogNeeds())
        assert isinstance(back, TablesData)
        assert back.database == caps.database
        assert table not in {t.name for t in back.tables}

        with pytest.raises(psycopg.OperationalError, match="no_such_database_here"):
            await collect(tables, conn, CatalogNeeds(database="no_such_database_here"))
    finally:
        await tables.close()
        await conn.close()


@pytest.mark.parametrize(
    ("tab", "keys"),
    [
        (
            "tables",
            {"schema", "table", "total_bytes", "table_bytes", "index_bytes", "toast_bytes"}
            | {"size_is_estimate"},
        ),
        (
            "vacuum",
            {"schema", "table", "n_live_tup", "n_dead_tup", "last_vacuum", "last_autovacuum"}
            | {"last_analyze", "last_autoanalyze", "xid_age", "autovacuum_due"},
        ),
        (
            "indexes",
            {"schema", "table", "index", "index_bytes", "idx_scan", "unused", "invalid"}
            | {"duplicate_of"},
        ),
    ],
)
async def test_once_json_rows(
    tab: str,
    keys: set[str],
    fresh_db: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tables = make_tables(db)
    async with once_source(fresh_db) as source:
        assert await print_once(source, tab, "json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tab"] == tab
    rows = document["rows"]
    assert rows
    for row in rows:
        assert keys <= set(row), keys - set(row)
    if tab != "indexes":
        assert set(tables.values()) <= {row["table"] for row in rows}
    if tab == "tables":
        wide = next(row for row in rows if row["table"] == tables["wide"])
        assert wide["size_is_estimate"] is False
        assert (
            wide["total_bytes"] == wide["table_bytes"] + wide["index_bytes"] + wide["toast_bytes"]
        )
    async with once_source(fresh_db) as source:
        assert await print_once(source, tab, "text") == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("SCHEMA")
