"""``--once pools``: one record per pool of a PgBouncer, in PgBouncer's own names."""

from __future__ import annotations

from typing import Any

from pgtop.formats import duration
from pgtop.model import PoolsSnapshot
from pgtop.reports.base import Report, Row, fields_of, text

FIELDS = ("database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used")
"""``SHOW POOLS``' own names, as the report's."""


def rows(snapshot: PoolsSnapshot) -> list[Row]:
    """The pools, as ``SHOW POOLS`` lists them, with their database's ``pool_size``."""
    return [
        {
            **fields_of(pool, *FIELDS),
            "maxwait_s": round(pool.maxwait_s, 6),
            "pool_mode": pool.pool_mode,
            "pool_size": pool.pool_size,
        }
        for pool in snapshot.pools
    ]


def of(snapshot: PoolsSnapshot) -> Report:
    columns = [
        ("DATABASE", text("database", 30)),
        ("USER", text("user", 30)),
        *((name.upper(), text(name)) for name in FIELDS[2:]),
        ("MAXWAIT", lambda row: duration(row["maxwait_s"])),
        ("POOL_MODE", text("pool_mode", 20)),
        ("POOL_SIZE", text("pool_size")),
    ]
    server = {"software": "PgBouncer", "version": snapshot.version}
    return Report(snapshot.collected_at, rows(snapshot), columns, server=server)


async def report(source: Any) -> Report:
    snapshot = await source.poll()
    assert isinstance(snapshot, PoolsSnapshot)
    return of(snapshot)
