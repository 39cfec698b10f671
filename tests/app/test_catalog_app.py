"""The Tables, Vacuum and Indexes tabs of the real app, driven by keys, on a real server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers import screen_text, shows, wait_for
from psycopg.conninfo import conninfo_to_dict

from pgtop.app import PgTopApp
from pgtop.collectors.catalog import CatalogCollector
from pgtop.config import Settings
from pgtop.panes.indexes import IndexesPane
from pgtop.panes.tables import TablesPane
from pgtop.panes.vacuum import VacuumPane
from pgtop.screens.databases import DatabaseSwitcher
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (180, 45)


def dbname_of(conninfo: str) -> str:
    return str(conninfo_to_dict(conninfo)["dbname"])


@pytest.fixture
def staged(fresh_db: str, sessions: Any) -> dict[str, Any]:
    """In the test database: a table with dead rows, an unused and a duplicate index, a
    table locked ACCESS EXCLUSIVE, and a session idle in a transaction holding the xmin
    horizon."""
    tag = uuid.uuid4().hex[:6]
    dbname = dbname_of(fresh_db)
    db = sessions.open("catalog-app-stage", dbname=dbname)
    orders, locked = f"orders_{tag}", f"migrating_{tag}"
    db.execute(f"CREATE TABLE {orders} (id int PRIMARY KEY, status int, note text)")
    db.execute(f"ALTER TABLE {orders} SET (autovacuum_enabled = off)")
    db.execute(f"INSERT INTO {orders} SELECT g, g % 3, 'n' FROM generate_series(1, 2000) g")
    db.execute(f"CREATE INDEX {orders}_status ON {orders} (status)")
    db.execute(f"CREATE INDEX {orders}_status2 ON {orders} (status)")
    db.execute(f"CREATE TABLE {locked} (id int)")
    db.execute(f"CREATE TABLE other_{tag} (id int)")
    if db.info.server_version >= 150000:
        db.execute("SELECT pg_stat_force_next_flush()")
    db.execute(f"UPDATE {orders} SET note = 'm' WHERE id <= 700")
    holder = sessions.open("catalog-app-locker", dbname=dbname)
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE")
    idle = sessions.open("catalog-app-idle", dbname=dbname)
    idle.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    idle.execute("SELECT 1")
    return {
        "orders": orders,
        "locked": locked,
        "other": f"other_{tag}",
        "idle_pid": idle.info.backend_pid,
        "db": db,
    }


def make_app(conninfo: str) -> PgTopApp:
    return PgTopApp(Settings(conninfo=conninfo, refresh=0.5))


@pytest.fixture
def catalog_interval(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the catalog tabs' cadence, in seconds, instead of their slow one."""
    return lambda seconds: monkeypatch.setattr(CatalogCollector, "fixed_interval", seconds)


def rows(app: PgTopApp, table_id: str) -> list[str]:
    return [" ".join(row.cells) for row in app.screen.query_one(table_id, KeyedTable).visible_rows]


