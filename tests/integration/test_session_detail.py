"""A session's detail beyond its row, on staged real sessions: the progress of its command,
its statement's pg_stat_statements entry, its plan, and whom it blocks and waits for."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from collecting import dbname, monitor
from psycopg import sql as pgsql

from pgtop.collectors.activity import ActivityCollector
from pgtop.collectors.locks import related
from pgtop.collectors.plans import StatementPlan
from pgtop.collectors.session import Figures, SessionFigures
from pgtop.model import ActivitySnapshot, Backend, Capabilities

Connection = psycopg.AsyncConnection[dict[str, Any]]


async def activity(conn: Connection, caps: Capabilities) -> ActivitySnapshot:
    return await ActivityCollector(caps, frozenset({conn.info.backend_pid})).collect(conn)


async def backend_of(conn: Connection, caps: Capabilities, pid: int) -> Backend:
    snapshot = await activity(conn, caps)
    found = [b for b in snapshot.backends if b.pid == pid]
    assert found, f"pid {pid} is not in pg_stat_activity"
    return found[0]


async def figures_until(
    conn: Connection,
    caps: Capabilities,
    pid: int,
    condition: Callable[[Figures], bool],
    what: str,
    timeout: float = 60,
) -> Figures:
    """Read the session's figures as its detail does until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        figures = await SessionFigures(await backend_of(conn, caps, pid), caps).read(conn)
        if condition(figures):
            return figures
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen after {timeout}s: {what}; last: {figures}")
        time.sleep(0.1)


def big_table(conn: psycopg.Connection[Any], rows: int = 200_000) -> str:
    """A table of a few hundred pages that autovacuum leaves alone."""
    name = f"big_{uuid.uuid4().hex[:10]}"
    ident = pgsql.Identifier(name)
    conn.execute(
        pgsql.SQL(
            "CREATE TABLE {} (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)"
        ).format(ident)
    )
    conn.execute(
        pgsql.SQL("INSERT INTO {} SELECT g, md5(g::text) FROM generate_series(1, %s) g").format(
            ident
        ),
        (rows,),
    )
    conn.execute(pgsql.SQL("DELETE FROM {} WHERE id % 10 = 0").format(ident))
    return name


async def test_a_slow_vacuum_shows_its_progress(fresh_db: str, sessions: Any) -> None:
    db = dbname(fresh_db)
    work = sessions.open(dbname=db, application_name="slow-vacuum")
    table = big_table(work)
    # Every page costs a pause: the VACUUM crawls over the table.
    work.execute("SET vacuum_cost_delay = 20")
    work.execute("SET vacuum_cost_limit = 1")
    pid = work.info.backend_pid
    sessions.run_in_background(work, pgsql.SQL("VACUUM {}").format(pgsql.Identifier(table)))
    async with monitor(fresh_db) as (conn, caps):

        def scanning(f: Figures) -> bool:
            return bool(f.progress) and f.progress[0].figures[0].done > 0

        figures = await figures_until(conn, caps, pid, scanning, "heap blocks scanned")
        (progress,) = figures.progress
        assert progress.command == "VACUUM"
        assert progress.relation == f"public.{table}"
        assert progress.phase == "scanning heap"
        headline = progress.figures[0]
        assert headline.label == "heap blocks scanned"
        cur = await conn.execute(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int AS n",
            (f"public.{table}",),
        )
        row = await cur.fetchone()
        assert row is not None
        pages = row["n"]
        assert headline.total == pages
        assert 0 < headline.done < pages
        assert progress.share == pytest.approx(headline.done / pages)

        # Read again: it has moved on.
        later = await figures_until(
            conn,
            caps,
            pid,
            lambda f: bool(f.progress) and f.progress[0].figures[0].done > headline.done,
            "more blocks scanned",
        )
        assert later.progress[0].figures[0].total == pages


async def test_a_create_index_shows_its_progress(fresh_db: str, sessions: Any) -> None:
    db = dbname(fresh_db)
    writer = sessions.open(dbname=db, application_name="open-writer")
    table = big_table(writer, rows=1000)
    ident = pgsql.Identifier(table)
    writer.execute("BEGIN")
    writer.execute(pgsql.SQL("INSERT INTO {} VALUES (-1, 'x')").format(ident))
    build = sessions.open(dbname=db, application_name="index-build")
    pid = build.info.backend_pid
    sessions.run_in_background(
        build, pgsql.SQL("CREATE INDEX CONCURRENTLY ON {} (v)").format(ident)
    )
    async with monitor(fresh_db) as (conn, caps):

        def waiting(f: Figures) -> bool:
            return bool(f.progress) and f.progress[0].phase.startswith("waiting")

        figures = await figures_until(conn, caps, pid, waiting, "the build waiting for writers")
        (progress,) = figures.progress
        assert progress.command == "CREATE INDEX CONCURRENTLY"
        assert progress.relation == f"public.{table}"
        assert progress.phase == "waiting for writers before build"
        headline = progress.figures[0]
        assert (headline.label, headline.done, headline.total) == ("lockers waited for", 0, 1)
        assert progress.share == 0.0

        # The writer commits: the build goes on, and its figures follow.
        writer.execute("COMMIT")
        await figures_until(
            conn,
            caps,
            pid,
            lambda f: not f.progress or not f.progress[0].phase.startswith("waiting for writers"),
            "the build past its first wait",
        )

        # A session with no command that reports progress has none.
        idle = await SessionFigures(
            await backend_of(conn, caps, writer.info.backend_pid), caps
        ).read(conn)
        assert idle.progress == ()


