"""Grouped connections and a PgBouncer's pools from canned data, as an operator sees them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from canned import NOW, CannedSource, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.collectors.health import PoolerHealth
from pgtop.config import Settings, Thresholds
from pgtop.model import Pool, PoolerTraffic, PoolsSnapshot
from pgtop.widgets.keyed_table import KeyedTable


async def group_by_application(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("a")
    table = pilot.app.screen.query_one("#activity-table", KeyedTable)
    for _ in range(200):
        if table.rows and isinstance(table.rows[0].key, tuple):
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def grouped_app() -> PgTopApp:
    return PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))


def test_sessions_grouped_by_application_at_120x35(snap_compare: Any) -> None:
    """Key a: one row per application, the largest first ("web" 2 idle sessions, then
    "checkout-api" 2 active, 2 waiting, in the warning colour), its oldest idle time and
    oldest transaction (12m03s for "admin-console", 1 idle in tx), the share of
    max_connections 100 (2.0%); the hostile application name shown literally; the status
    line "grouped by application (a: by user, Enter: its sessions)", sorted "SESSIONS ▼"."""
    assert snap_compare(grouped_app(), terminal_size=(120, 35), run_before=group_by_application)


def test_sessions_grouped_by_application_at_80x24(snap_compare: Any) -> None:
    """At 80 columns every figure stays; the application name takes what is left."""
    assert snap_compare(grouped_app(), terminal_size=(80, 24), run_before=group_by_application)


def pool(database: str, user: str, **fields: Any) -> Pool:
    values: dict[str, Any] = {
        "cl_active": 0,
        "cl_waiting": 0,
        "sv_active": 0,
        "sv_idle": 0,
        "sv_used": 0,
        "sv_tested": 0,
        "sv_login": 0,
        "maxwait_s": 0.0,
        "pool_mode": "transaction",
        "pool_size": 20,
    }
    values.update(fields)
    return Pool(database=database, user=user, **values)


def pools_snapshot() -> PoolsSnapshot:
    return PoolsSnapshot(
        version="1.18.0",
        collected_at=NOW - timedelta(seconds=0),
        pools=(
            pool("pgbouncer", "pgbouncer", cl_active=1, pool_mode="statement", pool_size=2),
            pool(
                "shop",
                "app",
                cl_active=20,
                cl_waiting=14,
                sv_active=20,
                maxwait_s=3.25,
                xact_per_s=410.0,
                query_per_s=1250.0,
            ),
            pool(
                "shop",
                "reporting",
                cl_active=3,
                sv_active=1,
                sv_idle=2,
                pool_mode="session",
                pool_size=5,
                xact_per_s=410.0,
                query_per_s=1250.0,
            ),
            pool("[red]evil\x1b]0;x\x07", "app", sv_used=1),
        ),
        traffic=(PoolerTraffic("shop", 410.0, 1250.0, 96_000.0, 512_000.0, 1.8, 40.0),),
    )


async def show_pools(pilot: Any) -> None:
    await settle(pilot)
    table = pilot.app.screen.query_one("#pools-table", KeyedTable)
    for _ in range(200):
        if len(table.rows) == 4:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def test_pools_at_120x30(snap_compare: Any) -> None:
    """A PgBouncer console: header "PgBouncer 1.18.0", "clients active 24 waiting 14
    longest 3.2s", servers 21 active, 2 idle, 1 used, tps 410, qps 1.2k; only the Pools tab;
    the pool shop/app first (14 waiting, warning colour, MAXWAIT 3.2s); the status line "14 clients
    waiting for a server, longest 3.2s (shop/app)"; the hostile database name literal; the
    health line "WARN 14 clients wait 3.2s (shop/app)" (pooler_wait: warn 1 s, crit 10 s)."""
    health = PoolerHealth(Thresholds()).evaluate(pools_snapshot())
    app = PgTopApp(Settings(refresh=60), source=CannedSource(pools_snapshot(), {"health": health}))
    assert snap_compare(app, terminal_size=(120, 30), run_before=show_pools)
