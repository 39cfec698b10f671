"""The Queries tab driven by keys against a real server with a staged workload."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from helpers import screen_text, shows, wait_for
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from textual.widgets import TabbedContent

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.panes.queries import QueriesPane
from pgtop.screens.statement import StatementScreen
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 40)


def make_app(conninfo: str) -> PgTopApp:
    return PgTopApp(Settings(conninfo=conninfo, refresh=0.5))


def table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#queries-table", KeyedTable)


def rows_with(app: PgTopApp, text: str) -> list[Any]:
    return [row for row in table(app).visible_rows if text in row.cells[-1]]


@pytest.fixture
def workload(fresh_db: str, sessions: Any) -> Iterator[str]:
    """A statement without constants run over and over on its own table; its text."""
    db = str(conninfo_to_dict(fresh_db)["dbname"])
    conn = sessions.open(application_name="queries-load", dbname=db)
    name = f"staged_{uuid.uuid4().hex[:10]}"
    conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(name)))
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT generate_series(1, 500)").format(sql.Identifier(name))
    )
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.01):
            try:
                conn.execute(query)
            except psycopg.Error:
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f'SELECT count(*) FROM "{name}"'
    finally:
        stop.set()
        thread.join(5)


async def test_modes_filter_and_detail_with_plan(fresh_db: str, workload: str) -> None:
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first snapshot")
        await pilot.press("3")
        assert app.screen.query_one(TabbedContent).active == "queries"
        # now (the default): the staged statement with a rate
        await shows(pilot, "mode now (m)", "CALLS/S", "TIME/S")
        await wait_for(pilot, lambda: bool(rows_with(app, workload)), "the staged statement")
        row = rows_with(app, workload)[0]
        calls_per_second = float(row.cells[2])
        assert calls_per_second > 0
        await shows(pilot, workload, "per second")

        # m cycles the modes, each named on screen
        await pilot.press("m")
        await shows(pilot, "mode since mark (m)", "since the mark at")
        await pilot.press("m")
        await shows(pilot, "mode lifetime (m)", "cumulative")
        assert "CALLS/S" not in screen_text(app)
        await wait_for(pilot, lambda: bool(rows_with(app, workload)), "lifetime row")
        await pilot.press("m")
        await shows(pilot, "mode now (m)")

        # x sets a mark and shows what happened since
        await pilot.press("x")
        await shows(pilot, "mode since mark (m)")
        await wait_for(
            pilot,
            lambda: any(r.cells[2] not in ("", "0") for r in rows_with(app, workload)),
            "calls since the mark",
        )

        # / filters on the text
        table_name = workload.split('"')[1]
        await pilot.press("slash", *table_name, "enter")
        await wait_for(
            pilot,
            lambda: [r.cells[-1] for r in table(app).visible_rows] == [workload],
            "only the staged statement",
        )

        # Enter: the statement in full, its counters, and its plan
        assert table(app).move_cursor_to_key(rows_with(app, workload)[0].key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StatementScreen), "detail screen")
        await shows(
            pilot,
            workload,
            "Counters: since mark",
            "lifetime",
            "execution time",
            "planned as role postgres, the role that ran it",
            "Aggregate",
            f"Seq Scan on {table_name}",
            timeout=30,
        )
        await pilot.press("escape")
        assert not isinstance(app.screen, StatementScreen)


async def test_a_database_without_the_extension_is_explained(bare_db: str) -> None:
    app = make_app(bare_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first snapshot")
        await pilot.press("3")
        name = str(conninfo_to_dict(bare_db)["dbname"])
        await shows(
            pilot,
            f"pg_stat_statements is not created in database '{name}'",
            "CREATE EXTENSION pg_stat_statements",
        )
        pane = app.screen.query_one(QueriesPane)
        assert not pane.table.display


async def test_a_statement_with_parameters_has_a_generic_plan(fresh_db: str, sessions: Any) -> None:
    """A normalised statement ($1) is planned on every supported version: prepared with its
    parameter types left to the server, then explained as a generic plan."""
    db = str(conninfo_to_dict(fresh_db)["dbname"])
    conn = sessions.open(application_name="queries-params", dbname=db)
    name = f"staged_{uuid.uuid4().hex[:10]}"
    conn.execute(
        sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v int)").format(sql.Identifier(name))
    )
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT g, g FROM generate_series(1, 1000) g").format(
            sql.Identifier(name)
        )
    )
    conn.execute("ANALYZE")
    query = sql.SQL("SELECT v FROM {} WHERE id = %s").format(sql.Identifier(name))
    normalized = f'SELECT v FROM "{name}" WHERE id = $1'
    # Run over and over: other tests on the same server reset pg_stat_statements.
    stop = threading.Event()

    def loop() -> None:
        value = 0
        while not stop.wait(0.05):
            value += 1
            try:
                conn.execute(query, (value % 1000,))
            except psycopg.Error:
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first snapshot")
        await pilot.press("3")
        await pilot.press("m", "m")  # lifetime: every statement, with or without calls now
        await shows(pilot, "mode lifetime (m)")
        await pilot.press("slash", *name, "enter")  # its table's statements only
        await wait_for(pilot, lambda: bool(rows_with(app, normalized)), "the staged statement")
        assert table(app).move_cursor_to_key(rows_with(app, normalized)[0].key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StatementScreen), "detail screen")
        text = await shows(
            pilot,
            normalized,
            "a generic plan: its 1 parameter ($1, …) planned without values",
            f"Index Scan using {name}_pkey on {name}",
            "Index Cond: (id = $1)",
            timeout=30,
        )
        assert "not planned" not in text
    stop.set()
    thread.join(5)