async def test_tables_vacuum_and_indexes_show_the_staged_objects(
    fresh_db: str, staged: dict[str, Any]
) -> None:
    orders, locked = staged["orders"], staged["locked"]
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")

        await pilot.press("4")
        text = await shows(pilot, orders, locked, "LOCKED", "1 locked ACCESS EXCLUSIVE")
        assert f"database {dbname_of(fresh_db)}" in text
        orders_row = next(r for r in rows(app, "#tables-table") if orders in r)
        assert "KiB" in orders_row
        assert "~" not in orders_row.split(orders)[1].split()[0], "sized exactly"
        locked_row = next(r for r in rows(app, "#tables-table") if locked in r)
        assert "~" in locked_row, "the locked table keeps its estimate"
        pane = app.screen.query_one(TablesPane)
        relation = pane.selected_target()
        assert relation is not None
        assert relation.kind == "table"
        assert relation.database == dbname_of(fresh_db)

        await pilot.press("5")
        await shows(pilot, orders, "xmin horizon:", "idle in transaction holds it back")
        await wait_for(
            pilot,
            lambda: any(
                r.startswith(f"pid {staged['idle_pid']} ") and "!! idle in tx" in r
                for r in rows(app, "#vacuum-horizon")
            ),
            "the idle session holding the horizon",
        )
        await wait_for(
            pilot,
            lambda: any(orders in r and " 700 " in f" {r} " for r in rows(app, "#vacuum-table")),
            "700 dead rows",
            timeout=30,
        )
        holders = rows(app, "#vacuum-horizon")
        idle_first = [("!! idle in tx" in r) for r in holders]
        assert idle_first == sorted(idle_first, reverse=True), "idle in transaction first"
        assert any(locked in r and "LOCKED" in r for r in rows(app, "#vacuum-table"))
        vacuum_relation = app.screen.query_one(VacuumPane).selected_target()
        assert vacuum_relation is not None

        await pilot.press("6")
        await shows(pilot, f"{orders}_status2", f"DUPLICATE of {orders}_status", "UNUSED")
        pkey = next(r for r in rows(app, "#indexes-table") if f"{orders}_pkey" in r)
        assert "primary" in pkey
        assert "UNUSED" not in pkey, "a constraint's index is never unused"
        app.screen.query_one("#indexes-table", KeyedTable).move_cursor_to_key(
            int(
                staged["db"]
                .execute("SELECT %s::regclass::oid", [f"{orders}_status2"])
                .fetchone()[0]
            )
        )
        index = app.screen.query_one(IndexesPane).selected_target()
        assert index is not None
        assert (index.kind, index.name, index.table_name) == (
            "index",
            f"{orders}_status2",
            f"public.{orders}",
        )


async def test_the_filter_keeps_matching_tables(fresh_db: str, staged: dict[str, Any]) -> None:
    orders = staged["orders"]
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")
        await pilot.press("4")
        await shows(pilot, orders, staged["other"])
        await pilot.press("slash")
        await pilot.press(*orders[:10])
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: len(rows(app, "#tables-table")) == 1, "one table left", timeout=5
        )
        text = screen_text(app)
        assert orders in text
        assert staged["other"] not in text
        assert f"1 of 3 tables matching {orders[:10]!r}" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(rows(app, "#tables-table")) == 3, "all tables again")


async def test_f5_reads_again_at_once(
    fresh_db: str, staged: dict[str, Any], catalog_interval: Any
) -> None:
    catalog_interval(3600.0)
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")
        await pilot.press("4")
        await shows(pilot, staged["orders"])
        late = f"late_{uuid.uuid4().hex[:6]}"
        staged["db"].execute(f"CREATE TABLE {late} (id int)")
        await pilot.pause(1.5)
        assert late not in screen_text(app), "the next refresh is an hour away"
        await pilot.press("f5")
        await shows(pilot, late)


async def test_between_reads_of_the_whole_list_the_status_says_how_old_it_is(
    fresh_db: str, staged: dict[str, Any], catalog_interval: Any
) -> None:
    db = staged["db"]
    many = [f"many_{n:03}_{uuid.uuid4().hex[:4]}" for n in range(60)]
    for created_table in many:
        db.execute(f"CREATE TABLE {created_table} (id int)")
    catalog_interval(3.0)
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")
        await pilot.press("4")
        await shows(pilot, "of 63 tables")
        pane = app.screen.query_one(TablesPane)
        table = app.screen.query_one("#tables-table", KeyedTable)
        in_view = set(pane.keys_in_view())
        off_screen = next(
            row.cells[1] for row in table.rows if row.key not in in_view and row.cells[1] in many
        )
        db.execute(f"DROP TABLE {off_screen}")
        created = f"created_{uuid.uuid4().hex[:6]}"
        db.execute(f"CREATE TABLE {created} (id int)")
        before = app.tab_data["tables"]
        await wait_for(pilot, lambda: app.tab_data["tables"] is not before, "a refresh")
        await shows(pilot, "of 64 tables", "old, list ")
        assert any(row.cells[1] == off_screen for row in table.rows), "kept until the list"
        assert any(row.cells[1] == created for row in table.rows), "new: listed at once"

        await pilot.press("f5")
        await wait_for(
            pilot,
            lambda: not any(row.cells[1] == off_screen for row in table.rows),
            "the dropped table gone after F5",
        )
        text = await shows(pilot, "of 63 tables")
        assert ", list " not in text


