"""The Replication tab from canned data, at 80x24: a standby behind, an inactive slot
keeping WAL, a logical slot, the WAL and a failing archiver."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from canned import NOW, CannedSource, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.collectors.health import SlotState, StandbyState
from pgtop.collectors.replication import (
    ArchiverState,
    DatabaseState,
    ReplicationData,
    WalState,
)
from pgtop.config import Settings
from pgtop.widgets.keyed_table import KeyedTable

MIB = 1024 * 1024


def canned_replication() -> ReplicationData:
    standby = StandbyState(
        pid=4200,
        application_name="replica_a",
        client_addr="10.0.0.7",
        state="streaming",
        sync_state="async",
        sent_lag_bytes=0,
        write_lag_bytes=8192,
        flush_lag_bytes=8192,
        replay_lag_bytes=48 * MIB,
        write_lag_s=0.002,
        flush_lag_s=0.004,
        replay_lag_s=83.0,
    )
    slots = (
        SlotState(
            "old_replica", "physical", None, None, False, None, "extended", 3400 * MIB,
            None, None, None,
        ),
        SlotState(
            "replica_a", "physical", None, None, True, 4200, "reserved", 48 * MIB,
            None, "812", None,
        ),
        SlotState(
            "cdc", "logical", "shop", "pgoutput", False, None, "reserved", 120 * MIB,
            None, None, "790",
        ),
    )  # fmt: skip
    wal = WalState(
        lsn="3A/1F000060",
        dir_bytes=3600 * MIB,
        segments=225,
        archive_ready=41,
        dir_problem=None,
        dir_read_at=NOW,
        rate_bytes_per_s=2.5 * MIB,
        max_wal_size=1024 * MIB,
        wal_keep_size=0,
        wal_segment_size=16 * MIB,
    )
    archiver = ArchiverState(
        archive_mode="on",
        archived_count=1200,
        failed_count=37,
        last_archived_wal="000000010000003900000099",
        last_archived_time=NOW - timedelta(minutes=42),
        last_failed_wal="00000001000000390000009A",
        last_failed_time=NOW - timedelta(seconds=20),
    )
    databases = (
        DatabaseState("shop", True, 41200 * MIB, {}),
        DatabaseState("postgres", True, 7 * MIB, {}),
        DatabaseState("payroll", False, None, {}),
    )
    return ReplicationData(
        NOW,
        False,
        (standby,),
        slots,
        None,
        wal,
        archiver,
        310,
        12,
        last_checkpoint_time=NOW - timedelta(minutes=4),
        may_checkpoint=True,
        databases=databases,
        databases_read_at=NOW,
    )


def make_app() -> PgTopApp:
    source = CannedSource(incident_snapshot(), {"replication": canned_replication()})
    return PgTopApp(Settings(refresh=60), source=source)


async def show_replication(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("8")
    table = pilot.app.screen.query_one("#replication-table", KeyedTable)
    for _ in range(200):
        if table.rows:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def test_replication_tab_at_80x24(snap_compare: Any) -> None:
    """Key 8: the WAL line (position, 2.5 MiB/s, pg_wal 3.5 GiB in 225 segments,
    max_wal_size), the archiver line (FAILING with the failing segment, 41 waiting,
    checkpoints, the last 4m ago); then the standby replica_a 48 MiB / 1m23s behind, the
    slots: old_replica inactive keeping 3.3 GiB (warning colour), replica_a active pid
    4200, cdc logical; then the databases, largest first: shop 40.2 GiB, postgres, and
    payroll "no access"; the tab bar shows "8 Replication"."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=show_replication)


def test_replication_tab_at_140x36(snap_compare: Any) -> None:
    """Wider: the SYNC/WAL column (async, extended, reserved) and the details (sent, write,
    flush lags; logical pgoutput db shop; xmin and catalog_xmin)."""
    assert snap_compare(make_app(), terminal_size=(140, 36), run_before=show_replication)
