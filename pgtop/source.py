"""Where every tab's data comes from: the contract between a source, its collectors and the
panes, and the live server as a source.

The contract:

* A **source** gives, on each refresh, the Activity snapshot (``poll``) and the data of the
  tab on screen (``collect``): frozen values, never a live object. It answers requests made
  on demand (``fetch``: a session's detail, a statement's text or plan, the list of
  databases), each a frozen value that says what it wants. It says where it is
  (``describe``), what the role may see (``capabilities``), and since when and how often it
  has been trying to reconnect (``lost_since``, ``attempts``). It may offer actions
  (``actions``: None where nothing may be changed, such as a recording), and says whether
  the catalog tabs may read another database (``other_databases``). What it reads is a
  PostgreSQL server or a PgBouncer admin console (``kind``): the tabs shown depend on it
  (``pgtop.tabs.tabs_for``), and for a PgBouncer the snapshot of each refresh is its pools
  (``PoolsSnapshot``), not the Activity snapshot. Today's sources are the live server
  (``LiveSource``) and the live PgBouncer console (``PoolerSource``); a recording played
  back is another implementation of the same protocol, and no tab changes for it. Another
  server is another source: with several (``pgtop.servers``), the app shows one at a time.
* A **collector** (``pgtop.collectors.base``) gets the monitoring connection, the Activity
  snapshot just taken and what the tab's pane needs, and returns the tab's data; it alone
  keeps caches and other connections, which it opens through its context (the source holds
  the connection settings and the password).
* A **pane** shows what it is given, says what it needs as a frozen value (the rows on
  screen, the database, a read of everything now) and asks for requests and actions through
  its host (the app). It never touches a collector, a connection or a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

import psycopg
from psycopg import conninfo as pq_conninfo

from pgtop import pg
from pgtop.actions import ActionRunner
from pgtop.collectors.activity import LIST_QUERY_LIMIT, ActivityCollector
from pgtop.collectors.base import CollectorContext, CollectorFactory, Connection, TabCollector
from pgtop.config import Settings
from pgtop.model import ActivitySnapshot, Capabilities, PoolsSnapshot, Snapshot

if TYPE_CHECKING:
    from pgtop.collectors.pgbouncer import PoolsCollector

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

WATCHDOG_SECONDS = pg.STATEMENT_TIMEOUT_MS / 1000 + 5
"""A poll still running after this long is abandoned with its connection."""
TAB_MAX_BACKOFF = 60.0
"""Longest wait before a tab whose collection keeps failing is tried again."""


class PollError(Exception):
    """A poll failed. ``str()`` is one line for the user."""

    def __init__(self, message: str, *, connection_lost: bool) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class Request(Protocol[T_co]):
    """Something read on demand: a frozen value that knows how to read itself."""

    async def read(self, conn: Connection) -> T_co: ...


SourceKind = Literal["postgresql", "pgbouncer"]
"""What a source reads: a PostgreSQL server, or a PgBouncer's admin console."""


class Source(Protocol):
    """Where the app gets its data (see the module's docstring)."""

    kind: SourceKind
    capabilities: Capabilities | None
    """What the role may see and do on PostgreSQL (None before connecting, and on a
    PgBouncer)."""
    lost_since: datetime | None
    """When the connection was lost; None while connected."""
    attempts: int
    """Reconnect attempts since the connection was lost."""
    actions: ActionRunner | None
    """Runs actions; None where none may run (read-only, a recording)."""
    other_databases: bool
    """The catalog tabs may read another database than the monitoring connection's (a
    live server: a connection of their own; not a recording)."""

    def describe(self) -> str: ...

    async def poll(self) -> Snapshot:
        """The snapshot of this refresh: the Activity snapshot, or a PgBouncer's pools.

        Raises:
            PollError: it could not be read.
        """
        ...

    async def collect(
        self, tab: str, activity: Snapshot, needs: object, *, now: bool = False
    ) -> object | None:
        """``tab``'s data, or None when it has nothing new (not due yet, or no collector).

        Args:
            needs: what the tab's pane needs (its collector's own frozen type), or None.
            now: what ``needs`` newly asks for is wanted now, even during a back-off
                after failures (the collector reads everything only when it is due, or
                when ``needs`` asks for everything).

        Raises:
            PollError: it could not be read; the message says when it is tried again.
        """
        ...

    async def fetch(self, request: Request[T]) -> T:
        """What ``request`` reads.

        Raises:
            PollError: it could not be read.
        """
        ...

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run the app's own statements around an action (checks before a signal, its
        progress) on the monitoring connection.

        Raises:
            PollError: there is no connection to run them on.
        """
        ...

    async def close(self) -> None: ...


class _Tab:
    """A tab's collector, with when it last ran and how often it failed since."""

    def __init__(self, collector: TabCollector) -> None:
        self.collector = collector
        self.collected_at: float | None = None
        self.failures = 0
        self.retry_at = 0.0


