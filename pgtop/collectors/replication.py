"""The Replication tab's data: the standbys this server streams to, its replication slots
and the WAL each keeps, the WAL directory and its rate, the archiver and the checkpoints,
every database's size and recovery conflicts; on a standby, its WAL receiver and whether
replay is paused.

Everything but the disk is a few rows of statistics views, read at the tab's cadence
(``REPLICATION_INTERVAL``); listing the WAL directory and sizing the databases walk
directories (one read per file), so they are read at most every ``DISK_INTERVAL``. The WAL
rate compares two reads of the WAL position: until a second read it is not known.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from pgtop import sql
from pgtop.collectors.base import CollectorContext, Connection
from pgtop.collectors.health import SlotState, StandbyState, read_slots, read_standbys
from pgtop.model import ActivitySnapshot

REPLICATION_INTERVAL = 5.0
"""Least seconds between two reads of the tab's data."""
DISK_INTERVAL = 30.0
"""Least seconds between two listings of the WAL directory, or two sizings of the
databases."""
WALDIR_PRIVILEGE = "listing the WAL directory needs EXECUTE on pg_ls_waldir (pg_monitor)"
TIMED_OUT = "timed out (the statement timeout); tried again in {:g} s"


@dataclass(frozen=True, slots=True)
class ReceiverState:
    """This standby's WAL receiver (``pg_stat_wal_receiver``); None fields when it runs none."""

    pid: int | None
    status: str | None
    sender_host: str | None
    sender_port: int | None
    received_lsn: str | None
    replayed_lsn: str | None
    replay_delay_s: float | None
    """How long ago the last transaction replayed was committed (0 when all is replayed)."""
    replay_paused: bool


@dataclass(frozen=True, slots=True)
class WalState:
    """This server's WAL: where it is, how fast it grows, what the directory holds."""

    lsn: str | None
    dir_bytes: int | None
    segments: int | None
    archive_ready: int | None
    """Segments waiting for the archiver."""
    dir_problem: str | None
    """Why the directory was not listed (a privilege), or None."""
    dir_read_at: datetime | None
    rate_bytes_per_s: float | None
    """Since the previous read; None until there is one (or the position went back)."""
    max_wal_size: int
    wal_keep_size: int
    wal_segment_size: int


@dataclass(frozen=True, slots=True)
class ArchiverState:
    archive_mode: str
    archived_count: int
    failed_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    last_failed_wal: str | None
    last_failed_time: datetime | None

    @property
    def failing(self) -> bool:
        """The last attempt failed."""
        failed = self.last_failed_time
        done = self.last_archived_time
        return failed is not None and (done is None or failed > done)


@dataclass(frozen=True, slots=True)
class DatabaseState:
    """One database of the cluster: its size and the recovery conflicts it had."""

    name: str
    readable: bool
    """The role may read its size (CONNECT on it, or pg_read_all_stats)."""
    size_bytes: int | None
    conflicts: Mapping[str, int]
    """Queries cancelled by replay on a standby, by cause (only causes that happened)."""

    @property
    def conflict_count(self) -> int:
        return sum(self.conflicts.values())


CONFLICT_CAUSES = ("tablespace", "lock", "snapshot", "bufferpin", "deadlock", "logical_slot")
"""The causes of recovery conflicts, as ``pg_stat_database_conflicts`` counts them."""


@dataclass(frozen=True, slots=True)
class ReplicationData:
    collected_at: datetime
    in_recovery: bool
    standbys: tuple[StandbyState, ...]
    slots: tuple[SlotState, ...]
    receiver: ReceiverState | None
    """On a standby; None on a primary."""
    wal: WalState
    archiver: ArchiverState
    checkpoints_timed: int | None
    checkpoints_requested: int | None
    last_checkpoint_time: datetime | None
    may_checkpoint: bool
    """The role may run CHECKPOINT (superuser, or pg_checkpoint on 15+)."""
    databases: tuple[DatabaseState, ...]
    """Largest first; read every ``DISK_INTERVAL``."""
    databases_read_at: datetime | None
    databases_problem: str | None = None
    """Why the sizes are not fresh (the read timed out), or None."""


@dataclass(frozen=True, slots=True)
class _WalDir:
    dir_bytes: int
    segments: int
    archive_ready: int
    read_at: datetime


