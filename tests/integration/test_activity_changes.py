"""Polls that read only the changed rows see what a full read of pg_stat_activity sees."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from pgtop import pg
from pgtop.collectors import activity as collector_module
from pgtop.collectors.activity import ActivityCollector
from pgtop.model import ActivitySnapshot, Backend

CHANGES_MARKER = "pg_stat_get_backend_idset"
WATCHED_MARKER = "AS w(pid)"


def _app(snapshot: ActivitySnapshot, name: str) -> Backend:
    (backend,) = [b for b in snapshot.backends if b.application_name == name]
    return backend


def _changes_calls(fresh_db: str, marker: str = CHANGES_MARKER) -> int:
    """Calls so far of the statement that reads changed rows (or of another one), as
    pg_stat_statements counts them."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE query LIKE %s AND query LIKE '%%pg_stat_get_activity%%'",
            (f"%{marker}%",),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("limit", [64, 0], ids=["row-by-row", "one-full-read"])
async def test_changed_rows_poll_agrees_with_a_full_read(
    dsn: str, fresh_db: str, sessions: Any, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(collector_module, "CHANGED_ROWS_LIMIT", limit)
    # No margin: what was staged before the first poll must not count as a change.
    monkeypatch.setattr(collector_module, "CHANGES_MARGIN", timedelta(0))
    monkeypatch.setattr(collector_module, "SCAN_SECONDS", 0.0)  # every poll scans
    tag = uuid.uuid4().hex[:8]
    names = {
        key: f"{key}-{tag}"
        for key in ("untouched", "leaver", "runner", "holder", "waiter", "sleeper", "renamed")
    }
    admin = sessions.admin
    table = f"changes_{tag}"
    admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    admin.execute(f"INSERT INTO {table} VALUES (1, 0)")
    conns = {key: sessions.open(application_name=name) for key, name in names.items()}
    for conn in conns.values():
        conn.execute("SELECT 1")
    sleeper_job = sessions.run_in_background(conns["sleeper"], "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %s"
        " AND wait_event = 'PgSleep')",
        (names["sleeper"],),
    )

    conn = await pg.connect(dsn)
    try:
        caps = await pg.probe(conn)
        own = frozenset({conn.info.backend_pid})
        polls = ActivityCollector(caps, own)
        first = await polls.collect(conn)
        assert _app(first, names["sleeper"]).state == "active"
        leaver_pid = _app(first, names["leaver"]).pid

        # Every kind of change a session can make between two polls.
        conns["leaver"].close()
        conns["runner"].execute("SELECT 2 /* ran again */")
        conns["holder"].execute("BEGIN")
        conns["holder"].execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
        sessions.run_in_background(conns["waiter"], f"UPDATE {table} SET v = 2 WHERE id = 1")
        admin.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (names["sleeper"],),
        )
        sleeper_job.wait(10)
        conns["renamed"].execute(
            "SELECT set_config('application_name', %s, false)", (f"now-{tag}",)
        )
        newcomer = sessions.open(application_name=f"newcomer-{tag}")
        newcomer.execute("SELECT 1")
        sessions.wait_until(
            "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)"
            " AND EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock')",
            (leaver_pid, names["waiter"]),
        )

        calls_before = _changes_calls(fresh_db)
        before = await ActivityCollector(caps, own).collect(conn)
        second = await polls.collect(conn)
        after = await ActivityCollector(caps, own).collect(conn)
        assert _changes_calls(fresh_db) == calls_before + 1
    finally:
        await conn.close()

    # The same sessions, and every client session exactly as full reads around it show it
    # (backends of earlier tests may still be exiting: those that changed are left out).
    def clients(snapshot: ActivitySnapshot) -> dict[int, Backend]:
        return {b.pid: b for b in snapshot.backends if b.is_client}

    shown = {b.pid for b in second.backends}
    assert {b.pid for b in before.backends} & {b.pid for b in after.backends} <= shown
    assert shown <= {b.pid for b in before.backends} | {b.pid for b in after.backends}
    steady = {pid: b for pid, b in clients(before).items() if clients(after).get(pid) == b}
    assert len(steady) >= len(names) + 1
    assert {pid: b for pid, b in clients(second).items() if pid in steady} == steady

    # What the user sees changed, change by change.
    assert leaver_pid not in {b.pid for b in second.backends}
    assert _app(second, f"newcomer-{tag}").state == "idle"
    assert _app(second, names["runner"]).query == "SELECT 2 /* ran again */"
    assert _app(second, names["holder"]).state == "idle in transaction"
    waiter = _app(second, names["waiter"])
    assert waiter.blocked_by == (_app(second, names["holder"]).pid,)
    assert _app(second, names["sleeper"]).state == "idle"
    assert _app(second, f"now-{tag}").pid == _app(first, names["renamed"]).pid
    # A session that did nothing is the very same record: nothing downstream redoes it.
    assert _app(second, names["untouched"]) is _app(first, names["untouched"])


