"""Several servers in the real app, on real clusters: the Servers tab, switching the server
every tab shows (a filter kept), a read-only server refusing actions, a stopped and a frozen
server that never hold the others back, and a primary's standbys added with one key."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import STANDBY_NAME, Sessions
from helpers import notified, screen_text, shows, wait_for
from textual.widgets import Input, TabbedContent

from pgtop.app import PgTopApp
from pgtop.cluster import Cluster
from pgtop.collectors.servers import ServerRow
from pgtop.config import ServerProfile, Settings
from pgtop.panes.servers import ServersData
from pgtop.screens.confirm import ConfirmDialog
from pgtop.screens.port_prompt import PortPrompt
from pgtop.servers import ServerSet
from pgtop.tabs import collectors
from pgtop.widgets.keyed_table import KeyedTable

WIDE = (160, 40)
NARROW = (80, 24)


def make_app(*profiles: ServerProfile) -> PgTopApp:
    settings = Settings(refresh=0.5, recorder_minutes=0)
    return PgTopApp(settings, servers=ServerSet(profiles, settings, collectors()))


def rows(app: PgTopApp) -> dict[str, ServerRow]:
    data = app.tab_data.get("servers")
    return {row.name: row for row in data.rows} if isinstance(data, ServersData) else {}


def xacts(app: PgTopApp, name: str) -> int:
    figures = rows(app)[name].figures if name in rows(app) else None
    return -1 if figures is None else figures.xacts


def all_ok(app: PgTopApp) -> bool:
    found = rows(app)
    return len(found) == len(app.servers or ()) and all(row.ok for row in found.values())


def active_tab(app: PgTopApp) -> str:
    return str(app.screen.query_one(TabbedContent).active)


async def choose(pilot: Any, app: PgTopApp, name: str) -> None:
    """Show ``name`` in every tab, from the Servers tab."""
    await pilot.press("0")
    table = app.screen.query_one("#servers-table", KeyedTable)
    await wait_for(pilot, lambda: table.move_cursor_to_key(name), f"row {name}")
    await pilot.press("enter")
    await wait_for(pilot, lambda: active_tab(app) == "activity", "the Activity tab")


async def test_servers_view_switch_keeps_the_filter_and_read_only_refuses(
    pg_cluster: Cluster,
    new_cluster: Callable[..., Cluster],
    sessions: Sessions,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))
    other = new_cluster()
    on_beta = Sessions(other)
    try:
        sessions.run_in_background(sessions.open("marker_alpha"), "SELECT pg_sleep(60)")
        on_beta.run_in_background(on_beta.open("marker_beta"), "SELECT pg_sleep(60)")
        app = make_app(
            ServerProfile("alpha", pg_cluster.conninfo()),
            ServerProfile("beta", other.conninfo(), read_only=True),
        )
        async with app.run_test(size=WIDE) as pilot:
            assert [tab.name for tab in app.tabs][:2] == ["servers", "activity"]
            assert active_tab(app) == "servers"
            text = await shows(pilot, "alpha", "beta", "primary", "read-only")
            await wait_for(pilot, lambda: all_ok(app), "both ok")
            assert f":{other.port}" in screen_text(app)
            assert "alpha · " in app.describe_source()

            # A filter on the Activity tab of alpha.
            await pilot.press("1", "slash", *"marker", "enter")
            text = await shows(pilot, "marker_alpha")
            assert "marker_beta" not in text

            await choose(pilot, app, "beta")
            assert app.screen.query_one("#activity-filter", Input).value == "marker"
            text = await shows(pilot, "marker_beta", "beta · ")
            assert "marker_alpha" not in text
            assert app.describe_source().startswith("beta · ")
            # Read-only: no action offered, and one asked for says why, naming the server.
            assert not app.actions_offered()
            activity = app.activity
            assert activity is not None
            target = next(b for b in activity.backends if b.application_name == "marker_beta")
            app.act_on_session("terminate", target)
            await notified(pilot, "beta · ")
            assert any("read-only" in n.message for n in app._notifications)
            with psycopg.connect(other.conninfo()) as check:
                alive = check.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'marker_beta'"
                ).fetchone()
                assert alive == (1,)

            # Back on alpha: actions again, and the confirm dialog names the server.
            await choose(pilot, app, "alpha")
            await shows(pilot, "marker_alpha")
            assert app.actions_offered()
            activity = app.activity
            assert activity is not None
            target = next(b for b in activity.backends if b.application_name == "marker_alpha")
            app.act_on_session("cancel", target)
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
            await shows(pilot, "on server  alpha · ")
            await pilot.pause(0.5)  # a yes counts once the dialog could be read
            await pilot.press("y")
            await notified(pilot, "was cancelled")
            lines = (tmp_path / "actions.log").read_text().splitlines()
            assert [json.loads(line)["server"][:8] for line in lines] == ["alpha · "] * 2
    finally:
        on_beta.close()


async def test_servers_view_at_80_columns(
    pg_cluster: Cluster, new_cluster: Callable[..., Cluster]
) -> None:
    other = new_cluster()
    app = make_app(
        ServerProfile("alpha", pg_cluster.conninfo()), ServerProfile("beta", other.conninfo())
    )
    async with app.run_test(size=NARROW) as pilot:
        await wait_for(pilot, lambda: all_ok(app), "both ok")
        text = await shows(pilot, "0 Servers 1 2 3 4 5 6 7 8", "alpha", "beta", "primary")
        assert " ok" in text
        assert "alpha · " in text, "the header names the server in view"
        # Nine tabs do not fit: the tabs not shown give their key only, every one in view.
        await pilot.press("8")
        await shows(pilot, "0 1 2 3 4 5 6 7 8 Replication")
        await choose(pilot, app, "beta")
        await shows(pilot, "0 1 Activity 2 3 4 5 6 7 8", "beta · ")


async def test_a_stopped_server_says_so_and_the_other_keeps_refreshing(
    pg_cluster: Cluster, new_cluster: Callable[..., Cluster]
) -> None:
    other = new_cluster()
    app = make_app(
        ServerProfile("alpha", pg_cluster.conninfo()), ServerProfile("gone", other.conninfo())
    )
    async with app.run_test(size=WIDE) as pilot:
        await wait_for(pilot, lambda: all_ok(app), "both ok")
        other.stop()
        await wait_for(pilot, lambda: not rows(app)["gone"].ok, "the stopped server", timeout=40)
        before = xacts(app, "alpha")
        await shows(pilot, "reconnecting since", timeout=40)
        await wait_for(pilot, lambda: xacts(app, "alpha") > before, "alpha refreshed")
        assert rows(app)["alpha"].ok
        other.start()
        await wait_for(pilot, lambda: rows(app)["gone"].ok, "back", timeout=60)


def _cluster_pids(cluster: Cluster) -> list[int]:
    """The postmaster and every process it started that pg_stat_activity lists (pgtop's
    backends included)."""
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        found = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity")]
        own = conn.info.backend_pid
    postmaster = cluster.postmaster_pid
    assert postmaster is not None
    return [postmaster, *(pid for pid in found if pid != own)]


@contextlib.contextmanager
def frozen(cluster: Cluster) -> Iterator[None]:
    """Every process of the cluster stopped (SIGSTOP), continued whatever happens."""
    pids = _cluster_pids(cluster)
    stopped = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def test_a_frozen_server_never_holds_the_others_or_the_ui(
    pg_cluster: Cluster, new_cluster: Callable[..., Cluster]
) -> None:
    other = new_cluster()
    app = make_app(
        ServerProfile("ice", other.conninfo()), ServerProfile("alpha", pg_cluster.conninfo())
    )
    async with app.run_test(size=WIDE) as pilot:
        await wait_for(pilot, lambda: all_ok(app), "both ok")
        await pilot.press("1")
        await shows(pilot, "ice · ")
        with frozen(other):
            await wait_for(pilot, lambda: not rows(app)["ice"].ok, "ice frozen", timeout=60)
            assert "reconnecting since" in rows(app)["ice"].status
            before = xacts(app, "alpha")
            await wait_for(pilot, lambda: xacts(app, "alpha") > before, "alpha refreshed")
            # The frozen server is in view: another is shown at once all the same.
            await choose(pilot, app, "alpha")
            await shows(pilot, "alpha · ")
            await wait_for(pilot, lambda: app.activity is not None, "alpha's activity")
        await wait_for(pilot, lambda: rows(app)["ice"].ok, "ice back", timeout=60)


async def test_standbys_are_one_key_away(
    replicated: tuple[Cluster, Cluster], pg_cluster: Cluster
) -> None:
    primary, standby = replicated
    app = make_app(
        ServerProfile("main", primary.conninfo()), ServerProfile("other", pg_cluster.conninfo())
    )
    async with app.run_test(size=WIDE) as pilot:
        await wait_for(pilot, lambda: all_ok(app), "both ok")
        table = app.screen.query_one("#servers-table", KeyedTable)
        await wait_for(pilot, lambda: table.move_cursor_to_key("main"), "the primary's row")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PortPrompt), "the port prompt")
        prompt = app.screen.query_one("#standby-port", Input)
        assert prompt.value == str(primary.port), "the primary's port by default"
        prompt.value = ""
        await pilot.press(*str(standby.port), "enter")
        name = f"main/{STANDBY_NAME}"
        await wait_for(pilot, lambda: name in rows(app), "the standby's row")
        await wait_for(pilot, lambda: rows(app)[name].ok, "the standby read", timeout=40)
        row = rows(app)[name]
        shown = table.get_row(name)
        assert shown is not None
        assert shown.cells[2] == "standby"
        assert shown.cells[3].endswith(f":{primary.port}"), "its upstream: the primary"
        await shows(pilot, "main/pgtop_st", f":{primary.port}")
        assert row.figures is not None
        assert row.figures.standby
        assert row.port == str(standby.port)
        assert "password" not in screen_text(app)
