"""Another database user must not be able to act with pgtop's rights, change the settings
pgtop relies on, or take pgtop's actions somewhere else.

Everything is staged by a second, unprivileged role ("mallory") on the real servers: the
operator is the cluster's superuser, as it often is during an incident.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from collecting import context
from psycopg import sql

from pgtop import pg
from pgtop.actions import (
    ActionRunner,
    RefusedError,
    maintenance_runs_as_caller,
    open_action_connection,
    plan_relation,
    plan_session,
    run_maintenance,
)
from pgtop.cluster import Cluster, start_cluster
from pgtop.collectors.activity import WHOLE_TEXT_LIMIT, ActivityCollector
from pgtop.collectors.catalog import CatalogNeeds, TablesCollector, TablesData
from pgtop.collectors.locks import LocksCollector
from pgtop.collectors.statements import StatementsCollector, StatementsSnapshot
from pgtop.model import RelationTarget


@dataclass
class Hostile:
    """A database owned by an unprivileged role, and that role."""

    role: str
    dbname: str
    conninfo: str
    """As the operator (the superuser)."""
    owner_conninfo: str
    """As the unprivileged owner."""


@pytest.fixture
def hostile(pg_cluster: Cluster) -> Iterator[Hostile]:
    tag = uuid.uuid4().hex[:8]
    role, dbname = f"mallory_{tag}", f"hostile_{tag}"
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN")
    pg_cluster.psql(f"CREATE DATABASE {dbname} OWNER {role}")
    pg_cluster.psql("CREATE EXTENSION pg_stat_statements", dbname=dbname)
    try:
        yield Hostile(
            role,
            dbname,
            pg_cluster.conninfo(dbname),
            pg_cluster.conninfo(dbname, user=role),
        )
    finally:
        pg_cluster.psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        pg_cluster.psql(f"DROP ROLE IF EXISTS {role}")


# Objects named like catalog ones, each recording that it ran, in the schema the owner
# put before pg_catalog in the database's search_path.
SHADOWS = """
CREATE TABLE public.ran (what text);
GRANT INSERT, SELECT ON public.ran TO PUBLIC;
CREATE FUNCTION public.pg_terminate_backend(integer) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO public.ran VALUES ('pg_terminate_backend') RETURNING true $$;
CREATE FUNCTION public.pg_cancel_backend(integer) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO public.ran VALUES ('pg_cancel_backend') RETURNING true $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
    AS $$ INSERT INTO public.ran VALUES ('now') RETURNING pg_catalog.now() $$;
CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.ran VALUES ('set_config') RETURNING $2 $$;
CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.ran VALUES ('current_setting')
          RETURNING pg_catalog.current_setting($1) $$;
CREATE FUNCTION public.int_eq(integer, integer) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO public.ran VALUES ('=') RETURNING $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.int_eq);
CREATE VIEW public.pg_stat_activity AS
    SELECT * FROM pg_catalog.pg_stat_activity WHERE application_name <> 'hidden-one';
