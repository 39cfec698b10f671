"""The Queries tab's data on real servers: readings, rates, marks, resets, plans, privileges."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from collecting import context, dbname, monitor, once_source, texts_of
from psycopg import sql as pgsql

from pgtop import pg, sql
from pgtop.cli import main
from pgtop.cluster import Cluster
from pgtop.collectors.plans import explain
from pgtop.collectors.statements import (
    Figures,
    Mode,
    StatementKey,
    StatementNeeds,
    StatementsCollector,
    StatementsSnapshot,
    StatementsUnavailable,
    StatementsUnavailableError,
    StatementText,
    is_own,
    mode_figures,
    privilege_notice,
)
from pgtop.once import print_once
from pgtop.reports import queries as queries_report

Connection = psycopg.AsyncConnection[dict[str, Any]]


def stage_table(conn: psycopg.Connection[Any], rows: int = 100) -> str:
    """A new table with ``rows`` rows; its name makes its statements unique in the cluster."""
    name = f"staged_{uuid.uuid4().hex[:10]}"
    conn.execute(
        pgsql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v text)").format(pgsql.Identifier(name))
    )
    conn.execute(
        pgsql.SQL("INSERT INTO {} SELECT g, 'v' || g FROM generate_series(1, %s) g").format(
            pgsql.Identifier(name)
        ),
        (rows,),
    )
    return name


def count_text(table: str) -> str:
    """How pg_stat_statements shows ``count_query``."""
    return f'SELECT count(*) FROM "{table}" WHERE id < $1'


def count_query(table: str) -> pgsql.Composed:
    return pgsql.SQL("SELECT count(*) FROM {} WHERE id < %s").format(pgsql.Identifier(table))


def run(conn: psycopg.Connection[Any], query: pgsql.Composed, times: int) -> None:
    for n in range(times):
        conn.execute(query, (n,))


async def collect(
    collector: StatementsCollector, conn: Connection, needs: StatementNeeds | None = None
) -> StatementsSnapshot:
    result = await collector.collect(conn, None, needs, due=True)
    assert isinstance(result, StatementsSnapshot), result
    return result


async def key_of(conn: Connection, snapshot: StatementsSnapshot, needle: str) -> StatementKey:
    """The key of the one statement whose text starts with ``needle``."""
    texts = await texts_of(conn, snapshot)
    found = [
        key
        for key, s in snapshot.current.statements.items()
        if s.queryid is not None and texts.get(s.queryid, "").startswith(needle)
    ]
    assert len(found) == 1, (needle, found)
    return found[0]


def figures(
    mode: Mode, snapshot: StatementsSnapshot, mark: Any = None
) -> dict[StatementKey, Figures]:
    result = mode_figures(mode, snapshot, mark)
    assert result is not None
    return result


def assert_not_negative(all_figures: dict[StatementKey, Figures]) -> None:
    for key, f in all_figures.items():
        values = (f.calls, f.exec_ms, f.rows, f.shared_blks_hit, f.shared_blks_read)
        assert min((*values, f.temp_blks_written, f.load or 0, f.mean_ms or 0)) >= 0, (key, f)


async def test_interval_mark_and_reset(fresh_db: str, sessions: Any) -> None:
    work = sessions.open(dbname=dbname(fresh_db))
    table = stage_table(work)
    query = count_query(table)
    run(work, query, 7)  # the entry exists before the first reading
    async with monitor(fresh_db) as (conn, caps):
        collector = StatementsCollector(context(caps))
        first = await collect(collector, conn)
        assert first.previous is None
        assert mode_figures(Mode.NOW, first, None) is None  # rates need two readings
        assert collector.interval < 5  # so the second reading comes soon

        run(work, query, 30)
        work.execute("SET work_mem = '64kB'")
        work.execute("SELECT g FROM generate_series(1, 100000) g ORDER BY g DESC")  # spills
        second = await collect(collector, conn)
        key = await key_of(conn, second, count_text(table))
        seconds = (second.collected_at - first.collected_at).total_seconds()
        now = figures(Mode.NOW, second)
        f = now[key]
        assert f.calls == 30
        assert f.rows == 30  # count(*): one row per call
        assert f.seconds == pytest.approx(seconds)
        assert f.per_second(f.calls) == pytest.approx(30 / seconds)
        assert f.exec_ms > 0
        assert f.load == pytest.approx(f.exec_ms / 1000 / seconds)
        assert f.mean_ms == pytest.approx(f.exec_ms / 30)
        assert f.shared_blks_hit + f.shared_blks_read >= 30
        assert not f.restarted
        sort_key = await key_of(conn, second, "SELECT g FROM generate_series")
        spilled = now[sort_key]
        assert spilled.temp_blks_written > 0
        temp_rate = spilled.per_second(spilled.temp_blks_written)
        assert temp_rate is not None
        assert temp_rate > 0
        assert collector.interval == 5

        # pgtop's own statements are recognized as such; the staged one is not
        statements = second.current.statements
        texts = await texts_of(conn, second)
        own = [s for s in statements.values() if is_own(s, texts.get(s.queryid or 0), caps.user)]
        own_texts = " ".join(texts[s.queryid or 0] for s in own)
        assert "pg_stat_statements" in own_texts
        assert not is_own(statements[key], texts[statements[key].queryid or 0], caps.user)

        # mark, run more: since-mark figures count from the mark
        mark = second.current
        run(work, query, 12)
        third = await collect(collector, conn)
        assert figures(Mode.MARK, third, mark)[key].calls == 12
        assert figures(Mode.NOW, third)[key].calls == 12
        run(work, query, 5)
        fourth = await collect(collector, conn)
        since = figures(Mode.MARK, fourth, mark)[key]
        assert since.calls == 17
        assert since.seconds == pytest.approx(
            (fourth.collected_at - mark.collected_at).total_seconds()
        )
        assert figures(Mode.NOW, fourth)[key].calls == 5
        assert figures(Mode.LIFETIME, fourth)[key].calls == 7 + 30 + 12 + 5

        # a reset of the extension: counters restart, nothing goes negative
        work.execute("SELECT pg_stat_statements_reset()")
        run(work, query, 3)
        fifth = await collect(collector, conn)
        now = figures(Mode.NOW, fifth)
        assert now[key].calls == 3
        assert now[key].restarted
        assert_not_negative(now)
        since_mark = figures(Mode.MARK, fifth, mark)
        assert since_mark[key].calls == 3
        assert_not_negative(since_mark)
        assert fifth.current.statements[key].counters.calls == 3


async def test_texts_are_fetched_only_for_the_statements_asked_for(
    fresh_db: str, sessions: Any
) -> None:
    work = sessions.open(dbname=dbname(fresh_db))
    table = stage_table(work)
    run(work, count_query(table), 2)
    other = pgsql.SQL("SELECT v FROM {} WHERE id = %s").format(pgsql.Identifier(table))
    run(work, other, 2)

    def text_reads() -> int:
        row = work.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE query LIKE '%%SELECT DISTINCT ON (s.queryid) s.queryid%%' "
            "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        assert row is not None
        return int(row[0])

    async with monitor(fresh_db) as (conn, caps):
        collector = StatementsCollector(context(caps))
        plain = await collect(collector, conn)
        assert plain.texts == {}  # nothing on screen: no text read
        assert text_reads() == 0
        by_text = {}
        ids = [s.queryid for s in plain.current.statements.values() if s.queryid is not None]
        for queryid in ids:
            request = StatementText(queryid, plain.extension_version, plain.extension_schema)
            got = await request.read(conn)
            assert got is not None
            text, cut = got
            assert not cut
            by_text[text] = queryid
        wanted = by_text[count_text(table)]
        second = by_text[f'SELECT v FROM "{table}" WHERE id = $1']
        reads = text_reads()

        needs = StatementNeeds(texts=frozenset({wanted}))
        snapshot = await collect(collector, conn, needs)
        assert set(snapshot.texts) == {wanted}
        assert table in snapshot.texts[wanted]
        assert text_reads() == reads + 1

        again = await collect(collector, conn, needs)  # cached: not read again
        assert set(again.texts) == {wanted}
        assert text_reads() == reads + 1

        more = await collect(collector, conn, StatementNeeds(texts=frozenset({wanted, second})))
        assert set(more.texts) == {wanted, second}
        assert text_reads() == reads + 2


async def test_not_preloaded(new_cluster: Callable[..., Cluster]) -> None:
    cluster = new_cluster(settings={"shared_preload_libraries": ""})
    cluster.psql("CREATE EXTENSION pg_stat_statements; CREATE ROLE plain LOGIN")
    # A superuser reads shared_preload_libraries: the probe already knows.
    async with monitor(cluster.conninfo()) as (conn, caps):
        assert caps.pgss_preloaded is False
        collector = StatementsCollector(context(caps))
        result = await collector.collect(conn)
        assert isinstance(result, StatementsUnavailable)
        assert "shared_preload_libraries" in result.remedy
        assert "restart" in result.remedy
    # Without pg_read_all_settings the probe cannot tell; the first reading finds out.
    async with monitor(cluster.conninfo(user="plain")) as (conn, caps):
        assert caps.pgss_preloaded is None
        assert caps.pgss_version is not None
        collector = StatementsCollector(context(caps))
        result = await collector.collect(conn)
        assert isinstance(result, StatementsUnavailable)
        assert "shared_preload_libraries" in result.remedy
        await conn.close()
        # Not retried on every poll: no statement is sent (the connection is closed).
        assert await collector.collect(conn) == result


async def test_not_created_is_explained_and_looked_for_again(
    bare_db: str, pg_cluster: Cluster
) -> None:
    async with monitor(bare_db) as (conn, caps):
        assert caps.pgss_version is None
        collector = StatementsCollector(context(caps))
        result = await collector.collect(conn)
        assert isinstance(result, StatementsUnavailable)
        assert "CREATE EXTENSION pg_stat_statements" in result.remedy
        assert dbname(bare_db) in result.reason
        await conn.close()
        assert await collector.collect(conn) == result  # no statement sent
    async with monitor(bare_db) as (conn, caps):
        collector = StatementsCollector(context(caps))
        assert isinstance(await collector.collect(conn), StatementsUnavailable)
        pg_cluster.psql("CREATE EXTENSION pg_stat_statements", dbname=dbname(bare_db))
        assert isinstance(await collector.collect(conn), StatementsUnavailable)  # not yet due
        collector.recheck_every = 0
        found = await collector.collect(conn)
        assert isinstance(found, StatementsSnapshot)
        assert found.current.statements


@pytest.fixture
def plain_role(pg_cluster: Cluster) -> Iterator[str]:
    """A login role without pg_read_all_stats; dropped afterwards."""
    name = f"plain_{uuid.uuid4().hex[:8]}"
    pg_cluster.psql(f'CREATE ROLE "{name}" LOGIN')
    try:
        yield name
    finally:
        pg_cluster.psql(f'DROP ROLE IF EXISTS "{name}"')


async def test_a_role_without_read_all_stats(
    fresh_db: str, sessions: Any, plain_role: str, pg_cluster: Cluster
) -> None:
    db = dbname(fresh_db)
    work = sessions.open(dbname=db)
    table = stage_table(work)
    run(work, count_query(table), 4)  # the superuser's statement
    mine = sessions.open(dbname=db, user=plain_role)
    mine.execute("SELECT 41 + %s", (1,))
    async with monitor(pg_cluster.conninfo(db, user=plain_role)) as (conn, caps):
        assert not caps.sees_all_queries
        collector = StatementsCollector(context(caps))
        snapshot = await collect(collector, conn)
        notice = privilege_notice(snapshot)
        assert "pg_read_all_stats" in notice
        assert "pg_monitor" in notice
        assert plain_role in notice
        hidden = [s for s in snapshot.current.statements.values() if s.hidden]
        assert hidden
        assert {s.user for s in hidden} >= {pg_cluster.superuser}
        assert snapshot.hidden_entries >= 2
        own = [s for s in snapshot.current.statements.values() if s.user == plain_role]
        ids = [s.queryid for s in own if s.queryid is not None]
        assert len(ids) == len(own)  # this role's own statements keep their queryid
        texts = await texts_of(conn, snapshot)
        assert any(text.startswith("SELECT $2 + $1") for text in texts.values()), texts


async def test_explain(fresh_db: str, sessions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    work = sessions.open(dbname=dbname(fresh_db))
    table = stage_table(work, rows=1000)
    run(work, pgsql.SQL("SELECT v FROM {} WHERE id = %s").format(pgsql.Identifier(table)), 3)
    async with monitor(fresh_db) as (conn, caps):
        version = caps.server_version_num
        me = caps.user
        collector = StatementsCollector(context(caps))
        snapshot = await collect(collector, conn)
        key = await key_of(conn, snapshot, f'SELECT v FROM "{table}"')
        texts = await texts_of(conn, snapshot)
        normalized = texts[key[2] or 0]
        assert "$1" in normalized
        settings = (
            "SELECT current_setting('statement_timeout') AS st, "
            "current_setting('transaction_read_only') AS ro, "
            "current_setting('plan_cache_mode') AS pcm, "
            "current_setting('search_path') AS path, current_user AS me, "
            "(SELECT count(*) FROM pg_prepared_statements) AS prepared"
        )
        before = await (await conn.execute(settings)).fetchone()
        assert before is not None
        assert (before["st"], before["ro"], before["me"], before["prepared"]) == (
            "5s",
            "off",
            me,
            0,
        )

        # A generic plan on every version: $1 is planned without a value.
        plan = await explain(conn, normalized, version, me)
        assert not plan.problem
        assert plan.parameters == 1
        assert plan.role == me
        assert any(f"Index Scan using {table}_pkey" in line for line in plan.lines), plan.lines
        assert any("$1" in line for line in plan.lines)

        plain = await explain(conn, f"SELECT count(*) FROM {table}", version, me)
        assert not plain.problem
        assert plain.parameters == 0
        assert any("Aggregate" in line for line in plain.lines)
        # The check is bounded: the statement, the table, its primary key and its index.
        monkeypatch.setattr(sql, "REACH_LIMIT", 3)
        bounded = await explain(conn, f"SELECT count(*) FROM {table}", version, me)
        assert bounded.problem == "it reaches more than 3 objects, more than pgtop checks"
        monkeypatch.undo()

        # Planned, never executed: nothing is inserted or dropped.
        insert = await explain(
            conn, f"INSERT INTO {table} (id) SELECT max(id) + 1 FROM {table}", version, me
        )
        assert any("Insert on" in line for line in insert.lines)
        two = await explain(conn, f"SELECT 1; DROP TABLE {table}", version, me)
        assert "cannot insert multiple commands" in two.problem
        assert not two.lines
        row = work.execute(
            pgsql.SQL("SELECT count(*) FROM {}").format(pgsql.Identifier(table))
        ).fetchone()
        assert row == (1000,)

        utility = await explain(conn, f"VACUUM {table}", version, me)
        assert utility.problem.startswith("VACUUM statements have no plan")
        create = await explain(conn, f"CREATE TABLE copy AS SELECT * FROM {table}", version, me)
        assert create.problem.startswith("CREATE TABLE AS is not planned")
        syntax = await explain(conn, "SELECT FROM WHERE", version, me)
        assert "syntax error" in syntax.problem
        # PostgreSQL 13 has no SQL-standard function bodies to check a statement with.
        old = await explain(conn, f"SELECT count(*) FROM {table}", 130000, me)
        assert "PostgreSQL 13" in old.problem
        assert not old.lines

        # A table locked by another session: a short wait, then a clear message.
        locker = sessions.open(dbname=dbname(fresh_db), autocommit=False)
        locker.execute(
            pgsql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(pgsql.Identifier(table))
        )
        started = time.monotonic()
        locked = await explain(conn, f"SELECT count(*) FROM {table}", version, me)
        assert "locked by another session" in locked.problem
        assert time.monotonic() - started < 3
        locker.rollback()

        # The monitoring connection is left as it was: autocommit, outside a transaction,
        # with its own settings, its own role, and no prepared statement left behind.
        assert conn.autocommit
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert await (await conn.execute(settings)).fetchone() == before


# -- plans of other roles' statements ----------------------------------------------------------
# An unprivileged role (the author) plants code that planning would run, and pgtop's
# superuser plans the author's statements. What the planted code did is seen from the
# notices it raises on pgtop's connection: it says which role it ran as, after trying to
# RESET ROLE (which gets pgtop's superuser back unless something stops it).

TRAP = """
CREATE FUNCTION {s}.escalate() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        RESET ROLE;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'pgtop-test: RESET ROLE refused';
    END;
    RAISE NOTICE 'pgtop-test: ran as %', current_user;
    RETURN 1;