async def test_the_vacuum_tab_reads_its_rows_on_screen_between_whole_reads(
    fresh_db: str, staged: dict[str, Any], catalog_interval: Any
) -> None:
    db = staged["db"]
    churn = f"churn_{uuid.uuid4().hex[:6]}"
    db.execute(f"CREATE TABLE {churn} (id int) WITH (autovacuum_enabled = off)")
    db.execute(f"INSERT INTO {churn} SELECT generate_series(1, 500)")
    catalog_interval(3.0)
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")
        await pilot.press("5")
        await shows(pilot, churn)
        if db.info.server_version >= 150000:
            db.execute("SELECT pg_stat_force_next_flush()")
        db.execute(f"DELETE FROM {churn} WHERE id <= 321")
        await wait_for(
            pilot,
            lambda: any(churn in r and " 321 " in f" {r} " for r in rows(app, "#vacuum-table")),
            "321 dead rows",
        )
        assert ", list " in screen_text(app), "read between two reads of the whole list"


async def test_the_database_switcher_reads_another_database(
    dsn: str, fresh_db: str, staged: dict[str, Any]
) -> None:
    chosen = dbname_of(fresh_db)
    app = make_app(dsn)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")
        await pilot.press("4")
        await shows(pilot, "database postgres")
        assert staged["orders"] not in screen_text(app)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DatabaseSwitcher), "the switcher")
        switcher = app.screen.query_one("#databases-table", KeyedTable)
        await wait_for(pilot, lambda: switcher.get_row(chosen) is not None, "the databases")
        row = switcher.get_row(chosen)
        assert row is not None
        assert "KiB" in row.cells[1] or "MiB" in row.cells[1], "with its size"
        postgres = switcher.get_row("postgres")
        assert postgres is not None
        assert "pgtop's connection" in postgres.cells[2]
        switcher.move_cursor_to_key(chosen)
        await pilot.press("enter")
        await shows(pilot, staged["orders"], f"database {chosen}")

        await pilot.press("6")
        await shows(pilot, f"{staged['orders']}_status2", f"database {chosen}")
        await pilot.press("5")
        await shows(pilot, staged["orders"], f"database {chosen}")


async def test_a_session_holding_the_horizon_opens_its_detail(
    fresh_db: str, staged: dict[str, Any]
) -> None:
    from pgtop.screens.session import SessionScreen

    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")
        await pilot.press("5")
        horizon = app.screen.query_one("#vacuum-horizon", KeyedTable)
        key = ("session", str(staged["idle_pid"]))
        await wait_for(pilot, lambda: horizon.get_row(key) is not None, "the idle session")
        horizon.focus()
        assert horizon.move_cursor_to_key(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "the detail")
        await shows(pilot, str(staged["idle_pid"]), "SELECT 1")


async def test_rows_scrolled_into_view_get_exact_sizes(fresh_db: str, sessions: Any) -> None:
    """Sizes are exact only for the rows on screen: sorted by name, the first screen is
    sized once the cursor rests; tables further down keep their estimates (~)."""
    db = sessions.open("catalog-app-many", dbname=dbname_of(fresh_db))
    # Created in reverse name order: the largest oids (sized last by default) sort first.
    db.execute(
        "DO $$ BEGIN FOR i IN REVERSE 119..0 LOOP "
        "EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY)', 't_' || lpad(i::text, 3, '0'));"
        " END LOOP; END $$"
    )
    app = make_app(fresh_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first poll")
        await pilot.press("4")
        table = app.screen.query_one("#tables-table", KeyedTable)
        await wait_for(pilot, lambda: len(table.rows) == 120, "the tables")
        while table.sort_column != "name":
            await pilot.press("less_than_sign")
        await pilot.press("home")  # the cursor kept its row: back to the top
        assert table.visible_rows[0].cells[1] == "t_000"
        assert table.scroll_offset.y == 0
        in_view = table.size.height - 1

        def estimate(name: str) -> bool:
            row = next(r for r in table.rows if r.cells[1] == name)
            return row.cells[2].startswith("~")

        await wait_for(
            pilot,
            lambda: not any(estimate(f"t_{i:03d}") for i in range(in_view)),
            "exact sizes on screen",
        )
        assert estimate(f"t_{in_view + 5:03d}"), "below the screen: still an estimate"
        assert not estimate("t_119"), "sized at first as one of the largest estimates"
