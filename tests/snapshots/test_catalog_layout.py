"""The Tables, Vacuum and Indexes tabs from canned data: what an operator sees."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from canned import NOW, CannedSource, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.collectors.catalog import (
    AutovacuumSettings,
    CatalogHeader,
    HorizonHolder,
    IndexesData,
    IndexInfo,
    TableInfo,
    TablesData,
    VacuumData,
    VacuumProgress,
    VacuumTable,
    autovacuum_due,
    find_duplicates,
)
from pgtop.config import Settings
from pgtop.widgets.keyed_table import KeyedTable

HEADER = CatalogHeader(
    database="shop",
    collected_at=NOW - timedelta(seconds=4),
    block_size=8192,
    database_bytes=48 * 1024**3,
    datfrozenxid_age=151_000_000,
    stats_reset=NOW - timedelta(days=12),
)
HOSTILE_NAME = "[bold]evil[/]\x1b[2J"
GIB = 1024**3
MIB = 1024**2


def table(oid: int, name: str, heap: int, indexes: int, toast: int, **fields: Any) -> TableInfo:
    values: dict[str, Any] = {
        "schema": "public",
        "size_is_estimate": False,
        "locked": False,
        "est_rows": heap / 120,
        "seq_scan": 12,
        "idx_scan": 48_000,
        "n_tup_ins": 1000,
        "n_tup_upd": 100,
        "n_tup_del": 1,
        "ins_per_s": 12.5,
        "upd_per_s": 0.4,
        "del_per_s": 0.0,
    }
    values.update(fields)
    return TableInfo(
        oid=oid, name=name, table_bytes=heap, index_bytes=indexes, toast_bytes=toast, **values
    )


TABLES = TablesData(
    HEADER,
    (
        table(1, "orders", 18 * GIB, 9 * GIB, 512 * MIB),
        table(2, "order_items", 11 * GIB, 4 * GIB, 0),
        # ALTER TABLE running: estimates only, and marked.
        table(3, "customers", 2 * GIB, 700 * MIB, 3 * GIB, size_is_estimate=True, locked=True),
        table(4, "events_2026_11", 900 * MIB, 120 * MIB, 0, seq_scan=9_800, idx_scan=None),
        table(5, HOSTILE_NAME, 8192, 16384, 8192, schema="x\u202eevil"),
        table(6, "audit_log", 300 * MIB, 0, 0, size_is_estimate=True, ins_per_s=None),
    ),
)

SETTINGS = AutovacuumSettings(
    active=True,
    vacuum_threshold=50,
    vacuum_scale_factor=0.2,
    vacuum_max_threshold=None,
    insert_threshold=1000,
    insert_scale_factor=0.2,
    analyze_threshold=50,
    analyze_scale_factor=0.1,
    freeze_max_age=200_000_000,
    multixact_freeze_max_age=400_000_000,
)


def vtable(oid: int, name: str, live: int, dead: int, xid_age: int, **fields: Any) -> VacuumTable:
    options = fields.pop("options", {})
    values: dict[str, Any] = {
        "schema": "public",
        "relpages": live // 50,
        "n_mod_since_analyze": dead,
        "n_ins_since_vacuum": 0,
        "last_vacuum": None,
        "last_autovacuum": NOW - timedelta(hours=3, minutes=5),
        "last_analyze": NOW - timedelta(days=2),
        "last_autoanalyze": NOW - timedelta(hours=1),
        "vacuum_count": 0,
        "autovacuum_count": 41,
        "analyze_count": 1,
        "autoanalyze_count": 88,
        "mxid_age": 10,
        "locked": False,
    }
    values.update(fields)
    verdict = autovacuum_due(
        SETTINGS,
        options,
        reltuples=float(live),
        relpages=values["relpages"],
        relallfrozen=None,
        n_dead_tup=dead,
        n_ins_since_vacuum=values["n_ins_since_vacuum"],
        n_mod_since_analyze=values["n_mod_since_analyze"],
        xid_age=xid_age,
        mxid_age=values["mxid_age"],
    )
    return VacuumTable(
        oid=oid,
        name=name,
        n_live_tup=live,
        n_dead_tup=dead,
        xid_age=xid_age,
        verdict=verdict,
        **values,
    )


def holder(kind: str, ident: str, age: int, **fields: Any) -> HorizonHolder:
    values: dict[str, Any] = {
        "pid": None,
        "database": "shop",
        "user": "app",
        "application_name": "",
        "backend_type": "client backend",
        "state": "active",
        "since": None,
        "state_change": None,
        "xid": None,
        "xmin": "8812201",
        "catalog_xmin": None,
        "detail": "",
    }
    values.update(fields)
    return HorizonHolder(kind=kind, ident=ident, age=age, **values)


VACUUM = VacuumData(
    HEADER,
    SETTINGS,
    (
        vtable(1, "orders", 150_000_000, 41_000_000, 152_000_000),
        vtable(2, "order_items", 90_000_000, 1_200, 150_000_000),
        vtable(3, "customers", 2_000_000, 600_000, 120_000_000, locked=True),
        vtable(
            4,
            "events_2026_10",
            40_000_000,
            0,
            201_500_000,
            last_autovacuum=None,
            autovacuum_count=0,
        ),
        vtable(
            5,
            "sessions",
            10_000,
            9_000,
            3_000_000,
            options={"autovacuum_enabled": "off"},
            last_autovacuum=None,
            autovacuum_count=0,
        ),
        vtable(6, HOSTILE_NAME, 10, 0, 1_000),
    ),
    (
        holder(
            "session",
            "4101",
            1_840_000,
            pid=4101,
            state="idle in transaction",
            since=NOW - timedelta(minutes=12, seconds=3),
            detail="UPDATE accounts SET balance = balance - 5 WHERE id = 1",
            user="dba",
        ),
        holder(
            "slot",
            "replica_east",
            9_400_000,
            database=None,
            user=None,
            backend_type="physical",
            state="inactive",
            xmin="7100001",
        ),
        holder(
            "session",
            "4106",
            950_000,
            pid=4106,
            since=NOW - timedelta(hours=1, minutes=2),
            detail="SELECT status, count(*) FROM orders GROUP BY status",
        ),
        holder(
            "prepared",
            "tx-payments-77",
            120_000,
            state="prepared",
            since=NOW - timedelta(minutes=40),
            xmin=None,
            xid="8890001",
            user="payments",
        ),
    ),
    (
        VacuumProgress(
            pid=4300,
            database="shop",
            relid=1,
            relation="orders",
            command="autovacuum",
            phase="scanning heap",
            heap_blks_total=2_359_296,
            heap_blks_scanned=1_100_000,
            heap_blks_vacuumed=0,
            index_vacuum_count=0,
            max_dead_tuples=11_184_810,
            num_dead_tuples=3_200_000,
            max_dead_tuple_bytes=None,
            dead_tuple_bytes=None,
            num_dead_item_ids=None,
            indexes_total=None,
            indexes_processed=None,
            started=NOW - timedelta(minutes=18),
        ),
    ),
)


def index(oid: int, table_name: str, name: str, size: int, scans: int, **fields: Any) -> IndexInfo:
    signature = fields.pop("signature", (table_name, name))
    values: dict[str, Any] = {
        "schema": "public",
        "table_oid": 1,
        "method": "btree",
        "size_is_estimate": False,
        "locked": False,
        "idx_tup_read": scans * 3,
        "idx_tup_fetch": scans * 2,
        "last_idx_scan": NOW - timedelta(minutes=2) if scans else None,
        "is_unique": False,
        "is_primary": False,
        "is_exclusion": False,
        "backs_constraint": False,
        "is_valid": True,
        "is_ready": True,
    }
    values.update(fields)
    return IndexInfo(
        oid=oid,
        table=table_name,
        name=name,
        index_bytes=size,
        idx_scan=scans,
        signature=signature,
        **values,
    )


def indexes() -> IndexesData:
    status = ("orders", "status")
    found = [
        index(10, "orders", "orders_pkey", 3 * GIB, 9_100_000, is_unique=True, is_primary=True),
        index(11, "orders", "orders_status_idx", 2 * GIB, 4_000, signature=status),
        index(12, "orders", "orders_status_idx1", 2 * GIB, 0, signature=status),
        index(13, "orders", "orders_note_trgm", 1 * GIB, 0, method="gin"),
        index(14, "orders", "orders_email_key", 900 * MIB, 0, is_unique=True),
        index(15, "orders", "orders_created_idx_ccnew", 600 * MIB, 0, is_valid=False),
        index(16, "customers", "customers_pkey", 200 * MIB, 50, is_primary=True, is_unique=True),
        index(17, "customers", HOSTILE_NAME, 8192, 0, size_is_estimate=True),
    ]
    duplicates = find_duplicates(found)
    flagged = tuple(
        replace(i, duplicate_of=duplicates[i.oid].name) if i.oid in duplicates else i for i in found
    )
    return IndexesData(HEADER, flagged)


@pytest.fixture
def catalog_app() -> PgTopApp:
    return PgTopApp(
        Settings(refresh=60),
        source=CannedSource(
            incident_snapshot(), {"tables": TABLES, "vacuum": VACUUM, "indexes": indexes()}
        ),
    )


def show_tab(key: str, table_id: str) -> Any:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(key)
        table = pilot.app.screen.query_one(table_id, KeyedTable)
        for _ in range(200):
            if table.rows:
                break
            await pilot.pause(0.02)
        await pilot.pause(0.1)

    return run_before


def test_tables_tab(snap_compare: Any, catalog_app: PgTopApp) -> None:
    """Largest first; the locked table shows estimates (~) and LOCKED in the error colour;
    header with the database size estimate and the data's age (4.0s); the hostile name
    and schema shown literally with escapes visible."""
    assert snap_compare(
        catalog_app, terminal_size=(150, 24), run_before=show_tab("4", "#tables-table")
    )


def test_vacuum_tab(snap_compare: Any, catalog_app: PgTopApp) -> None:
    """Most dead rows first; orders due for dead rows, events past freeze max age due to
    prevent wraparound, sessions off for the table; the running autovacuum at 47%; the
    idle-in-transaction session first among the horizon holders, then the slot."""
    assert snap_compare(
        catalog_app, terminal_size=(160, 32), run_before=show_tab("5", "#vacuum-table")
    )


def test_indexes_tab(snap_compare: Any, catalog_app: PgTopApp) -> None:
    """Largest first; the second status index is a DUPLICATE of the first and UNUSED; the
    _ccnew leftover INVALID; the unique email key never UNUSED although never scanned."""
    assert snap_compare(
        catalog_app, terminal_size=(150, 20), run_before=show_tab("6", "#indexes-table")
    )


def test_tables_at_80x24(snap_compare: Any, catalog_app: PgTopApp) -> None:
    """80 columns: TOTAL, HEAP, INDEXES and ROWS all show; the table names give way first,
    cut with an ellipsis; no horizontal scrolling needed."""
    assert snap_compare(
        catalog_app, terminal_size=(80, 24), run_before=show_tab("4", "#tables-table")
    )


def test_vacuum_at_80x24(snap_compare: Any, catalog_app: PgTopApp) -> None:
    """80 columns: LIVE, DEAD, AUTOVACUUM DUE and XID AGE stay; the horizon holders below."""
    assert snap_compare(
        catalog_app, terminal_size=(80, 24), run_before=show_tab("5", "#vacuum-table")
    )


def test_indexes_at_80x24(snap_compare: Any, catalog_app: PgTopApp) -> None:
    """80 columns: each index's size, scans and its DUPLICATE / UNUSED / INVALID flags."""
    assert snap_compare(
        catalog_app, terminal_size=(80, 24), run_before=show_tab("6", "#indexes-table")
    )