END $$;
CREATE FUNCTION {s}.evil() RETURNS int IMMUTABLE LANGUAGE plpgsql
    AS $$ BEGIN RETURN {s}.escalate(); END $$;
CREATE FUNCTION {s}.evil_equal(int, int) RETURNS boolean IMMUTABLE LANGUAGE plpgsql
    AS $$ BEGIN RETURN {s}.escalate() = 1; END $$;
CREATE TABLE {s}.t (id int PRIMARY KEY, v int);
"""

# Where the trap is, the author's statement (run with 1 for %s: pg_stat_statements shows
# $1), who runs it, and what the reason names it was reached through. Each is planted so
# that planning without the check runs it (folded: it has no argument).
TRAPS: dict[str, tuple[str, str, str, str]] = {
    "in the statement": ("", "SELECT * FROM {s}.t WHERE id = {s}.evil()", "author", ""),
    "next to a $1": ("", "SELECT * FROM {s}.t WHERE id = %s AND v = {s}.evil()", "author", ""),
    "in a view": (
        "CREATE VIEW {s}.v AS SELECT id FROM {s}.t WHERE v = {s}.evil()",
        "SELECT * FROM {s}.v WHERE id = %s",
        "author",
        "rule _RETURN on view",
    ),
    "behind a superuser's operator": (
        "CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = {s}.evil_equal)",
        "SELECT * FROM {s}.t WHERE id = %s AND pi()::int OPERATOR(public.===) pi()::int",
        "author",
        "operator public.===(integer,integer)",
    ),
    "in a row-level security policy": (
        "ALTER TABLE {s}.t ENABLE ROW LEVEL SECURITY; ALTER TABLE {s}.t FORCE ROW LEVEL SECURITY;"
        " CREATE POLICY p ON {s}.t USING (v = {s}.evil())",
        "SELECT * FROM {s}.t WHERE id = %s",
        "author",
        "policy p on table",
    ),
    "in a column default": (
        "ALTER TABLE {s}.t ALTER v SET DEFAULT {s}.evil()",
        "INSERT INTO {s}.t (id) VALUES (%s)",
        "author",
        "default value for column v",
    ),
    "in an index expression": (
        "CREATE INDEX ON {s}.t ((v + {s}.evil()))",
        "SELECT * FROM {s}.t WHERE id = %s",
        "author",
        "index",
    ),
    "in an index, of pgtop's own statement": (
        "CREATE INDEX ON {s}.t ((v + {s}.evil()))",
        "SELECT * FROM {s}.t WHERE id = %s",
        "pgtop",
        "index",
    ),
}
_SUPERUSER_SETUP = ("CREATE OPERATOR",)


def compose(template: str, schema: str) -> pgsql.Composed:
    return pgsql.SQL(template).format(s=pgsql.Identifier(schema))


def server_notices(conn: Connection) -> list[str]:
    """Every notice the server sends on ``conn`` from now on."""
    notices: list[str] = []
    conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
    return notices


async def planned_text(conn: Connection, text: str) -> tuple[str, str]:
    """``text`` as pg_stat_statements shows it in this database, and the role that ran it.

    Read by text, not by queryid: fresh databases staged alike get the same OIDs, so their
    statements can share a queryid.
    """
    cur = await conn.execute(
        "SELECT s.query, r.rolname FROM public.pg_stat_statements s"
        " JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid"
        " WHERE d.datname = current_database() AND s.query = %s",
        (text,),
    )
    rows = await cur.fetchall()
    assert len(rows) == 1, (text, rows)
    return rows[0]["query"], rows[0]["rolname"]


@pytest.mark.parametrize("trap", list(TRAPS))
async def test_planning_never_runs_code_of_another_role(
    fresh_db: str, sessions: Any, make_role: Callable[[], str], trap: str
) -> None:
    setup, statement, runner, through = TRAPS[trap]
    db = dbname(fresh_db)
    author = make_role()
    mine = sessions.open(dbname=db, user=author)
    mine.execute(compose(TRAP, author))
    superuser = sessions.open(dbname=db)
    if setup:
        (superuser if setup.startswith(_SUPERUSER_SETUP) else mine).execute(compose(setup, author))
    who = mine if runner == "author" else superuser
    query = compose(statement, author)
    who.execute(query, (1,) if "%s" in statement else None)
    sent = query.as_string(who).replace("%s", "$1")
    async with monitor(fresh_db) as (conn, caps):
        text, role = await planned_text(conn, sent)
        assert role == (author if who is mine else caps.user)
        notices = server_notices(conn)
        plan = await explain(conn, text, caps.server_version_num, role)
        assert not plan.lines
        assert f"function {author}.evil" in plan.problem
        assert f"of role {author}" in plan.problem
        assert "planning could run it" in plan.problem
        if through:
            assert f"(through {through}" in plan.problem
        else:
            assert "through" not in plan.problem
        # Never ran, not even as the author: no notice of it.
        assert not [n for n in notices if n.startswith("pgtop-test")], notices
        cur = await conn.execute("SELECT count(*) AS n FROM pg_prepared_statements")
        assert await cur.fetchone() == {"n": 0}


async def test_code_the_check_cannot_see_runs_only_as_the_statements_role(
    fresh_db: str, sessions: Any, make_role: Callable[[], str]
) -> None:
    """A superuser's function with a string body is trusted, but PostgreSQL records nothing
    of what that body calls: here, the author's function. Planning runs it; it must run as
    the author, unable to RESET ROLE to pgtop's superuser."""
    db = dbname(fresh_db)
    author = make_role()
    sessions.open(dbname=db, user=author).execute(compose(TRAP, author))
    sessions.open(dbname=db).execute(
        compose(
            "CREATE FUNCTION public.trusted() RETURNS int IMMUTABLE LANGUAGE sql"
            " AS $$ SELECT {s}.evil() $$",
            author,
        )
    )
    text = compose("SELECT * FROM {s}.t WHERE id = public.trusted()", author)
    async with monitor(fresh_db) as (conn, caps):
        notices = server_notices(conn)
        plan = await explain(conn, text.as_string(conn), caps.server_version_num, author)
        assert plan.role == author
        assert any("Index Scan using t_pkey on t" in line for line in plan.lines), plan
        ran = [n for n in notices if n.startswith("pgtop-test")]
        assert ran == ["pgtop-test: RESET ROLE refused", f"pgtop-test: ran as {author}"]


