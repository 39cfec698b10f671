"""The servers view's figures: one cheap statement per server and refresh (``SERVER_FIGURES``),
and each server's row (its figures, the state of pgtop's connection to it, its worst finding).

A server not in view is read only this way; the server in view is also read in full by the
tabs, and its row takes the worst finding of the Health tab's checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgtop import sql
from pgtop.collectors.base import Connection
from pgtop.collectors.health import Finding, Status
from pgtop.config import Thresholds
from pgtop.formats import duration


@dataclass(frozen=True, slots=True)
class ServerFigures:
    """One read of a server's light figures."""

    collected_at: datetime
    version: str
    standby: bool
    max_connections: int
    connections: int
    """Client backends, pgtop's own included."""
    active: int
    """Client backends running a statement, pgtop's own not counted."""
    waiting: int
    """Backends waiting on a lock."""
    xacts: int
    """Transactions committed and rolled back since the statistics were reset."""
    lag_s: float | None
    """A standby's replay delay (0 when it has replayed all it received); None on a primary."""
    upstream: str | None
    """A standby's upstream, ``host:port`` (None: not streaming, or not visible to the role)."""
    standbys: int
    """Standbys streaming from this server."""
    tps: float | None = None
    """Transactions per second since the previous read (None on the first)."""


async def read_figures(conn: Connection) -> tuple[dict[str, Any], float]:
    """The row of ``SERVER_FIGURES`` and when it was read (``time.monotonic``)."""
    cur = await conn.execute(sql.SERVER_FIGURES.sql(conn.info.server_version))
    row = await cur.fetchone()
    assert row is not None
    return row, time.monotonic()


class FiguresReader:
    """Reads one server's figures; keeps the previous read for the transaction rate."""

    def __init__(self) -> None:
        self._previous: tuple[int, float] | None = None

    async def read(self, conn: Connection) -> ServerFigures:
        row, clock = await read_figures(conn)
        return self.figures(row, clock)

    def figures(self, row: dict[str, Any], clock: float) -> ServerFigures:
        xacts = int(row["xacts"] or 0)
        tps = None
        previous = self._previous
        if previous is not None and clock > previous[1] and xacts >= previous[0]:
            tps = (xacts - previous[0]) / (clock - previous[1])
        self._previous = (xacts, clock)
        upstream = None
        if row["upstream_host"]:
            upstream = f"{row['upstream_host']}:{row['upstream_port']}"
        return ServerFigures(
            collected_at=datetime.now().astimezone(),
            version=str(row["version"]).split(" ")[0],
            standby=bool(row["standby"]),
            max_connections=int(row["max_connections"]),
            connections=int(row["connections"]),
            active=int(row["active"]),
            waiting=int(row["waiting"]),
            xacts=xacts,
            lag_s=row["lag_s"],
            upstream=upstream,
            standbys=int(row["standbys"]),
            tps=tps,
        )


def _grade(value: float, bounds: tuple[float, float]) -> Status:
    warn, crit = bounds
    return Status.CRIT if value >= crit else Status.WARN if value >= warn else Status.OK


def light_finding(figures: ServerFigures, limits: Thresholds) -> Finding:
    """The worse of the checks the figures allow (connection slots, a standby's replay lag),
    graded with the Health tab's thresholds: what the row of a server not in view shows."""
    used = 100.0 * figures.connections / max(figures.max_connections, 1)
    findings = [
        Finding(
            "connections",
            _grade(used, limits.connections),
            f"{used:.0f}% of connection slots used",
            f"{used:.0f}% of connections",
            used,
        )
    ]
    if figures.lag_s is not None:
        findings.append(
            Finding(
                "replication_lag",
                _grade(figures.lag_s, limits.replication_lag),
                f"replay {duration(figures.lag_s)} behind",
                f"replay {duration(figures.lag_s)} behind",
                figures.lag_s,
            )
        )
    return max(findings, key=lambda finding: finding.status)


@dataclass(frozen=True, slots=True)
class StandbyAddress:
    """A standby streaming from a primary: the address it connects from (None: a local
    socket) and its application_name."""

    address: str | None
    name: str


@dataclass(frozen=True, slots=True)
class StandbyAddresses:
    """A request: the standbys a primary streams to (``pg_stat_replication``)."""

    async def read(self, conn: Connection) -> tuple[StandbyAddress, ...]:
        cur = await conn.execute(sql.STANDBY_ADDRESSES.sql(conn.info.server_version))
        return tuple(StandbyAddress(row["address"], row["name"]) for row in await cur.fetchall())


@dataclass(frozen=True, slots=True)
class FiguresRequest:
    """A request: the figures of the server, read with ``reader``."""

    reader: FiguresReader

    async def read(self, conn: Connection) -> ServerFigures:
        return await self.reader.read(conn)


@dataclass(frozen=True, slots=True)
class ServerRow:
    """One server in the servers view: its figures (None before the first read), and the
    state of pgtop's connection to it."""

    name: str
    host: str
    port: str
    figures: ServerFigures | None
    status: str
    """``ok``, ``connecting``, ``reconnecting since HH:MM:SS: reason``, ``refused: reason``."""
    ok: bool
    finding: Finding | None
    """The worst finding: the Health tab's for the server in view, the light checks' else."""
    in_view: bool = False
    read_only: bool = False

    @property
    def role(self) -> str:
        if self.figures is None:
            return ""
        return "standby" if self.figures.standby else "primary"