CREATE VIEW public.pg_class AS SELECT * FROM pg_catalog.pg_class WHERE false;
"""


def shadowed(hostile: Hostile) -> None:
    with psycopg.connect(hostile.owner_conninfo, autocommit=True) as owner:
        owner.execute(SHADOWS)
        owner.execute(
            sql.SQL("ALTER DATABASE {} SET search_path = public, pg_catalog").format(
                sql.Identifier(hostile.dbname)
            )
        )


def ran(hostile: Hostile) -> list[str]:
    with psycopg.connect(hostile.owner_conninfo, autocommit=True) as owner:
        return [row[0] for row in owner.execute("SELECT what FROM public.ran").fetchall()]


async def monitor_everything(conninfo: str) -> tuple[Any, ...]:
    """What pgtop reads of a database: one poll of every collector."""
    conn = await pg.connect(conninfo)
    try:
        caps = await pg.probe(conn)
        collector = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
        for _ in range(3):
            activity = await collector.collect(conn)
        ctx = context(caps, conninfo)
        locks = await LocksCollector(ctx).collect(conn, activity, None, due=True)
        statements = await StatementsCollector(ctx).collect(conn)
        tables = await TablesCollector(ctx).collect(conn, activity, None, due=True)
        return caps, activity, locks, statements, tables
    finally:
        await conn.close()


def test_shadowed_catalog_objects_are_never_used(hostile: Hostile, sessions: Any) -> None:
    shadowed(hostile)
    # The staging works: a plain session of the operator in that database uses them.
    with psycopg.connect(hostile.conninfo, autocommit=True) as plain:
        plain.execute("SELECT now()")
    assert ran(hostile) == ["now"]
    with psycopg.connect(hostile.owner_conninfo, autocommit=True) as owner:
        owner.execute("TRUNCATE public.ran")

    hidden = sessions.open("hidden-one", dbname=hostile.dbname, user=hostile.role)
    hidden.execute("SELECT 1")
    caps, activity, _locks, statements, tables = asyncio.run(monitor_everything(hostile.conninfo))
    assert caps.pgss_schema == "public"
    assert isinstance(statements, StatementsSnapshot)
    assert hidden.info.backend_pid in {b.pid for b in activity.backends}
    assert "ran" in {table.name for table in tables.tables}  # the real pg_class

    # A confirmed terminate signals through the real pg_terminate_backend.
    target = next(b for b in activity.backends if b.pid == hidden.info.backend_pid)

    async def terminate() -> Any:
        runner = ActionRunner(hostile.conninfo, None, 3.0)
        try:
            return await runner.run(plan_session("terminate", target))
        finally:
            await runner.close()

    outcome = asyncio.run(terminate())
    assert outcome.ok, outcome.message
    sessions.wait_until(
        "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)",
        [hidden.info.backend_pid],
    )
    assert ran(hostile) == []


def test_database_settings_of_an_owner_do_not_apply(
    hostile: Hostile, pg_cluster: Cluster, tmp_path: Path
) -> None:
    """DateStyle, role, read-only default, idle-session and transaction timeouts set by
    the database owner: pgtop starts, acts as itself, reads, waits idle and maintains."""
    settings = {
        "DateStyle": "SQL, DMY",
        "IntervalStyle": "sql_standard",
        "role": hostile.role,
        "default_transaction_read_only": "on",
        "idle_session_timeout": "1s",
        "statement_timeout": "1ms",
    }
    if pg_cluster.version_num >= 170000:
        settings["transaction_timeout"] = "50ms"
    with psycopg.connect(hostile.owner_conninfo, autocommit=True) as owner:
        owner.execute("CREATE TABLE public.t (id int)")
        for name, value in settings.items():
            owner.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(hostile.dbname), sql.Identifier(name), sql.Literal(value)
                )
            )
    # The staging works: a plain session of the superuser acts as the owner's role.
    with psycopg.connect(
        hostile.conninfo, autocommit=True, options="-c statement_timeout=0"
    ) as plain:
        assert plain.execute("SELECT current_user::text").fetchone() == (hostile.role,)

    async def check() -> None:
        conn = await pg.connect(hostile.conninfo)
        try:
            caps = await pg.probe(conn)
            assert caps.user == "postgres"
            assert caps.is_superuser
            cur = await conn.execute(
                "SELECT current_user::text AS acting, current_setting('DateStyle') AS ds,"
                " now() AS now, interval '1 day 2 hours' AS i"
            )
            row = await cur.fetchone()
            assert row is not None
            assert row["acting"] == "postgres"
            assert row["ds"] == "ISO, MDY"
            await asyncio.sleep(1.5)  # longer than idle_session_timeout
            collector = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
            await collector.collect(conn)
            cur = await conn.execute("SELECT 1 AS slept FROM pg_sleep(0.1)")
            assert await cur.fetchone() == {"slept": 1}
        finally:
            await conn.close()
        action = await open_action_connection(hostile.conninfo, None)
        try:
            identity = await action.execute("SELECT 'public.t'::regclass::oid::bigint AS oid")
            oid = (await identity.fetchone() or {})["oid"]
            target = RelationTarget(oid=oid, schema="public", name="t", kind="table")
            outcome = await run_maintenance(
                action, plan_relation("analyze", target, standby=False), 3.0
            )
            assert outcome.ok, outcome.message
        finally:
            await action.close()

        # Through the database switcher: another database chosen from a connection to
        # the postgres database.
        home = await pg.connect(pg_cluster.conninfo())
        try:
            caps = await pg.probe(home)
            tables = TablesCollector(context(caps, pg_cluster.conninfo()))
            data = await tables.collect(
                home,
                await ActivityCollector(caps, frozenset()).collect(home),
                CatalogNeeds(database=hostile.dbname),
                due=True,
            )
            assert isinstance(data, TablesData)
            assert data.database == hostile.dbname
            assert "t" in {table.name for table in data.tables}
        finally:
            await tables.close()
            await home.close()

    asyncio.run(check())

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGTOP_LOG_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pgtop", hostile.conninfo, "--once", "activity"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_the_demo_server_is_reachable_by_its_owner_only() -> None:
    cluster = start_cluster(name="pgtop-private-test", private=True)
    try:
        assert cluster.password
        workdir = cluster.workdir
        assert workdir is not None
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
        assert cluster.host == str(workdir)
        # No TCP listener at all.
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", cluster.port))
        # On its socket, as its superuser, without the password: refused.
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(cluster.conninfo(), connect_timeout=5).close()
        with psycopg.connect(cluster.conninfo(), password=cluster.password) as conn:
            assert conn.execute("SELECT current_user::text").fetchone() == ("postgres",)
        # The password is in no file of the cluster.
        secret = cluster.password.encode()
        for path in workdir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert secret not in path.read_bytes(), path
        assert cluster.password not in cluster.conninfo()
    finally:
        cluster.destroy()


def test_the_demo_password_never_reaches_a_command_line(tmp_path: Path) -> None:
    """``pgtop --demo --once activity`` works end to end on the private server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGTOP_LOG_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pgtop", "--demo", "--once", "activity", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"admin-console"' in proc.stdout


# -- what a failed REINDEX CONCURRENTLY leaves behind ------------------------------------------


