"""The Activity data against what pg_stat_activity really holds, with staged sessions."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pgtop import pg
from pgtop.cluster import Cluster
from pgtop.collectors.activity import (
    LIST_QUERY_LIMIT,
    WHOLE_TEXT_LIMIT,
    ActivityCollector,
    SessionDetail,
)
from pgtop.config import Settings
from pgtop.model import ActivitySnapshot, Backend
from pgtop.source import LiveSource


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _snapshot(dsn: str) -> tuple[ActivitySnapshot, int]:
    conn = await pg.connect(dsn)
    try:
        caps = await pg.probe(conn)
        collector = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
        return await collector.collect(conn), conn.info.backend_pid
    finally:
        await conn.close()


def _by_app(snapshot: ActivitySnapshot, name: str) -> list[Backend]:
    return [b for b in snapshot.backends if b.application_name == name]


@pytest.fixture
def staged(sessions: Any) -> dict[str, Any]:
    """An idle-in-transaction holder, a session waiting on its row lock, and a pg_sleep."""
    names = {key: _name(key) for key in ("holder", "waiter", "sleeper", "idle")}
    admin = sessions.admin
    table = _name("t").replace("-", "_")
    admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    admin.execute(f"INSERT INTO {table} VALUES (1, 0)")

    holder = sessions.open(application_name=names["holder"])
    holder.execute("BEGIN")
    holder.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")

    waiter = sessions.open(application_name=names["waiter"])
    sessions.run_in_background(waiter, f"UPDATE {table} SET v = v + 2 WHERE id = 1")
    sleeper = sessions.open(application_name=names["sleeper"])
    sessions.run_in_background(sleeper, "SELECT pg_sleep(60) /* staged sleeper */")
    idle = sessions.open(application_name=names["idle"])
    idle.execute("SELECT 1")

    sessions.wait_until(
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE application_name = ANY(%s) "
        "AND (wait_event_type = 'Lock' OR wait_event = 'PgSleep')",
        ([names["waiter"], names["sleeper"]],),
    )
    pids = {
        key: sessions.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()[0]
        for key, name in names.items()
    }
    return {"names": names, "pids": pids, "table": table}


async def test_staged_sessions_appear_as_the_server_holds_them(
    dsn: str, staged: dict[str, Any], sessions: Any
) -> None:
    snapshot, own_pid = await _snapshot(dsn)
    names, pids = staged["names"], staged["pids"]

    (holder,) = _by_app(snapshot, names["holder"])
    (waiter,) = _by_app(snapshot, names["waiter"])
    (sleeper,) = _by_app(snapshot, names["sleeper"])
    (idle,) = _by_app(snapshot, names["idle"])

    assert holder.state == "idle in transaction"
    assert holder.xact_start is not None
    assert waiter.state == "active"
    assert waiter.wait_event_type == "Lock"
    assert waiter.blocked_by == (pids["holder"],)
    assert sleeper.wait_event == "PgSleep"
    assert sleeper.query == "SELECT pg_sleep(60) /* staged sleeper */"
    assert sleeper.blocked_by == ()
    assert idle.state == "idle"
    assert snapshot.blocking_pids >= {pids["holder"]}

    # blocked_by agrees with the server's own pg_blocking_pids() for every waiter.
    truth = dict(
        sessions.admin.execute(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchall()
    )
    for backend in snapshot.backends:
        if backend.pid in truth:
            assert set(backend.blocked_by) == set(truth[backend.pid])
        else:
            assert backend.blocked_by == ()

    # pgtop never lists itself.
    assert own_pid not in {b.pid for b in snapshot.backends}
    assert not any(b.application_name == "pgtop" and b.pid == own_pid for b in snapshot.backends)


async def test_counters_give_rates_on_the_second_poll(dsn: str, sessions: Any) -> None:
    conn = await pg.connect(dsn)
    try:
        caps = await pg.probe(conn)
        collector = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
        first = await collector.collect(conn)
        assert first.tps is None
        worker = sessions.open(application_name="tps-worker")
        # Backends publish their counters at most once a second: poll until they arrive.
        deadline = time.monotonic() + 15
        while True:
            for _ in range(20):
                worker.execute("SELECT 1")
            await asyncio.sleep(0.3)
            second = await collector.collect(conn)
            if second.tps or time.monotonic() > deadline:
                break
    finally:
        await conn.close()
    assert second.tps is not None
    assert second.tps > 0
    assert second.cache_hit is not None
    assert 0 <= second.cache_hit <= 1
    assert second.client_connections >= 1
    assert caps.max_connections > 0


async def test_monitoring_connection_is_bounded_and_named(dsn: str) -> None:
    conn = await pg.connect(dsn)
    try:
        cur = await conn.execute(
            "SELECT current_setting('statement_timeout') AS st, "
            "current_setting('lock_timeout') AS lt, "
            "current_setting('application_name') AS app"
        )
        row = await cur.fetchone()
    finally:
        await conn.close()
    assert row == {"st": "5s", "lt": "500ms", "app": "pgtop"}
    assert conn.autocommit


async def test_probe_reports_a_plain_roles_limits(dsn: str, sessions: Any) -> None:
    role = _name("plain").replace("-", "_")
    sessions.admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        conn = await pg.connect(f"{dsn} user={role}")
        try:
            caps = await pg.probe(conn)
        finally:
            await conn.close()
    finally:
        sessions.admin.execute(f"DROP ROLE {role}")
    assert caps.user == role
    assert not caps.is_superuser
    assert not caps.read_all_stats
    assert not caps.signal_backend
    assert caps.pgss_preloaded is None  # needs pg_read_all_settings to know


async def test_hidden_queries_are_marked_not_empty(
    dsn: str, staged: dict[str, Any], sessions: Any
) -> None:
    role = _name("plain").replace("-", "_")
    sessions.admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        snapshot, _ = await _snapshot(f"{dsn} user={role}")
    finally:
        sessions.admin.execute(f"DROP ROLE {role}")
    (sleeper,) = _by_app(snapshot, staged["names"]["sleeper"])
    assert sleeper.query_hidden
    assert "pg_sleep" not in sleeper.query


async def test_live_source_reconnects_after_its_backend_is_terminated(
    dsn: str, sessions: Any
) -> None:
    source = LiveSource(Settings(conninfo=dsn))
    try:
        first = await source.poll()
        old_pid = next(iter(source.own_pids))
        sessions.admin.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
        sessions.wait_until(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", (old_pid,)
        )
        from pgtop.source import PollError

        with pytest.raises(PollError) as lost:
            await source.poll()
        assert lost.value.connection_lost
        assert source.lost_since is not None
        again = await source.poll()
        assert source.lost_since is None
        assert next(iter(source.own_pids)) != old_pid
        assert again.collected_at > first.collected_at
    finally:
        await source.close()


def test_text_from_other_encodings_never_breaks_a_poll(dsn: str, sessions: Any) -> None:
    """A LATIN1 database's query text reaches a UTF-8 monitor as bytes that are not UTF-8:
    it is read as LATIN1, the encoding of the database it ran in."""
    db = _name("latin").replace("-", "_")
    sessions.admin.execute(
        f"CREATE DATABASE {db} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    )
    try:
        conn = sessions.open(application_name="latin1-client", dbname=db)
        conn.execute("SET client_encoding = 'LATIN1'")
        sessions.run_in_background(conn, "SELECT 'caf\u00e9', pg_sleep(60)")
        sessions.wait_until(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
            "WHERE application_name = 'latin1-client' AND wait_event = 'PgSleep')"
        )
        snapshot, _ = asyncio.run(_snapshot(dsn))
        (row,) = _by_app(snapshot, "latin1-client")
        assert row.query == "SELECT 'café', pg_sleep(60)"
    finally:
        sessions.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,)
        )
        sessions.admin.execute(f"DROP DATABASE {db} WITH (FORCE)")


def test_a_huge_query_is_clipped_in_lists_and_bounded_in_the_detail(
    new_cluster: Callable[..., Cluster],
) -> None:
    """A 1 MB query text costs a poll only its first few kilobytes, and the detail reads a
    bounded prefix, one character more than it shows so that it can say it was cut."""
    cluster = new_cluster(settings={"track_activity_query_size": "1MB"})
    big = "SELECT pg_sleep(60) /* " + "x" * 1_000_000 + " */"
    worker = psycopg.connect(cluster.conninfo(), autocommit=True, application_name="huge")
    thread = threading.Thread(target=_run_quietly, args=(worker, big), daemon=True)
    thread.start()

    async def observe() -> tuple[Backend, str | None]:
        conn = await pg.connect(cluster.conninfo())
        try:
            caps = await pg.probe(conn)
            collector = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
            for _ in range(200):
                snapshot = await collector.collect(conn)
                rows = [b for b in snapshot.backends if b.wait_event == "PgSleep"]
                if rows:
                    break
                await asyncio.sleep(0.05)
            (row,) = rows
            full, _locks = await SessionDetail(row).read(conn)
            return row, full
        finally:
            await conn.close()

    try:
        row, full = asyncio.run(observe())
    finally:
        cluster.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'huge'"
        )
        thread.join(10)
        worker.close()
    assert len(row.query) == LIST_QUERY_LIMIT
    assert full is not None
    assert full.startswith("SELECT pg_sleep(60) /* xxx")
    assert len(full) == WHOLE_TEXT_LIMIT + 1


def _run_quietly(conn: psycopg.Connection[Any], sql: str) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql)
