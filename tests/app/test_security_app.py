"""Server text in the real app: names with escape sequences and markup reach notifications,
the command palette and status lines as plain, visible text; a huge statement is cut."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from helpers import notifications, notified, screen_text, shows, wait_for
from psycopg import sql
from textual.command import CommandPalette
from textual.widgets import Static

from pgtop.app import PgTopApp
from pgtop.cluster import Cluster
from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
from pgtop.config import Settings
from pgtop.screens.confirm import ConfirmDialog
from pgtop.screens.statement import StatementScreen
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 45)


def dbname(conninfo: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(conninfo)["dbname"])


def create_tables(conn: psycopg.Connection[Any], *names: str) -> None:
    for name in names:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(name)))


async def select_table(pilot: Any, app: PgTopApp, text: str) -> None:
    """Filter the Tables tab down to the one table matching ``text``."""
    await pilot.press("4")
    tables = app.screen.query_one("#tables-table", KeyedTable)
    await wait_for(pilot, lambda: bool(tables.visible_rows), "the tables")
    await pilot.press("slash", *text, "enter")
    await wait_for(pilot, lambda: len(tables.visible_rows) == 1, f"the table {text!r}")


async def test_escape_sequences_in_a_name_never_reach_the_terminal(
    fresh_db: str, sessions: Any
) -> None:
    """ANALYZE of a table named with an OSC 2 (window title) sequence: the outcome names
    it with the escape made visible; the dialog names its owner."""
    db = sessions.open(dbname=dbname(fresh_db))
    tag = uuid.uuid4().hex[:6]
    evil = f"title{tag}\x1b]2;owned\x07\x1b]52;c;cGF5bG9hZA==\x07\u200b"
    create_tables(db, evil)
    app = PgTopApp(Settings(conninfo=fresh_db, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await select_table(pilot, app, f"title{tag}")
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
        await shows(pilot, "owner  postgres", f"title{tag}\\e]2;owned^G\\e]52;c;")
        await pilot.pause(0.5)
        await pilot.press("y")
        await notified(pilot, "done in")
        messages = notifications(app)
        assert any(f"title{tag}\\e]2;owned^G" in m and "<U+200B>" in m for m in messages)
        assert not any("\x1b" in m or "\x07" in m or "\u200b" in m for m in messages)
        assert "\x1b" not in screen_text(app)


async def test_markup_in_names_and_filters_is_text(fresh_db: str, sessions: Any) -> None:
    """A table named like markup is selected when the palette opens; a filter typed like
    markup: pgtop keeps running and shows both literally."""
    db = sessions.open(dbname=dbname(fresh_db))
    tag = uuid.uuid4().hex[:6]
    create_tables(db, f"t{tag}[/x]", f"c{tag}[@click=app.screenshot('/tmp/pgtop-{tag}')]")
    app = PgTopApp(Settings(conninfo=fresh_db, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await select_table(pilot, app, f"t{tag}")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"ANALYZE")
        await shows(pilot, "ANALYZE the selected table")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette), "closed")

        await pilot.press("escape")  # clear the Tables filter
        await select_table(pilot, app, f"c{tag}")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"select")
        await pilot.pause(0.3)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette), "closed")

        await pilot.press("3")
        await pilot.press("slash", *"a[/", "enter")
        await shows(pilot, "matching 'a[/'")
        await pilot.press("escape")
        assert app.is_running
    assert app.crash is None


async def test_a_huge_statement_is_cut_in_its_detail(
    new_cluster: Callable[..., Cluster],
) -> None:
    """An unprivileged role's 30 MB statement: its detail shows a bounded prefix, says it
    was cut, and does not plan it. (On a server of its own: with the rest of the suite,
    pg_stat_statements would soon evict an entry called once.)"""
    cluster = new_cluster()
    cluster.psql("CREATE ROLE bulky LOGIN; CREATE EXTENSION pg_stat_statements")
    with psycopg.connect(cluster.conninfo(user="bulky"), autocommit=True) as bulky:
        bulky.execute(("SELECT 42 /* hugetext " + "x" * 30_000_000 + " */").encode())
    app = PgTopApp(Settings(conninfo=cluster.conninfo(), refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        table = app.screen.query_one("#queries-table", KeyedTable)
        await wait_for(pilot, lambda: bool(table.rows), "the statements")
        await pilot.press("m", "m")
        await shows(pilot, "mode lifetime")
        await pilot.press("slash", *"hugetext", "enter")
        await wait_for(pilot, lambda: len(table.visible_rows) == 1, "the statement")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StatementScreen), "the detail")
        screen = app.screen
        assert isinstance(screen, StatementScreen)
        plan = screen.query_one("#statement-plan", Static)
        query = screen.query_one("#statement-query", Static)
        await wait_for(
            pilot,
            lambda: "the text is longer than 100,000 characters" in str(plan.content),
            "the plan refused",
        )
        assert screen.cut
        assert screen.text is not None
        assert len(screen.text) == WHOLE_TEXT_LIMIT
        shown = str(query.content)
        assert shown.endswith("cut: only the first 100,000 characters are read")
        assert len(shown) < WHOLE_TEXT_LIMIT + 100