class _Connected:
    """A live source's monitoring connection: opened again when it is lost, one piece of
    work at a time, each under a watchdog. A subclass says how a connection is opened
    (``_open``) and what it made for the old one (``_forget``)."""

    def __init__(self, settings: Settings, conn: Connection | None, name: str = "") -> None:
        self.settings = settings
        self.name = name
        """The server's name among several (``describe`` starts with it); "" alone."""
        self._conn = conn
        self._description = pg.describe(conn) if conn else pg.target(settings.conninfo)
        self.lost_since: datetime | None = None
        self.attempts = 0
        self._lock = asyncio.Lock()
        """One statement or pipeline at a time: psycopg connections are not shareable."""

    def describe(self) -> str:
        return f"{self.name} · {self._description}" if self.name else self._description

    @property
    def monitor_pid(self) -> int | None:
        """The monitoring connection's backend."""
        return self._conn.info.backend_pid if self._conn is not None else None

    async def _open(self) -> Connection:
        """A new monitoring connection.

        Raises:
            pg.ConnectError: it cannot be opened.
            psycopg.Error: what is read on opening it cannot be read.
        """
        raise NotImplementedError

    def _forget(self) -> None:
        """The connection is gone: drop what was made for it."""

    async def _ensure(self) -> Connection:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._abandon()
        self.attempts += 1
        try:
            conn = await self._open()
        except pg.ConnectError as exc:
            raise PollError(str(exc), connection_lost=True) from None
        except psycopg.Error as exc:
            raise PollError(pg.first_line(exc), connection_lost=True) from None
        self._conn = conn
        self._description = pg.describe(conn)
        return conn

    def _abandon(self) -> None:
        """Drop the connection at once, without waiting on the server; what was made for it
        goes with it."""
        conn, self._conn = self._conn, None
        self._forget()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
        if self.lost_since is None:
            self.lost_since = datetime.now()

    async def _guarded(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run one piece of work on the connection, alone and under the watchdog.

        Connecting is bounded by connect_timeout; the work by the watchdog.
        """
        async with self._lock:
            return await self._watched(work(await self._ensure()))

    async def _watched(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=WATCHDOG_SECONDS)
        except asyncio.CancelledError:
            # Whoever asked is gone (a detail closed, a read started again), but the work
            # goes on on the connection: it keeps the connection, and the lock, until it
            # ends, so that the next work never meets it there (psycopg connections are not
            # shareable; a plan's transaction would take in the next statement).
            done, _ = await asyncio.wait({task}, timeout=WATCHDOG_SECONDS)
            if not done:
                self._abandon()
                task.cancel()
            elif not task.cancelled():
                task.exception()  # seen: its failure was no one's to report
            raise
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

    def _connected(self) -> None:
        """A refresh succeeded: the connection is not lost."""
        self.lost_since = None
        self.attempts = 0

    async def fetch(self, request: Request[T]) -> T:
        found = await self._guarded(request.read)
        self._connected()
        return found

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        return await self._guarded(work)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)


class LiveSource(_Connected):
    """The live server: owns the monitoring connection, reopens it when it is lost, and
    makes the tabs' collectors for each connection."""

    kind: SourceKind = "postgresql"

    def __init__(
        self,
        settings: Settings,
        conn: Connection | None = None,
        capabilities: Capabilities | None = None,
        *,
        collectors: Mapping[str, CollectorFactory] | None = None,
        query_limit: int = LIST_QUERY_LIMIT,
        action_conn: Connection | None = None,
        name: str = "",
    ) -> None:
        super().__init__(settings, conn, name)
        self.capabilities = capabilities
        self._factories: Mapping[str, CollectorFactory] = collectors or {}
        self._query_limit = query_limit
        self._collector: ActivityCollector | None = None
        self._tabs: dict[str, _Tab] = {}
        self._context: CollectorContext | None = None
        self._closing: set[asyncio.Future[None]] = set()
        self.other_databases = True
        self.actions: ActionRunner | None = None
        if not settings.read_only:
            self.actions = ActionRunner(
                settings.conninfo, settings.password, settings.action_lock_timeout, action_conn
            )

    @property
    def own_pids(self) -> frozenset[int]:
        """pgtop's own backends: the monitoring connection's and the action connection's."""
        pids: Iterable[int | None] = (
            self.monitor_pid,
            self.actions.pid if self.actions is not None else None,
        )
        return frozenset(pid for pid in pids if pid is not None)

    # -- the connection ----------------------------------------------------------------------

    async def _open(self) -> Connection:
        conn = await pg.connect(self.settings.conninfo, self.settings.password)
        try:
            self.capabilities = await pg.probe(conn)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
            raise
        return conn

    def _forget(self) -> None:
        """The collectors made for the connection go with it."""
        self._collector = None
        tabs, self._tabs = self._tabs, {}
        self._context = None
        for tab in tabs.values():
            # What they opened (a connection to another database) is closed in the
            # background: nothing waits on a server that may be gone.
            closing = asyncio.ensure_future(tab.collector.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    # -- the contract ------------------------------------------------------------------------

    async def poll(self) -> ActivitySnapshot:
        async def work(conn: Connection) -> ActivitySnapshot:
            if self._collector is None:
                assert self.capabilities is not None
                self._collector = ActivityCollector(
                    self.capabilities, self.own_pids, query_limit=self._query_limit
                )
            self._collector.own_pids = self.own_pids
            return await self._collector.collect(conn)

        snapshot = await self._guarded(work)
        self._connected()
        return snapshot

    def _tab(self, tab: str) -> _Tab | None:
        factory = self._factories.get(tab)
        if factory is None:
            return None
        made = self._tabs.get(tab)
        if made is None:
            assert self.capabilities is not None
            if self._context is None:
                self._context = CollectorContext(
                    self.capabilities, self._connect_to, self.settings.health
                )
            made = self._tabs[tab] = _Tab(factory(self._context))
        return made

    async def _connect_to(self, database: str) -> Connection:
        conninfo = pq_conninfo.make_conninfo(self.settings.conninfo, dbname=database)
        return await pg.connect(conninfo, self.settings.password)

    async def collect(
        self, tab: str, activity: Snapshot, needs: object, *, now: bool = False
    ) -> object | None:
        made = self._tab(tab)
        if made is None:
            return None
        clock = time.monotonic()
        if now:
            made.retry_at = 0.0
        elif clock < made.retry_at:
            return None
        last = made.collected_at
        due = last is None or clock - last >= made.collector.interval
        collector = made.collector
        try:
            data = await self._guarded(
                lambda conn: collector.collect(conn, activity, needs, due=due)
            )
        except PollError as exc:
            raise PollError(
                self._failed(made, str(exc)), connection_lost=exc.connection_lost
            ) from None
        except Exception:  # a bug: reported by the caller, and not retried at once either
            self._failed(made, "")
            raise
        if due:
            made.collected_at = time.monotonic()
        made.failures = 0
        return data

    def _failed(self, made: _Tab, reason: str) -> str:
        """A tab's collection failed: try again later and later (up to a minute), not on
        every refresh (a database that refuses the connection logs an error each time)."""
        made.failures += 1
        base = max(self.settings.refresh, made.collector.interval)
        delay = min(TAB_MAX_BACKOFF, base * 2 ** (made.failures - 1))
        made.retry_at = time.monotonic() + delay
        return f"{reason} (next try in {delay:.0f}s)"

    async def close(self) -> None:
        for made in self._tabs.values():
            with contextlib.suppress(Exception):
                await made.collector.close()
        self._tabs = {}
        if self.actions is not None:
            await self.actions.close()
        await super().close()


class PoolerSource(_Connected):
    """A live PgBouncer admin console: its pools on every refresh, a pool's clients and
    servers on demand; read-only (no PAUSE, RESUME, RECONNECT or KILL), and reopened when
    lost like the server's connection."""

    kind: SourceKind = "pgbouncer"

    def __init__(self, settings: Settings, conn: Connection | None = None) -> None:
        super().__init__(settings, conn)
        self.capabilities: Capabilities | None = None
        self.actions: ActionRunner | None = None
        self.other_databases = False
        # A PgBouncer's modules load only when one is watched.
        from pgtop.collectors.health import PoolerHealth

        self._collector: PoolsCollector | None = None
        self._health = PoolerHealth(settings.health)

    async def _open(self) -> Connection:
        return await pg.connect_console(self.settings.conninfo, self.settings.password)

    def _forget(self) -> None:
        self._collector = None

    async def poll(self) -> PoolsSnapshot:
        async def work(conn: Connection) -> PoolsSnapshot:
            if self._collector is None:
                from pgtop.collectors.pgbouncer import PoolsCollector

                self._collector = PoolsCollector(pg.bouncer_version(conn) or "?")
            return await self._collector.collect(conn)

        snapshot = await self._guarded(work)
        self._connected()
        return snapshot

    async def collect(
        self, tab: str, activity: Snapshot, needs: object, *, now: bool = False
    ) -> object | None:
        """The Health checks, from the pools just read; nothing for the Pools tab, which
        shows the snapshot of each refresh."""
        if tab == "health" and isinstance(activity, PoolsSnapshot):
            return self._health.evaluate(activity)
        return None
