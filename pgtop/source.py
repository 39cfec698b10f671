"""The live monitoring connection: polls, reconnects, and never waits on a dead server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import psycopg

from pgtop import pg
from pgtop.collector import ActivityCollector, backend_detail
from pgtop.config import Settings
from pgtop.model import ActivitySnapshot, Backend, Capabilities

Connection = psycopg.AsyncConnection[dict[str, Any]]
T = TypeVar("T")

WATCHDOG_SECONDS = pg.STATEMENT_TIMEOUT_MS / 1000 + 5
"""A poll still running after this long is abandoned with its connection."""


class PollError(Exception):
    """A poll failed. ``str()`` is one line for the user."""

    def __init__(self, message: str, *, connection_lost: bool) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class SnapshotSource(Protocol):
    """Where the app gets its data; tests inject canned sources."""

    capabilities: Capabilities | None

    def describe(self) -> str: ...

    async def collect(self) -> ActivitySnapshot: ...

    async def backend_detail(self, backend: Backend) -> tuple[str | None, list[dict[str, Any]]]: ...

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T: ...

    async def close(self) -> None: ...


class LiveSource:
    """Owns the monitoring connection; reopens it when it is lost."""

    def __init__(
        self,
        settings: Settings,
        conn: Connection | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.settings = settings
        self.capabilities = capabilities
        self._conn = conn
        self._collector: ActivityCollector | None = None
        self._description = pg.describe(conn) if conn else pg.target(settings.conninfo)
        self.lost_since: datetime | None = None
        """When the connection was lost; None while connected."""
        self.attempts = 0
        """Reconnect attempts since the connection was lost."""
        self._lock = asyncio.Lock()
        """One statement or pipeline at a time: psycopg connections are not shareable."""
        self.also_own: Callable[[], Iterable[int | None]] = tuple
        """Other backends of pgtop's (the action connection), never listed as user work."""

    def describe(self) -> str:
        return self._description

    @property
    def monitor_pid(self) -> int | None:
        """The monitoring connection's backend."""
        return self._conn.info.backend_pid if self._conn is not None else None

    @property
    def own_pids(self) -> frozenset[int]:
        """pgtop's own backends: this connection's and those ``also_own`` names."""
        pids = {pid for pid in self.also_own() if pid is not None}
        if self._conn is not None:
            pids.add(self._conn.info.backend_pid)
        return frozenset(pids)

    async def _ensure(self) -> Connection:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._abandon()
        self.attempts += 1
        try:
            conn = await pg.connect(self.settings.conninfo, self.settings.password)
            self.capabilities = await pg.probe(conn)
        except pg.ConnectError as exc:
            raise PollError(str(exc), connection_lost=True) from None
        except psycopg.Error as exc:
            raise PollError(pg.first_line(exc), connection_lost=True) from None
        self._conn = conn
        self._description = pg.describe(conn)
        self._collector = None
        return conn

    def _abandon(self) -> None:
        """Drop the connection at once, without waiting on the server."""
        conn, self._conn = self._conn, None
        self._collector = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
        if self.lost_since is None:
            self.lost_since = datetime.now()

    async def _guarded(self, work: Callable[[Connection], Awaitable[Any]]) -> Any:
        """Run one piece of work on the connection, alone and under the watchdog.

        Connecting is bounded by connect_timeout; the work by the watchdog.
        """
        async with self._lock:
            return await self._watched(work(await self._ensure()))

    async def _watched(self, work: Awaitable[Any]) -> Any:
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=WATCHDOG_SECONDS)
        if not done:
            self._abandon()
            task.cancel()
            raise PollError(
                f"no answer from the server in {WATCHDOG_SECONDS:g}s; connection dropped",
                connection_lost=True,
            )
        try:
            return task.result()
        except psycopg.OperationalError as exc:
            lost = self._conn is None or self._conn.broken or self._conn.closed
            if lost:
                self._abandon()
            raise PollError(pg.first_line(exc), connection_lost=lost) from None
        except psycopg.Error as exc:
            raise PollError(pg.first_line(exc), connection_lost=False) from None

    async def collect(self) -> ActivitySnapshot:
        async def work(conn: Connection) -> ActivitySnapshot:
            if self._collector is None:
                assert self.capabilities is not None
                self._collector = ActivityCollector(self.capabilities, self.own_pids)
            self._collector.own_pids = self.own_pids
            return await self._collector.collect(conn)

        snapshot: ActivitySnapshot = await self._guarded(work)
        self.lost_since = None
        self.attempts = 0
        return snapshot

    async def backend_detail(self, backend: Backend) -> tuple[str | None, list[dict[str, Any]]]:
        async def work(conn: Connection) -> tuple[str | None, list[dict[str, Any]]]:
            return await backend_detail(conn, backend)

        result: tuple[str | None, list[dict[str, Any]]] = await self._guarded(work)
        return result

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a tab's own statements on the monitoring connection, alone and watched."""
        result: T = await self._guarded(work)
        return result

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)