class ReplicationCollector:
    """Reads the Replication tab's data; keeps the last WAL position (for the rate) and the
    last listing of the WAL directory."""

    def __init__(self, context: CollectorContext) -> None:
        self.capabilities = context.capabilities
        self.interval = REPLICATION_INTERVAL
        self._position: tuple[float, float] | None = None
        """The WAL position (bytes) and the monotonic clock when it was read."""
        self._waldir: tuple[_WalDir | None, float] | None = None
        """The last listing (None when it timed out) and the monotonic clock then."""
        self._databases: tuple[tuple[DatabaseState, ...], datetime | None, float] | None = None
        self._problems: dict[str, str] = {}
        """Why the last slow read of "waldir" or "databases" failed."""

    async def close(self) -> None:
        pass

    async def collect(
        self,
        conn: Connection,
        activity: ActivitySnapshot | None = None,
        needs: object = None,
        *,
        due: bool = True,
    ) -> ReplicationData | None:
        if not due:
            return None
        version = self.capabilities.server_version_num
        async with conn.pipeline():
            server_cur = await conn.execute(sql.REPLICATION_SERVER.sql(version))
            slots_cur = await conn.execute(sql.HEALTH_SLOTS.sql(version))
            standbys_cur = await conn.execute(sql.HEALTH_STANDBYS.sql(version))
        server = await server_cur.fetchone()
        assert server is not None
        slots = read_slots(await slots_cur.fetchall())
        standbys = read_standbys(await standbys_cur.fetchall())
        waldir = await self._read_waldir(conn, server["may_list_waldir"], server["collected_at"])
        databases, databases_read_at = await self._read_databases(conn, server["collected_at"])
        problem = self._problems.get("databases")
        return ReplicationData(
            collected_at=server["collected_at"],
            in_recovery=server["in_recovery"],
            standbys=standbys,
            slots=slots,
            receiver=_receiver(server),
            wal=self._wal(server, waldir),
            archiver=ArchiverState(
                **{name: server[name] for name in ArchiverState.__dataclass_fields__}
            ),
            checkpoints_timed=server["checkpoints_timed"],
            checkpoints_requested=server["checkpoints_requested"],
            last_checkpoint_time=server["last_checkpoint_time"],
            may_checkpoint=bool(server["may_checkpoint"]),
            databases=databases,
            databases_read_at=databases_read_at,
            databases_problem=f"database sizes {problem}" if problem else None,
        )

    async def _read_waldir(self, conn: Connection, allowed: bool, now: datetime) -> _WalDir | None:
        if not allowed:
            return None
        clock = time.monotonic()
        if self._waldir is not None and clock - self._waldir[1] < DISK_INTERVAL:
            return self._waldir[0]
        version = self.capabilities.server_version_num
        found = None
        rows = await self._slow_read("waldir", conn, sql.REPLICATION_WALDIR.sql(version))
        if rows is not None:
            row = rows[0]
            found = _WalDir(row["dir_bytes"], row["segments"], row["archive_ready"], now)
        self._waldir = (found, clock)
        return found

    async def _read_databases(
        self, conn: Connection, now: datetime
    ) -> tuple[tuple[DatabaseState, ...], datetime | None]:
        clock = time.monotonic()
        if self._databases is not None and clock - self._databases[2] < DISK_INTERVAL:
            return self._databases[:2]
        version = self.capabilities.server_version_num
        rows = await self._slow_read("databases", conn, sql.REPLICATION_DATABASES.sql(version))
        if rows is None:
            # What was read before stays shown, with when it was read.
            previous = self._databases[:2] if self._databases is not None else ((), None)
            self._databases = (*previous, clock)
            return previous
        found = tuple(
            DatabaseState(
                name=row["name"],
                readable=row["readable"],
                size_bytes=row["size_bytes"],
                conflicts={cause: row[cause] for cause in CONFLICT_CAUSES if row[cause]},
            )
            for row in rows
        )
        self._databases = (found, now, clock)
        return found, now

    async def _slow_read(
        self, what: str, conn: Connection, query: str
    ) -> list[dict[str, Any]] | None:
        """The rows of one of the slow reads, or None when it timed out (said in
        ``self._problems``: the rest of the tab is still shown)."""
        try:
            cur = await conn.execute(query)
            rows = await cur.fetchall()
        except psycopg.errors.QueryCanceled:
            self._problems[what] = TIMED_OUT.format(DISK_INTERVAL)
            return None
        self._problems.pop(what, None)
        return rows

    def _wal(self, server: Mapping[str, Any], waldir: _WalDir | None) -> WalState:
        clock = time.monotonic()
        position = float(server["wal_position"]) if server["wal_position"] is not None else None
        rate = None
        if position is not None:
            previous = self._position
            if previous is not None and clock > previous[1] and position >= previous[0]:
                rate = (position - previous[0]) / (clock - previous[1])
            self._position = (position, clock)
        return WalState(
            lsn=server["wal_lsn"],
            dir_bytes=waldir.dir_bytes if waldir else None,
            segments=waldir.segments if waldir else None,
            archive_ready=waldir.archive_ready if waldir else None,
            dir_problem=(
                WALDIR_PRIVILEGE
                if not server["may_list_waldir"]
                else f"listing pg_wal {self._problems['waldir']}"
                if "waldir" in self._problems
                else None
            ),
            dir_read_at=waldir.read_at if waldir else None,
            rate_bytes_per_s=rate,
            max_wal_size=server["max_wal_size"],
            wal_keep_size=server["wal_keep_size"],
            wal_segment_size=server["wal_segment_size"],
        )


def _receiver(server: Mapping[str, Any]) -> ReceiverState | None:
    if not server["in_recovery"]:
        return None
    return ReceiverState(
        pid=server["receiver_pid"],
        status=server["receiver_status"],
        sender_host=server["sender_host"],
        sender_port=server["sender_port"],
        received_lsn=server["received_lsn"],
        replayed_lsn=server["replayed_lsn"],
        replay_delay_s=server["replay_delay_s"],
        replay_paused=bool(server["replay_paused"]),
    )
