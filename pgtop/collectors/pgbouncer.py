"""PgBouncer's admin console: its pools, each database's traffic as rates, and one pool's
clients and servers on demand.

A refresh sends ``SHOW POOLS``, ``SHOW DATABASES`` and ``SHOW STATS`` one after the other
(the console takes no pipeline). PgBouncer answers each from its memory without asking
PostgreSQL: a refresh costs the pooler microseconds and the databases behind it nothing.
The rates are PgBouncer's own (``SHOW STATS``' averages): per second over its last
statistics period (``stats_period``, 60 s by default), the only span its counters move in.
``SHOW CLIENTS`` and ``SHOW SERVERS`` list every connection, which can be thousands: they are
read only for the pool whose detail is open. Columns are read by name, so a newer
PgBouncer's additions do no harm. Nothing here changes anything: no PAUSE, RESUME, RECONNECT
or KILL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgtop import sql
from pgtop.collectors.base import Connection
from pgtop.model import Pool, PoolerPeer, PoolerTraffic, PoolsSnapshot

Row = Mapping[str, Any]


def _int(row: Row, name: str) -> int:
    value = row.get(name)
    return int(value) if value is not None else 0


def _seconds(row: Row, whole: str, micros: str) -> float:
    """A time PgBouncer gives as whole seconds plus microseconds (``maxwait``,
    ``maxwait_us``)."""
    return _int(row, whole) + _int(row, micros) / 1_000_000


def traffic_of(row: Row) -> PoolerTraffic:
    """A ``SHOW STATS`` row's averages: PgBouncer's own rates over its last statistics
    period.

    >>> t = traffic_of({"database": "app", "avg_xact_count": 10, "avg_query_count": 20,
    ...                 "avg_recv": 1000, "avg_sent": 2000, "avg_query_time": 2000,
    ...                 "avg_wait_time": 500})
    >>> t.xact_per_s, t.query_per_s, t.received_per_s, t.sent_per_s, t.query_ms, t.wait_ms
    (10.0, 20.0, 1000.0, 2000.0, 2.0, 0.5)
    """
    queries = float(_int(row, "avg_query_count"))
    xacts = float(_int(row, "avg_xact_count"))
    return PoolerTraffic(
        database=str(row["database"]),
        xact_per_s=xacts,
        query_per_s=queries,
        received_per_s=float(_int(row, "avg_recv")),
        sent_per_s=float(_int(row, "avg_sent")),
        query_ms=_int(row, "avg_query_time") / 1000 if queries else None,
        wait_ms=_int(row, "avg_wait_time") / 1000 if xacts else None,
    )


def pool_of(row: Row, databases: Mapping[str, Row], rates: Mapping[str, PoolerTraffic]) -> Pool:
    """A ``SHOW POOLS`` row, with its database's pool size and rates."""
    database = str(row["database"])
    listed = databases.get(database)
    rate = rates.get(database)
    pool_size = listed.get("pool_size") if listed is not None else None
    return Pool(
        database=database,
        user=str(row["user"]),
        cl_active=_int(row, "cl_active"),
        cl_waiting=_int(row, "cl_waiting"),
        sv_active=_int(row, "sv_active"),
        sv_idle=_int(row, "sv_idle"),
        sv_used=_int(row, "sv_used"),
        sv_tested=_int(row, "sv_tested"),
        sv_login=_int(row, "sv_login"),
        maxwait_s=_seconds(row, "maxwait", "maxwait_us"),
        pool_mode=row.get("pool_mode"),
        pool_size=None if pool_size is None else int(pool_size),
        xact_per_s=rate.xact_per_s if rate else None,
        query_per_s=rate.query_per_s if rate else None,
    )


async def _rows(conn: Connection, command: str) -> list[dict[str, Any]]:
    cur = await conn.execute(command)
    return await cur.fetchall()


class PoolsCollector:
    """Reads a PgBouncer's pools on every refresh."""

    def __init__(self, version: str) -> None:
        self.version = version

    async def collect(self, conn: Connection) -> PoolsSnapshot:
        pools = await _rows(conn, sql.PGBOUNCER_POOLS)
        databases = {str(row["name"]): row for row in await _rows(conn, sql.PGBOUNCER_DATABASES)}
        rates = {
            str(row["database"]): traffic_of(row) for row in await _rows(conn, sql.PGBOUNCER_STATS)
        }
        return PoolsSnapshot(
            version=self.version,
            collected_at=datetime.now().astimezone(),
            pools=tuple(pool_of(row, databases, rates) for row in pools),
            traffic=tuple(rates[name] for name in sorted(rates)),
        )


def _peer(row: Row) -> PoolerPeer:
    port = row.get("port")
    pid = row.get("remote_pid")
    return PoolerPeer(
        state=str(row.get("state") or ""),
        addr=row.get("addr"),
        port=None if port is None else int(port),
        application_name=str(row.get("application_name") or ""),
        connect_time=str(row.get("connect_time") or ""),
        request_time=str(row.get("request_time") or ""),
        wait_s=_seconds(row, "wait", "wait_us"),
        remote_pid=int(pid) if pid else None,
    )


_STATE_ORDER = {"waiting": 0, "active": 1, "used": 2, "idle": 3}


def _peer_order(peer: PoolerPeer) -> tuple[Any, ...]:
    """Waiting clients first, longest wait first; then by state and age."""
    return (_STATE_ORDER.get(peer.state, 4), -peer.wait_s, peer.connect_time)


@dataclass(frozen=True, slots=True)
class PoolPeers:
    """A pool's clients and servers, waiting clients first."""

    clients: tuple[PoolerPeer, ...]
    servers: tuple[PoolerPeer, ...]


@dataclass(frozen=True, slots=True)
class PoolDetail:
    """A request for one pool's clients and servers (``SHOW CLIENTS``, ``SHOW SERVERS``)."""

    database: str
    user: str

    def _mine(self, rows: list[dict[str, Any]]) -> tuple[PoolerPeer, ...]:
        peers = [
            _peer(row)
            for row in rows
            if row.get("database") == self.database and row.get("user") == self.user
        ]
        return tuple(sorted(peers, key=_peer_order))

    async def read(self, conn: Connection) -> PoolPeers:
        clients = await _rows(conn, sql.PGBOUNCER_CLIENTS)
        servers = await _rows(conn, sql.PGBOUNCER_SERVERS)
        return PoolPeers(self._mine(clients), self._mine(servers))
