"""A session's detail, driven by keys against a real server: the progress of its command, its
statement's statistics, its plan on demand, and whom it blocks and waits for."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from helpers import screen_text, shows, wait_for
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from textual.widgets import OptionList

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.screens.session import SessionScreen
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 50)


def make_app(conninfo: str) -> PgTopApp:
    return PgTopApp(Settings(conninfo=conninfo, refresh=0.5))


def activity_table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#activity-table", KeyedTable)


async def open_detail(pilot: Any, app: PgTopApp, pid: int) -> SessionScreen:
    """The detail of ``pid``, opened from Activity with Enter."""
    await wait_for(
        pilot,
        lambda: pid in {row.key for row in activity_table(app).visible_rows},
        f"session {pid} listed",
    )
    assert activity_table(app).move_cursor_to_key(pid)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "the detail")
    screen = app.screen
    assert isinstance(screen, SessionScreen)
    assert screen.backend.pid == pid
    return screen


async def test_progress_statistics_and_plans_in_the_detail(
    fresh_db: str, make_role: Callable[[], str], sessions: Any
) -> None:
    db = str(conninfo_to_dict(fresh_db)["dbname"])
    table = f"big_{uuid.uuid4().hex[:10]}"
    ident = sql.Identifier(table)
    writer = sessions.open(dbname=db, application_name="open-writer")
    writer.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v text)").format(ident))
    writer.execute(
        sql.SQL("INSERT INTO {} SELECT g, g::text FROM generate_series(1, 1000) g").format(ident)
    )
    writer.execute("BEGIN")
    writer.execute(sql.SQL("INSERT INTO {} VALUES (-1, 'x')").format(ident))
    build = sessions.open(dbname=db, application_name="index-build")
    sessions.run_in_background(build, sql.SQL("CREATE INDEX CONCURRENTLY ON {} (v)").format(ident))

    sleeper = sessions.open(dbname=db, application_name="sleeper")
    for _ in range(3):
        sleeper.execute("SELECT pg_sleep(0.01)")
    sessions.run_in_background(sleeper, "SELECT pg_sleep(60.0)")

    # A statement calling a function of an unprivileged role.
    author = make_role()
    mine = sessions.open(dbname=db, user=author, application_name="author")
    mine.execute(
        sql.SQL(
            "CREATE FUNCTION {}.nap(float8) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep($1) $$"
        ).format(sql.Identifier(author))
    )
    sessions.run_in_background(mine, f"SELECT {author}.nap(60)")
    sessions.wait_until(
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE pid = ANY(%s) AND wait_event = 'PgSleep'",
        ([sleeper.info.backend_pid, mine.info.backend_pid],),
    )
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first snapshot")

        # The index build waits for the open writer: its phase, and the figures.
        await open_detail(pilot, app, build.info.backend_pid)
        await shows(
            pilot,
            "Progress",
            f"CREATE INDEX CONCURRENTLY public.{table} · waiting for writers before build",
            "lockers waited for 0 of 1 (0.0 %)",
        )
        # The writer commits: the detail follows the build on the next refresh.
        writer.execute("COMMIT")
        await wait_for(
            pilot,
            lambda: "waiting for writers before build" not in screen_text(app),
            "the build past its wait",
        )
        await pilot.press("escape")

        # The sleeper: its statement's entry, and this run against its mean.
        await open_detail(pilot, app, sleeper.info.backend_pid)
        text = await shows(pilot, "Statistics", "calls 3 · mean ", "x its mean of ")
        assert "rows 3 (1.0 per call)" in text
        assert "Progress" not in text
        # e: its plan, made as its role.
        await pilot.press("e")
        await shows(
            pilot,
            "Plan (EXPLAIN: planned, not executed)",
            "planned as role postgres, the role that runs it",
            "Result",
            timeout=30,
        )
        await pilot.press("escape")

        # A statement calling a function of another, unprivileged role is not planned.
        await open_detail(pilot, app, mine.info.backend_pid)
        await pilot.press("e")
        await shows(
            pilot,
            f"not planned: it reaches function {author}.nap(double precision) of role {author}",
            timeout=30,
        )
        await pilot.press("escape")


async def test_whom_it_blocks_and_waits_for_at_80x24(
    dsn: str, lock_chain: tuple[int, int, int]
) -> None:
    pa, pb, pc = lock_chain
    app = make_app(dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first snapshot")
        # The head of the chain blocks one session itself and two in all.
        first = await open_detail(pilot, app, pa)
        text = await shows(pilot, "Blocking  blocks 1 directly, 2 in total")
        assert re.search(rf"^ blocks +{pb} postgres +active ", text, re.M), text
        assert re.search(rf"^ blocks via {pb} +{pc} postgres +active ", text, re.M), text

        def blocked_line() -> str:
            lines = screen_text(app).splitlines()
            return next((line for line in lines if re.match(rf" blocks +{pb} ", line)), "")

        # The lines follow the refreshes: the blocked session's age goes on.
        before = blocked_line()
        await wait_for(
            pilot, lambda: blocked_line() not in ("", before), "its age brought up to date"
        )

        # Tab to the list, then Enter on the session it blocks through another.
        await pilot.press("tab")
        options = first.query_one("#detail-related", OptionList)
        await wait_for(pilot, lambda: app.focused is options, "the list focused")
        for _ in range(3):
            if options.highlighted_option and options.highlighted_option.id == str(pc):
                break
            await pilot.press("down")
        assert options.highlighted == 1
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, SessionScreen) and app.screen.backend.pid == pc,
            "the detail of the last in the chain",
        )
        text = await shows(pilot, f"Backend {pc}", "Blocking  waits for 1")
        assert re.search(rf"^ waits for +{pb} postgres +active ", text, re.M), text
        assert re.search(rf"^ behind, via {pb} +{pa} postgres +idle in transaction ", text, re.M)

        # Back to the head of the chain.
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is first, "the first detail again")