async def test_a_role_that_cannot_see_timestamps_reads_every_row(
    pg_cluster: Any, fresh_db: str, sessions: Any
) -> None:
    role = f"plain_{uuid.uuid4().hex[:8]}"
    sessions.admin.execute(f"CREATE ROLE {role} LOGIN")
    other = sessions.open(application_name=f"other-{role}")
    other.execute("SELECT 1")
    conn = await pg.connect(pg_cluster.conninfo(user=role))
    try:
        caps = await pg.probe(conn)
        assert not caps.sees_all_queries
        polls = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
        await polls.collect(conn)
        calls_before = _changes_calls(fresh_db)
        other.close()
        sessions.wait_until(
            "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %s)",
            (f"other-{role}",),
        )
        second = await polls.collect(conn)
        assert _changes_calls(fresh_db) == calls_before
    finally:
        await conn.close()
        sessions.admin.execute(f"DROP ROLE {role}")
    assert not [b for b in second.backends if b.application_name == f"other-{role}"]


async def test_polls_between_scans_read_only_the_active_sessions(
    dsn: str, fresh_db: str, sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "SCAN_SECONDS", 3600.0)
    tag = uuid.uuid4().hex[:8]
    sleeper = sessions.open(application_name=f"sleeper-{tag}")
    ender = sessions.open(application_name=f"ender-{tag}")
    idle = sessions.open(application_name=f"idle-{tag}")
    idle.execute("SELECT 1")
    job = sessions.run_in_background(sleeper, "SELECT pg_sleep(60)")
    sessions.run_in_background(ender, "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE application_name = ANY(%s)"
        " AND wait_event = 'PgSleep'",
        ([f"sleeper-{tag}", f"ender-{tag}"],),
    )
    conn = await pg.connect(dsn)
    try:
        caps = await pg.probe(conn)
        polls = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
        first = await polls.collect(conn)
        ender_pid = _app(first, f"ender-{tag}").pid
        sessions.admin.execute("SELECT pg_cancel_backend(%s)", (_app(first, f"sleeper-{tag}").pid,))
        job.wait(10)
        sessions.admin.execute("SELECT pg_terminate_backend(%s)", (ender_pid,))
        sessions.wait_until(
            "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)", (ender_pid,)
        )
        scans, watched = _changes_calls(fresh_db), _changes_calls(fresh_db, WATCHED_MARKER)
        second = await polls.collect(conn)
        assert _changes_calls(fresh_db) == scans
        assert _changes_calls(fresh_db, WATCHED_MARKER) == watched + 1
    finally:
        await conn.close()
    # The active sessions are read again: one went idle, one is gone...
    assert _app(second, f"sleeper-{tag}").state == "idle"
    assert ender_pid not in {b.pid for b in second.backends}
    # ...and the idle one is the very record of the first poll.
    assert _app(second, f"idle-{tag}") is _app(first, f"idle-{tag}")