async def test_the_statements_entry_of_a_running_sleep(fresh_db: str, sessions: Any) -> None:
    db = dbname(fresh_db)
    work = sessions.open(dbname=db, application_name="sleeper")
    for _ in range(3):
        work.execute("SELECT pg_sleep(0.01)")
    pid = work.info.backend_pid
    # 60.0, like 0.01, is a numeric constant: the same statement, the same query id.
    sessions.run_in_background(work, "SELECT pg_sleep(60.0)")
    sessions.wait_until(
        "SELECT query_id IS NOT NULL FROM pg_stat_activity "
        "WHERE pid = %s AND wait_event = 'PgSleep'",
        (pid,),
    )
    async with monitor(fresh_db) as (conn, caps):
        backend = await backend_of(conn, caps, pid)
        assert backend.query_id is not None
        figures = await SessionFigures(backend, caps).read(conn)
        assert figures.statement_note == ""
        entry = figures.statement
        assert entry is not None
        assert entry.queryid == backend.query_id
        assert (entry.user, entry.database) == (caps.user, db)
        assert entry.counters.calls == 3
        assert entry.counters.rows == 3
        assert entry.mean_exec_ms is not None
        assert 10 <= entry.mean_exec_ms < 1000
        assert entry.max_exec_ms is not None
        assert entry.max_exec_ms >= entry.mean_exec_ms

        # A statement that never ended before has no entry yet, and the reason says so.
        other = sessions.open(dbname=db, application_name="first-run")
        table = big_table(other, rows=10)
        sessions.run_in_background(
            other, pgsql.SQL("SELECT pg_sleep(60) FROM {} LIMIT 1").format(pgsql.Identifier(table))
        )
        sessions.wait_until(
            "SELECT query_id IS NOT NULL FROM pg_stat_activity "
            "WHERE pid = %s AND wait_event = 'PgSleep'",
            (other.info.backend_pid,),
        )
        first = await SessionFigures(
            await backend_of(conn, caps, other.info.backend_pid), caps
        ).read(conn)
        assert first.statement is None
        assert first.statement_note.startswith("no pg_stat_statements entry yet: it counts")


async def test_without_the_extension_the_detail_says_so(bare_db: str, sessions: Any) -> None:
    work = sessions.open(dbname=dbname(bare_db), application_name="sleeper")
    sessions.run_in_background(work, "SELECT pg_sleep(60)")
    pid = work.info.backend_pid
    sessions.wait_until(
        "SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = %s", (pid,)
    )
    async with monitor(bare_db) as (conn, caps):
        figures = await SessionFigures(await backend_of(conn, caps, pid), caps).read(conn)
        assert figures.statement is None
        assert figures.statement_note == (
            f"pg_stat_statements is not created in database '{dbname(bare_db)}'"
        )


async def test_the_running_statement_is_planned_as_its_role(
    fresh_db: str, make_role: Callable[[], str], sessions: Any
) -> None:
    """A running statement's plan, made as the session's role; refused when the statement
    calls a function of an unprivileged role."""
    db = dbname(fresh_db)
    author = make_role()
    mine = sessions.open(dbname=db, user=author, application_name="author")
    mine.execute(
        pgsql.SQL(
            "CREATE FUNCTION {}.nap(float8) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep($1) $$"
        ).format(pgsql.Identifier(author))
    )
    table = f"{author}.t"
    mine.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    mine.execute(f"INSERT INTO {table} SELECT g, g FROM generate_series(1, 100) g")
    reader = sessions.open(dbname=db, user=author, application_name="reader")
    # Sent with a parameter: pg_stat_activity shows $1, planned as a generic plan.
    sessions.run_in_background(reader, f"SELECT pg_sleep(60) FROM {table} WHERE id = %s", (1,))
    sessions.run_in_background(mine, f"SELECT {author}.nap(60)")
    for conn_ in (reader, mine):
        sessions.wait_until(
            "SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = %s",
            (conn_.info.backend_pid,),
        )
    async with monitor(fresh_db) as (conn, caps):
        version = caps.server_version_num
        running = await backend_of(conn, caps, reader.info.backend_pid)
        assert running.user == author
        assert running.query.endswith("WHERE id = $1")
        plan = await StatementPlan(running.query, version, author).read(conn)
        assert not plan.problem
        assert (plan.role, plan.parameters) == (author, 1)
        assert any(" on t" in line for line in plan.lines), plan.lines

        calling = await backend_of(conn, caps, mine.info.backend_pid)
        refused = await StatementPlan(calling.query, version, author).read(conn)
        assert not refused.lines
        assert f"function {author}.nap(double precision) of role {author}" in refused.problem
        assert "planning could run it" in refused.problem


async def test_whom_a_session_blocks_and_waits_for_along_a_chain(
    dsn: str, lock_chain: tuple[int, int, int]
) -> None:
    pa, pb, pc = lock_chain
    async with monitor(dsn) as (conn, caps):
        snapshot = await activity(conn, caps)
    top = related(snapshot.backends, pa)
    assert (top.waits_for, top.waits_behind) == ((), ())
    assert (top.blocks, top.blocks_through, top.blocks_total) == ((pb,), ((pc, pb),), 2)
    middle = related(snapshot.backends, pb)
    assert (middle.waits_for, middle.waits_behind) == ((pa,), ())
    assert (middle.blocks, middle.blocks_through) == ((pc,), ())
    bottom = related(snapshot.backends, pc)
    assert (bottom.waits_for, bottom.waits_behind) == ((pb,), ((pa, pb),))
    assert (bottom.blocks, bottom.blocks_total) == ((), 0)