async def test_a_statement_is_planned_as_the_role_that_ran_it(
    fresh_db: str, sessions: Any, make_role: Callable[[], str], pg_cluster: Cluster
) -> None:
    db = dbname(fresh_db)
    author, bystander = make_role(), make_role()
    mine = sessions.open(dbname=db, user=author)
    mine.execute(compose("CREATE TABLE {s}.secret (id int PRIMARY KEY, v text)", author))
    mine.execute(compose("GRANT USAGE ON SCHEMA {s} TO ", author) + pgsql.Identifier(bystander))
    query = compose("SELECT count(*) FROM {s}.secret WHERE id < %s", author)
    mine.execute(query, (5,))
    sent = query.as_string(mine).replace("%s", "$1")
    async with monitor(fresh_db) as (conn, caps):
        version = caps.server_version_num
        text, role = await planned_text(conn, sent)
        assert role == author
        plan = await explain(conn, text, version, author)
        assert plan.role == author
        assert plan.parameters == 1  # a generic plan, on 15 as on 18
        assert any("secret" in line for line in plan.lines), plan
        assert any("$1" in line for line in plan.lines)
        # The same text as a role that may not read the table: refused, though pgtop's
        # own role (a superuser) could read it.
        refused = await explain(conn, text, version, bystander)
        assert not refused.lines
        assert f"as role {bystander}" in refused.problem
        assert "permission denied for table secret" in refused.problem

        # What pgtop ran as the author to plan it is recorded under the author's role, and
        # still known as pgtop's own; the author's statement is not.
        collector = StatementsCollector(context(caps))
        snapshot = await collect(collector, conn)
        authors = [s for s in snapshot.current.statements.values() if s.user == author]
        texts = await texts_of(conn, snapshot)
        own = {texts[s.queryid or 0]: is_own(s, texts[s.queryid or 0], caps.user) for s in authors}
        assert own[text] is False
        planning = [t for t in own if "pgtop_" in t]
        assert any(t.startswith("CREATE FUNCTION pg_temp.pgtop_reach(") for t in planning)
        assert any(t.startswith("SELECT * FROM pg_temp.pgtop_explain(") for t in planning)
        assert all(own[t] for t in planning), {t: own[t] for t in planning}

    # pgtop logged in as a role that may not act as the author: no plan, and why.
    async with monitor(pg_cluster.conninfo(db, user=bystander)) as (conn, caps):
        plan = await explain(conn, text, caps.server_version_num, author)
        assert not plan.lines
        assert plan.problem.startswith(f"pgtop's role may not act as {author}")


