"""The Health tab and the header's health line from canned checks, at 80x24."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from canned import NOW, CannedSource, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.collectors.health import (
    Finding,
    HealthData,
    Status,
    Target,
    ordered,
    session_findings,
)
from pgtop.config import Settings, Thresholds
from pgtop.widgets.keyed_table import KeyedTable


def canned_health() -> HealthData:
    """The incident's session checks, an inactive slot, an invalid index, and a rate not
    known yet."""
    found = session_findings(incident_snapshot(), Thresholds())
    found += [
        Finding(
            "replication_slots",
            Status.WARN,
            "slot old_replica (physical, inactive, wal_status reserved) keeps 3.2 GiB of WAL "
            "(320% of max_wal_size)",
            "slot old_replica inactive 3.2 GiB",
            320.0,
            50.0,
            100.0,
            Target("slot", name="old_replica"),
        ),
        Finding(
            "invalid_indexes",
            Status.WARN,
            "public.orders_status_key on orders is invalid (a failed CREATE INDEX "
            "CONCURRENTLY?): drop it or REINDEX it",
            "1 invalid indexes",
            1.0,
            1.0,
            1000.0,
            Target("index", oid=16500, name="public.orders_status_key"),
        ),
        Finding("deadlocks", Status.UNKNOWN, "needs a second read (30s after the first)"),
        Finding("archiver", Status.OK, "archive_mode is off"),
    ]
    dated = [
        Finding(
            f.check,
            f.status,
            f.summary,
            f.short,
            f.value,
            f.warn,
            f.crit,
            f.target,
            NOW - timedelta(minutes=3),
        )
        for f in found
    ]
    return HealthData(NOW, ordered(dated), NOW - timedelta(seconds=12))


def make_app() -> PgTopApp:
    snapshot = incident_snapshot()
    return PgTopApp(
        Settings(refresh=60), source=CannedSource(snapshot, {"health": canned_health()})
    )


async def show_health(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("7")
    table = pilot.app.screen.query_one("#health-table", KeyedTable)
    for _ in range(200):
        if table.rows:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def test_health_tab_at_80x24(snap_compare: Any) -> None:
    """Key 7: worst first. CRIT lock_wait (pid 4102, 3 minutes) and long_transaction (pid
    4106, an hour), WARN rows (idle_in_transaction, replication_slots, invalid_indexes),
    UNKNOWN deadlocks with its reason, then the ok ones; each status as a word; the status
    line counts them, says how old the slow checks are and that Enter leads to the row's
    target. The header's third line names the worst findings, one mention per session."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=show_health)


def test_header_names_the_worst_findings_on_every_tab(snap_compare: Any) -> None:
    """The Activity tab at 80x24: the first two header lines as before (connections and
    waiting counts whole), the third "CRIT lock wait 3m00s (pid 4102) · CRIT tx open 1h02m
    (pid 4106) · WARN idle in tx …" naming the worst findings first."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle)
