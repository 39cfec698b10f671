"""Actions against real servers: exactly the captured target, or nothing."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from pgtop import pg
from pgtop.actions import (
    ActionRunner,
    RefusedError,
    TargetRole,
    plan_relation,
    plan_session,
    session_refusal,
    target_role,
)
from pgtop.collectors.activity import ActivityCollector
from pgtop.model import ActivitySnapshot, Backend, Capabilities, RelationTarget

HOSTILE_TABLES = ["x; DROP TABLE bystander; --", "Mixed Case", 'quo"te', "sp ace", "ünï"]


def tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def snapshot_of(dsn: str) -> ActivitySnapshot:
    conn = await pg.connect(dsn)
    try:
        caps = await pg.probe(conn)
        return await ActivityCollector(caps, frozenset({conn.info.backend_pid})).collect(conn)
    finally:
        await conn.close()


def backend_named(dsn: str, application_name: str) -> Backend:
    snapshot = asyncio.run(snapshot_of(dsn))
    (backend,) = [b for b in snapshot.backends if b.application_name == application_name]
    return backend


def run(dsn: str, plan: Any, lock_timeout: float = 3.0) -> Any:
    async def go() -> Any:
        runner = ActionRunner(dsn, None, lock_timeout)
        try:
            return await runner.run(plan)
        finally:
            await runner.close()

    return asyncio.run(go())


def alive(sessions: Any, pid: int) -> bool:
    row = sessions.admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()
    return bool(row[0])


def sleeping(sessions: Any, name: str) -> int:
    conn = sessions.open(application_name=name)
    sessions.run_in_background(conn, "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
        "WHERE application_name = %s AND wait_event = 'PgSleep')",
        (name,),
    )
    return int(conn.info.backend_pid)


# -- sessions ----------------------------------------------------------------------------------


def test_terminate_hits_exactly_the_staged_session(dsn: str, sessions: Any) -> None:
    target_name, bystander_name = tag("target"), tag("bystander")
    target_pid = sleeping(sessions, target_name)
    bystander_pid = sleeping(sessions, bystander_name)
    plan = plan_session("terminate", backend_named(dsn, target_name))
    assert f"pid = {target_pid}" in plan.sql_text
    outcome = run(dsn, plan)
    assert outcome.ok, outcome.message
    assert "is gone" in outcome.message
    assert not alive(sessions, target_pid)
    assert alive(sessions, bystander_pid)


def test_cancel_stops_only_the_query(dsn: str, sessions: Any) -> None:
    target_name, bystander_name = tag("target"), tag("bystander")
    target_pid = sleeping(sessions, target_name)
    bystander_pid = sleeping(sessions, bystander_name)
    outcome = run(dsn, plan_session("cancel", backend_named(dsn, target_name)))
    assert outcome.ok, outcome.message
    assert "was cancelled" in outcome.message
    state = sessions.admin.execute(
        "SELECT state FROM pg_stat_activity WHERE pid = %s", (target_pid,)
    ).fetchone()
    assert state == ("idle",), "the session stays connected, its query is gone"
    assert backend_named(dsn, bystander_name).wait_event == "PgSleep"
    assert alive(sessions, bystander_pid)


def test_a_stale_identity_does_nothing(dsn: str, sessions: Any) -> None:
    """Same pid, different backend_start (a reused pid): nothing is signalled."""
    name = tag("target")
    pid = sleeping(sessions, name)
    backend = backend_named(dsn, name)
    assert backend.backend_start is not None
    stale = replace(backend, backend_start=backend.backend_start - timedelta(microseconds=1))
    for action in ("terminate", "cancel"):
        outcome = run(dsn, plan_session(action, stale))
        assert not outcome.ok
        assert "no longer the one selected" in outcome.message
    assert backend_named(dsn, name).wait_event == "PgSleep"
    assert alive(sessions, pid)


def test_cancel_aimed_at_a_finished_query_does_nothing(dsn: str, sessions: Any) -> None:
    name = tag("target")
    conn = sessions.open(application_name=name)
    first = sessions.run_in_background(conn, "SELECT pg_sleep(0.5)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
        "WHERE application_name = %s AND wait_event = 'PgSleep')",
        (name,),
    )
    old_query = backend_named(dsn, name)
    assert first.wait(10)
    sessions.run_in_background(conn, "SELECT pg_sleep(60) /* the next query */")
    sessions.wait_until(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = %s "
        "AND query LIKE %s AND wait_event = 'PgSleep')",
        (name, "%the next query%"),
    )
    outcome = run(dsn, plan_session("cancel", old_query))
    assert not outcome.ok
    assert "its query already finished" in outcome.message
    assert backend_named(dsn, name).wait_event == "PgSleep", "the new query runs on"


def test_refusals_name_their_reason(dsn: str, sessions: Any) -> None:
    role = tag("plain").replace("-", "_")
    # It sees every session (pg_read_all_stats) but may signal none of other roles'.
    sessions.admin.execute(f"CREATE ROLE {role} LOGIN IN ROLE pg_read_all_stats")
    try:
        target = backend_named(dsn, _staged(sessions))

        async def caps_of(conninfo: str) -> tuple[Capabilities, int]:
            conn = await pg.connect(conninfo)
            try:
                return await pg.probe(conn), conn.info.backend_pid
            finally:
                await conn.close()

        plain_dsn = f"{dsn} user={role}"
        caps, _ = asyncio.run(caps_of(plain_dsn))
        superuser = TargetRole(superuser=True, inherited=False)
        reason = session_refusal(target, caps, frozenset(), superuser)
        assert reason == "a superuser's session can only be signalled by a superuser"
        other = replace(target, user="someone_else")
        stranger = TargetRole(superuser=False, inherited=False)
        reason = session_refusal(other, caps, frozenset(), stranger)
        assert reason is not None
        assert "pg_signal_backend" in reason
        assert caps.read_all_stats
        assert not caps.signal_backend
        assert session_refusal(target, caps, frozenset({target.pid}), stranger)
        # And when the server itself refuses (SQLSTATE 42501), that is shown, not swallowed.
        outcome = run(plain_dsn, plan_session("terminate", target))
        assert not outcome.ok
        assert outcome.message.startswith("the server refused:")
        assert alive(sessions, target.pid)
    finally:
        sessions.admin.execute(f"DROP ROLE {role}")


def test_a_member_of_the_sessions_role_may_signal_it(dsn: str, sessions: Any) -> None:
    """The server lets a role signal the sessions of a role whose privileges it has (a
    member that inherits them), without pg_signal_backend: so does pgtop."""
    app_role, member = tag("app").replace("-", "_"), tag("lead").replace("-", "_")
    sessions.admin.execute(f"CREATE ROLE {app_role} LOGIN")
    sessions.admin.execute(f"CREATE ROLE {member} LOGIN IN ROLE {app_role}, pg_read_all_stats")
    try:
        name = tag("app-session")
        worker = sessions.open(application_name=name, user=app_role)
        sessions.run_in_background(worker, "SELECT pg_sleep(60)")
        member_dsn = f"{dsn} user={member}"
        sessions.wait_until(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event = 'PgSleep')",
            (name,),
        )
        target = backend_named(dsn, name)

        async def judge() -> tuple[Capabilities, Any]:
            conn = await pg.connect(member_dsn)
            try:
                caps = await pg.probe(conn)
                return caps, await target_role(conn, target.user)
            finally:
                await conn.close()

        caps, role = asyncio.run(judge())
        assert not caps.signal_backend
        assert role == TargetRole(superuser=False, inherited=True)
        assert session_refusal(target, caps, frozenset(), role) is None
        outcome = run(member_dsn, plan_session("terminate", target))
        assert outcome.ok, outcome.message
        assert not alive(sessions, target.pid)
    finally:
        sessions.close()
        sessions.admin.execute(f"DROP ROLE {member}")
        sessions.admin.execute(f"DROP ROLE {app_role}")


def _staged(sessions: Any) -> str:
    name = tag("superuser-session")
    sleeping(sessions, name)
    return name


def test_non_client_backends_need_a_second_confirmation(dsn: str) -> None:
    snapshot = asyncio.run(snapshot_of(dsn))
    launcher = next(b for b in snapshot.backends if b.backend_type == "autovacuum launcher")
    plan = plan_session("terminate", launcher)
    assert plan.warning.startswith("This is not a client session")
    assert "autovacuum launcher" in plan.warning


def test_nothing_to_cancel_on_an_idle_session(dsn: str, sessions: Any) -> None:
    name = tag("idle")
    sessions.open(application_name=name).execute("SELECT 1")
    with pytest.raises(RefusedError, match="no query to cancel"):
        plan_session("cancel", backend_named(dsn, name))


# -- maintenance -------------------------------------------------------------------------------


def relation(sessions: Any, schema: str, name: str) -> RelationTarget:
    row = sessions.admin.execute(
        "SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    assert row is not None
    if row[1] == "i":
        return RelationTarget(oid=row[0], schema=schema, name=name, kind="index")
    return RelationTarget(oid=row[0], schema=schema, name=name, kind="table")


@pytest.fixture
def hostile_schema(sessions: Any) -> Iterator[str]:
    schema = tag("Sch ema")
    admin = sessions.admin
    admin.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))
    for name in [*HOSTILE_TABLES, "bystander"]:
        table = psycopg.sql.Identifier(schema, name)
        admin.execute(psycopg.sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v text)").format(table))
        admin.execute(
            psycopg.sql.SQL("INSERT INTO {} SELECT g, 'v' FROM generate_series(1, 100) g").format(
                table
            )
        )
    yield schema
    admin.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(schema)))


def analyzed(sessions: Any, schema: str) -> dict[str, bool]:
    rows = sessions.admin.execute(
        "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE schemaname = %s",
        (schema,),
    ).fetchall()
    return dict(rows)


def filenode(sessions: Any, schema: str, index: str) -> int:
    row = sessions.admin.execute(
        "SELECT pg_relation_filenode(format('%%I.%%I', %s::text, %s::text)::regclass)",
        (schema, index),
    ).fetchone()
    return int(row[0])


def test_hostile_names_are_analyzed_and_reindexed_exactly(
    dsn: str, sessions: Any, hostile_schema: str
) -> None:
    for name in HOSTILE_TABLES:
        target = relation(sessions, hostile_schema, name)
        for action in ("analyze", "vacuum"):
            outcome = run(dsn, plan_relation(action, target, standby=False))
            assert outcome.ok, outcome.message
        index = f"{name}_pkey"
        before = filenode(sessions, hostile_schema, index)
        outcome = run(
            dsn, plan_relation("reindex", relation(sessions, hostile_schema, index), standby=False)
        )
        assert outcome.ok, outcome.message
        assert "CONCURRENTLY" in outcome.message
        assert filenode(sessions, hostile_schema, index) != before
    assert analyzed(sessions, hostile_schema) == {
        **dict.fromkeys(HOSTILE_TABLES, True),
        "bystander": False,
    }, "the hostile tables and nothing else"


def test_a_renamed_table_is_not_touched(dsn: str, sessions: Any, hostile_schema: str) -> None:
    target = relation(sessions, hostile_schema, "Mixed Case")
    plan = plan_relation("analyze", target, standby=False)
    sessions.admin.execute(
        psycopg.sql.SQL("ALTER TABLE {} RENAME TO renamed").format(
            psycopg.sql.Identifier(hostile_schema, "Mixed Case")
        )
    )
    outcome = run(dsn, plan)
    assert not outcome.ok
    assert "dropped or renamed" in outcome.message
    assert analyzed(sessions, hostile_schema)["renamed"] is False


def test_standbys_get_no_maintenance() -> None:
    target = RelationTarget(oid=1, schema="public", name="t", kind="table")
    with pytest.raises(RefusedError, match="standby"):
        plan_relation("vacuum", target, standby=True)


def test_reindex_behind_a_held_lock_gives_up_and_names_the_holder(dsn: str, sessions: Any) -> None:
    table = tag("busy").replace("-", "_")
    sessions.admin.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, v int)")
    holder_name = tag("holder")
    holder = sessions.open(application_name=holder_name)
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")

    writes: list[float] = []
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(f"INSERT INTO {table} (v) VALUES (1)")
                writes.append(time.monotonic())
                time.sleep(0.05)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        target = relation(sessions, "public", f"{table}_pkey")
        target = replace(target, table_oid=relation(sessions, "public", table).oid)
        started = time.monotonic()
        outcome = run(dsn, plan_relation("reindex", target, standby=False), lock_timeout=1.0)
        ended = time.monotonic()
    finally:
        stop.set()
        writer.join(10)
    assert not outcome.ok
    assert "gave up: no lock" in outcome.message
    assert str(holder.info.backend_pid) in outcome.message
    assert holder_name in outcome.message
    assert sum(1 for t in writes if started <= t <= ended) >= 3, "writes kept flowing"


def test_a_failed_reindex_concurrently_reports_its_leftover(dsn: str, sessions: Any) -> None:
    """An old snapshot makes REINDEX CONCURRENTLY wait, then give up: its new index stays
    behind, invalid; pgtop reports it and can drop it."""
    table = tag("leftover").replace("-", "_")
    sessions.admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    sessions.admin.execute(f"INSERT INTO {table} SELECT generate_series(1, 1000)")
    old = sessions.open(application_name=tag("old-snapshot"))
    old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    old.execute("SELECT count(*) FROM pg_class")
    table_target = relation(sessions, "public", table)
    index = replace(
        relation(sessions, "public", f"{table}_pkey"),
        table_oid=table_target.oid,
        table_name=table,
    )
    outcome = run(dsn, plan_relation("reindex", index, standby=False), lock_timeout=1.0)
    assert not outcome.ok
    assert len(outcome.leftovers) == 1, outcome.message
    (leftover,) = outcome.leftovers
    assert "invalid index" in outcome.message
    assert leftover.name.startswith(f"{table}_pkey_ccnew")
    invalid = sessions.admin.execute(
        "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = %s", (leftover.oid,)
    ).fetchone()
    assert invalid == (True,)
    old.execute("ROLLBACK")
    drop = plan_relation("drop_invalid_index", leftover, standby=False)
    assert drop.sql_text.startswith("DROP INDEX CONCURRENTLY")
    assert run(dsn, drop).ok
    gone = sessions.admin.execute(
        "SELECT count(*) FROM pg_class WHERE oid = %s", (leftover.oid,)
    ).fetchone()
    assert gone == (0,)


def test_the_action_log_records_attempts_without_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, new_cluster: Callable[..., Any]
) -> None:
    from pgtop.actions import Outcome, action_log_path, log_action

    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))
    target = RelationTarget(oid=42, schema="s", name="t", kind="table")
    plan = plan_relation("analyze", target, standby=False)
    log_action("me@db:5432/app", "me", plan, None)
    log_action("me@db:5432/app", "me", plan, Outcome(True, "done"))
    path = action_log_path()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert '"sql": "ANALYZE \\"s\\".\\"t\\""' in lines[0]
    assert '"outcome": "ok"' in lines[1]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