async def test_what_pgtop_cannot_check_is_not_planned(
    fresh_db: str,
    sessions: Any,
    make_role: Callable[[], str],
    pg_cluster: Cluster,
    new_cluster: Callable[..., Cluster],
) -> None:
    db = dbname(fresh_db)
    author = make_role()
    async with monitor(fresh_db) as (conn, caps):
        version = caps.server_version_num
        assert (await explain(conn, "SELECT 1", version, author)).lines
        # An event trigger running another role's function would run on pgtop's checks.
        mine = sessions.open(dbname=db, user=author)
        mine.execute(
            compose(
                "CREATE FUNCTION {s}.on_ddl() RETURNS event_trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RAISE NOTICE 'pgtop-test: event trigger ran'; END $$",
                author,
            )
        )
        superuser = sessions.open(dbname=db)
        superuser.execute(
            compose(
                "CREATE EVENT TRIGGER on_ddl ON ddl_command_start EXECUTE FUNCTION {s}.on_ddl()",
                author,
            )
        )
        notices = server_notices(conn)
        plan = await explain(conn, "SELECT 1", version, caps.user)
        assert not plan.lines
        assert plan.problem.startswith(f"event trigger on_ddl runs function {author}.on_ddl()")
        assert not notices
        superuser.execute("ALTER EVENT TRIGGER on_ddl DISABLE")
        assert (await explain(conn, "SELECT 1", version, caps.user)).lines

        # Without the TEMP privilege there is no temporary function to check with.
        superuser.execute(
            pgsql.SQL("REVOKE TEMP ON DATABASE {} FROM PUBLIC").format(pgsql.Identifier(db))
        )
        plan = await explain(conn, "SELECT 1", version, author)
        assert not plan.lines
        assert plan.problem.startswith(f"role {author} may not create temporary objects")
        assert "TEMP" in plan.problem
        gone = await explain(conn, "SELECT 1", version, "no_such_role")
        assert gone.problem == "role no_such_role no longer exists"

    # A standby cannot create temporary functions.
    standby = new_cluster()
    standby.stop()
    signal = standby.datadir / "standby.signal"
    signal.touch()
    owner = standby.datadir.stat()
    os.chown(signal, owner.st_uid, owner.st_gid)
    standby.start()
    async with monitor(standby.conninfo()) as (conn, caps):
        assert caps.is_standby
        plan = await explain(conn, "SELECT 1", caps.server_version_num, caps.user)
        assert not plan.lines
        assert plan.problem.startswith("this server is a standby")