def _oid(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute("SELECT %s::regclass::oid::bigint", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _reindex(dsn: str, target: RelationTarget) -> Any:
    async def go() -> Any:
        runner = ActionRunner(dsn, None, 1.0)
        try:
            return await runner.run(plan_relation("reindex", target, standby=False))
        finally:
            await runner.close()

    return asyncio.run(go())


def _drop(dsn: str, target: RelationTarget) -> Any:
    async def go() -> Any:
        runner = ActionRunner(dsn, None, 3.0)
        try:
            return await runner.run(plan_relation("drop_invalid_index", target, standby=False))
        finally:
            await runner.close()

    return asyncio.run(go())


def test_an_index_another_session_builds_is_never_offered_nor_dropped(
    dsn: str, sessions: Any
) -> None:
    table = f"cic_{uuid.uuid4().hex[:8]}"
    admin = sessions.admin
    admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    admin.execute(f"INSERT INTO {table} SELECT g, g FROM generate_series(1, 1000) g")
    # Another session's CREATE INDEX CONCURRENTLY, held in progress by an old snapshot,
    # named like the index a REINDEX CONCURRENTLY would make.
    old = sessions.open("old-snapshot")
    old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    old.execute("SELECT count(*) FROM pg_class")
    builder = sessions.open("other-builder")
    build = sessions.run_in_background(
        builder, f"CREATE INDEX CONCURRENTLY {table}_pkey_ccnew ON {table} (v)"
    )
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_progress_create_index WHERE relid = %s::regclass)",
        [table],
    )
    pkey = RelationTarget(
        oid=_oid(admin, f"{table}_pkey"),
        schema="public",
        name=f"{table}_pkey",
        kind="index",
        table_oid=_oid(admin, table),
        table_name=table,
    )
    outcome = _reindex(dsn, pkey)
    assert not outcome.ok
    assert outcome.leftovers == (), outcome.message  # the other session's index is not ours

    # Its own leftover, now: the other build is done, a REINDEX fails on the old snapshot.
    old.execute("ROLLBACK")
    assert build.wait(20)
    assert build.error is None
    old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    old.execute("SELECT count(*) FROM pg_class")
    outcome = _reindex(dsn, pkey)
    assert not outcome.ok
    (leftover,) = outcome.leftovers
    assert leftover.name.startswith(f"{table}_pkey_ccnew")
    assert leftover.name != f"{table}_pkey_ccnew"
    # Another index build starts on the table before the drop is confirmed: nothing is
    # dropped while it runs.
    second = sessions.run_in_background(
        sessions.open("second-builder"), f"CREATE INDEX CONCURRENTLY {table}_v2 ON {table} (v)"
    )
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_progress_create_index WHERE relid = %s::regclass)",
        [table],
    )
    refused = _drop(dsn, leftover)
    assert not refused.ok
    assert "nothing done" in refused.message
    old.execute("ROLLBACK")
    assert second.wait(20)
    assert second.error is None
    dropped = _drop(dsn, leftover)
    assert dropped.ok, dropped.message
    left = admin.execute(
        "SELECT c.relname::text, i.indisvalid FROM pg_index i JOIN pg_class c "
        "ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY 1",
        [table],
    ).fetchall()
    assert left == [(f"{table}_pkey", True), (f"{table}_pkey_ccnew", True), (f"{table}_v2", True)]


# -- CVE-2022-1552 ------------------------------------------------------------------------------


def test_maintenance_of_another_roles_table_is_refused_where_it_is_unsafe() -> None:
    target = RelationTarget(oid=1, schema="s", name="t", kind="table", owner="mallory")
    for version in (130000, 130006, 140002):
        assert maintenance_runs_as_caller(version)
        for action in ("analyze", "vacuum", "reindex"):
            with pytest.raises(RefusedError, match="mallory"):
                plan_relation(
                    action, target, standby=False, server_version_num=version, role="postgres"
                )
        # Its own tables: allowed.
        own = replace(target, owner="postgres")
        plan_relation("analyze", own, standby=False, server_version_num=version, role="postgres")
    for version in (130007, 140003, 150000, 180000):
        plan_relation("analyze", target, standby=False, server_version_num=version, role="x")


# -- huge statement texts ---------------------------------------------------------------------


def test_a_huge_statement_is_read_as_a_bounded_prefix(
    new_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    """An unprivileged role's 30 MB statement (on a server of its own: with the rest of the
    suite, pg_stat_statements would soon evict an entry called once)."""
    cluster = new_cluster()
    cluster.psql("CREATE ROLE bulky LOGIN; CREATE EXTENSION pg_stat_statements")
    big = "SELECT 1 /* " + "x" * 30_000_000 + " */"
    with psycopg.connect(cluster.conninfo(user="bulky"), autocommit=True) as owner:
        owner.execute(big.encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGTOP_LOG_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgtop",
            cluster.conninfo(),
            "--once",
            "queries",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    (row,) = [r for r in rows if r["query"].startswith("SELECT $1 /* xxx")]
    assert len(row["query"]) == WHOLE_TEXT_LIMIT
    assert row["query_truncated"] is True
    assert all(not r["query_truncated"] for r in rows if r is not row)