# Extension versions each server can create, and the pgtop variants they select.
EXTENSION_VERSIONS = ["1.4", "1.8", "1.9", "1.10", "1.11", "1.12"]


def test_every_extension_variant_is_exercised() -> None:
    tested = {tuple(int(p) for p in v.split(".")) for v in EXTENSION_VERSIONS}
    for query in sql.EXTENSION_REGISTRY.values():
        for minimum, _ in query.variants:
            assert any(
                v >= minimum and query.sql(v, "s") == query.sql(minimum, "s") for v in tested
            ), (
                query.name,
                minimum,
            )


@pytest.mark.parametrize("extension_version", EXTENSION_VERSIONS)
async def test_the_variant_follows_the_installed_extension(
    pg_cluster: Cluster, sessions: Any, extension_version: str
) -> None:
    available = pg_cluster.psql(
        "SELECT version FROM pg_available_extension_versions WHERE name = 'pg_stat_statements'"
    ).split()
    if extension_version not in available:
        pytest.skip(f"this server cannot create pg_stat_statements {extension_version}")
    name = f"pgtop_v{extension_version.replace('.', '_')}_{uuid.uuid4().hex[:6]}"
    pg_cluster.psql(f'CREATE DATABASE "{name}"')
    try:
        pg_cluster.psql(
            f"CREATE EXTENSION pg_stat_statements VERSION '{extension_version}'", dbname=name
        )
        work = sessions.open(dbname=name)
        table = stage_table(work)
        query = count_query(table)
        run(work, query, 2)
        async with monitor(pg_cluster.conninfo(name)) as (conn, caps):
            assert caps.pgss_version == extension_version
            collector = StatementsCollector(context(caps))
            await collect(collector, conn)
            run(work, query, 6)
            snapshot = await collect(collector, conn)
            key = await key_of(conn, snapshot, count_text(table))
            assert figures(Mode.NOW, snapshot)[key].calls == 6
            s = snapshot.current.statements[key]
            version = tuple(int(p) for p in extension_version.split("."))
            c = s.counters
            assert c.exec_ms > 0  # total_time before 1.8, total_exec_time after
            assert (s.toplevel is None) == (version < (1, 9))
            assert (c.plans is None) == (version < (1, 8))
            assert (c.wal_records is None) == (version < (1, 8))
            assert (c.jit_functions is None) == (version < (1, 10))
            assert (c.temp_blk_read_ms is None) == (version < (1, 10))
            assert (c.local_blk_read_ms is None) == (version < (1, 11))
            assert (s.stats_since is None) == (version < (1, 11))
            assert (c.wal_buffers_full is None) == (version < (1, 12))
            assert (snapshot.current.stats_reset is None) == (version < (1, 9))
            # A session's detail finds the same entry by its query id.
            entry = sql.SESSION_STATEMENT.sql(version, caps.pgss_schema or "public")
            params = {"queryid": key[2], "user": caps.user, "database": name}
            rows = await (await conn.execute(entry, params)).fetchall()
            assert [(r["queryid"], r["calls"]) for r in rows] == [(key[2], 8)]
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_once_report(
    fresh_db: str, sessions: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    work = sessions.open(dbname=dbname(fresh_db))
    table = stage_table(work)
    run(work, count_query(table), 3)
    async with once_source(fresh_db) as source:
        report = await queries_report.report(source)
        times = [row["total_exec_ms"] for row in report.rows]
        assert times == sorted(times, reverse=True)
        staged = [row for row in report.rows if row["query"] == count_text(table)]
        assert len(staged) == 1
        row = staged[0]
        assert row["calls"] == 3
        assert row["query"].startswith("SELECT count(*) FROM")
        for field in (
            "queryid",
            "query",
            "calls",
            "total_exec_ms",
            "mean_exec_ms",
            "rows",
            "shared_blks_read",
            "temp_blks_written",
        ):
            assert field in row
        assert row["mean_exec_ms"] == pytest.approx(row["total_exec_ms"] / 3)

    # Each report is read by a source of its own, as each --once run makes one.
    async with once_source(fresh_db) as source:
        assert await print_once(source, "queries", "json") == 0
        document = json.loads(capsys.readouterr().out)
        assert document["tab"] == "queries"
        assert any(table in r["query"] for r in document["rows"])
    async with once_source(fresh_db) as source:
        assert await print_once(source, "queries", "text") == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0].split()[:4] == ["QUERYID", "USER", "DATABASE", "CALLS"]


async def test_once_report_without_the_extension_says_why(bare_db: str) -> None:
    async with once_source(bare_db) as source:
        with pytest.raises(StatementsUnavailableError, match="CREATE EXTENSION"):
            await queries_report.report(source)


def test_once_queries_exit_code_without_the_extension(
    bare_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--once", "queries", bare_db]) == pg.EXIT_USAGE
    assert "CREATE EXTENSION pg_stat_statements" in capsys.readouterr().err
