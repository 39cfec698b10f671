"""The Activity data: every session of pg_stat_activity, and the server's counters as rates.

Read on every refresh, as cheaply as the server allows (see ``ActivityCollector``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from pgtop import pg, sql
from pgtop.model import ActivitySnapshot, Backend, Capabilities, ServerCounters

Connection = psycopg.AsyncConnection[dict[str, Any]]

LIST_QUERY_LIMIT = 2048
"""Characters of each query text fetched for lists; the detail view fetches the rest."""

WHOLE_TEXT_LIMIT = 100_000
"""Characters of a query or statement text read at most, for a detail and ``--once``: a
pg_stat_statements text can reach 1 GB, and any role can make one."""

FULL_READ_SECONDS = 120.0
"""Every row is read again at least this often, whatever the polls in between read."""

SCAN_SECONDS = 2.0
"""Every backend is checked for changes (new, gone, a new statement) at least this often;
the polls in between read only the active ones."""

CHANGES_MARGIN = timedelta(seconds=2)
"""How far before the previous scan a change still counts as new: a backend can stamp its
statement's start a little before it publishes it."""

QUIET_STATES = (None, "idle", "idle in transaction", "idle in transaction (aborted)")
"""States that change only with a new statement (or the session's end): rows in them are
read again when a scan finds one; rows in any other state are read on every poll."""

CHANGED_ROWS_LIMIT = 64
"""Above this many changed rows, one full read of pg_stat_activity is cheaper."""


def rates(
    previous: ServerCounters | None, current: ServerCounters
) -> tuple[float | None, float | None]:
    """Transactions per second and cache hit ratio between two polls.

    Counters that went backwards (a stats reset, a restart) give no rate rather than a
    negative one. Without a usable previous poll, the cache hit ratio is the lifetime one.

    >>> from datetime import datetime, timedelta
    >>> t = datetime(2026, 1, 1)
    >>> a = ServerCounters(t, 100, 900, 100)
    >>> b = ServerCounters(t + timedelta(seconds=2), 300, 1890, 110)
    >>> rates(a, b)
    (100.0, 0.99)
    >>> rates(b, a)
    (None, 0.9)
    """
    lifetime_total = current.blks_hit + current.blks_read
    lifetime_hit = current.blks_hit / lifetime_total if lifetime_total else None
    if previous is None:
        return None, lifetime_hit
    elapsed = (current.collected_at - previous.collected_at).total_seconds()
    xacts = current.xact_total - previous.xact_total
    hits = current.blks_hit - previous.blks_hit
    reads = current.blks_read - previous.blks_read
    if elapsed <= 0 or xacts < 0 or hits < 0 or reads < 0:
        return None, lifetime_hit
    cache_hit = hits / (hits + reads) if hits + reads else lifetime_hit
    return xacts / elapsed, cache_hit


def int_array(pids: Iterable[int]) -> str:
    """An int[] literal of ``pids``, for a parameter cast with ``::int[]``.

    Thousands of pids go out on every scan: psycopg adapts a list element by element in
    Python, five times slower than this join.

    >>> int_array([3, 1, 2]), int_array([])
    ('{3,1,2}', '{}')
    """
    return "{" + ",".join(map(str, pids)) + "}"


def backend_from_row(row: tuple[Any, ...]) -> Backend:
    """A Backend from one row of the ACTIVITY query (its columns are Backend's fields)."""
    return Backend(*row[:19], tuple(sorted(row[19] or ())), row[20])  # type: ignore[call-arg]


class DatabaseCodecs:
    """The encoding of each database's texts, to read a text in its own database's.

    A session's query text (and a statement's, in pg_stat_statements) is in the encoding
    of the database it ran in, whatever database pgtop is connected to: the server hands it
    over as it is (see ``pg._LenientText``), and it is read again here as its own. Read once
    per connection, and again when a database not seen yet shows up.
    """

    def __init__(self) -> None:
        self._codecs: dict[str, str] | None = None
        self._unknown: set[str] = set()
        """Names looked up in vain (a database dropped meanwhile): not asked for again."""

    async def recode(
        self, conn: psycopg.AsyncConnection[Any], texts: list[tuple[str | None, str]]
    ) -> list[str]:
        """Each ``(database, text)`` as its database's encoding reads it."""
        codec = pg.codec_of(conn.info.parameter_status("client_encoding"))
        needed = [db for db, text in texts if db is not None and not text.isascii()]
        if not needed:
            return [text for _, text in texts]
        codecs = self._codecs
        if codecs is None or any(db not in codecs and db not in self._unknown for db in needed):
            cur = await conn.execute(sql.DATABASE_ENCODINGS.sql(conn.info.server_version))
            codecs = {row["name"]: pg.codec_of(row["encoding"]) for row in await cur.fetchall()}
            self._codecs = codecs
            self._unknown = {db for db in needed if db not in codecs}
        return [
            pg.recode(text, codec, codecs.get(db, codec)) if db is not None else text
            for db, text in texts
        ]


class ActivityCollector:
    """Polls pg_stat_activity and the server counters; remembers the last poll for rates.

    The first poll reads every row, and so does one every ``FULL_READ_SECONDS``. In
    between, a poll reads the rows of the backends that are not quiet (active: their wait
    events change at any moment), and every ``SCAN_SECONDS`` also those that changed
    (``sql.ACTIVITY_CHANGES``); the other rows are kept. A role that may not see
    other sessions' timestamps, which the changes are found by, always reads every row.
    """

    def __init__(
        self,
        capabilities: Capabilities,
        own_pids: frozenset[int],
        query_limit: int = LIST_QUERY_LIMIT,
    ) -> None:
        self.capabilities = capabilities
        self.own_pids = own_pids
        self.query_limit = query_limit
        self._previous: ServerCounters | None = None
        self._rows: dict[int, tuple[tuple[Any, ...], Backend]] = {}
        """Last poll's raw rows and Backends by pid: an unchanged row keeps its Backend, so
        nothing downstream redoes work for it (idle sessions rarely change)."""
        self._full_read_at = 0.0
        """When the last full read ran (monotonic clock); the first poll is one anyway."""
        self._scanned: tuple[float, datetime] | None = None
        """When the last full read or scan ran (monotonic clock, and the server's)."""
        version = capabilities.server_version_num
        self._counters_sql = sql.SERVER_COUNTERS.sql(version)
        self._activity_sql = sql.ACTIVITY.sql(version)
        self._changes_sql = sql.ACTIVITY_CHANGES.sql(version)
        self._watched_sql = sql.ACTIVITY_WATCHED.sql(version)
        self._codecs = DatabaseCodecs()

    def _statement(self, now: float) -> tuple[str | None, dict[str, Any], str]:
        """The next poll's activity statement (None: nothing to read), its parameters, and
        its kind: ``full``, ``scan`` or ``watched``."""
        params: dict[str, Any] = {"query_limit": self.query_limit}
        scanned = self._scanned
        if (
            scanned is None
            or not self.capabilities.sees_all_queries
            or now - self._full_read_at >= FULL_READ_SECONDS
        ):
            params["own_pids"] = sorted(self.own_pids)
            return self._activity_sql, params, "full"
        watched = [pid for pid, (_, b) in self._rows.items() if b.state not in QUIET_STATES]
        params["watched"] = int_array(watched)
        if now - scanned[0] < SCAN_SECONDS:
            return (self._watched_sql if watched else None), params, "watched"
        params["own_pids"] = sorted(self.own_pids)
        params["known"] = int_array(self._rows)
        params["since"] = scanned[1] - CHANGES_MARGIN
        params["limit"] = CHANGED_ROWS_LIMIT
        return self._changes_sql, params, "scan"

    async def collect(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> ActivitySnapshot:
        """One poll: both statements go out together in one round trip."""
        now = time.monotonic()
        statement, params, kind = self._statement(now)
        activity_cur = conn.cursor(row_factory=tuple_row)
        async with conn.pipeline():
            counters_cur = await conn.execute(
                self._counters_sql, {"own_pids": sorted(self.own_pids)}
            )
            if statement is not None:
                await activity_cur.execute(statement, params)
        counters_row = await counters_cur.fetchone()
        assert counters_row is not None
        counters = ServerCounters(**counters_row)
        previous = self._rows
        current = {} if kind == "full" else dict(previous)
        made: list[Backend] = []
        for row in await activity_cur.fetchall() if statement is not None else ():
            pid = row[0]
            if kind != "full":
                row, gone = row[:-1], row[-1]
                if gone:
                    current.pop(pid, None)
                    continue
            known = previous.get(pid)
            if known is not None and known[0] == row:
                backend = known[1]
            else:
                backend = backend_from_row(row)
                made.append(backend)
            current[pid] = (row, backend)
        texts = await self._codecs.recode(conn, [(b.database, b.query) for b in made])
        for backend, text in zip(made, texts, strict=True):
            if text is not backend.query:
                current[backend.pid] = (current[backend.pid][0], replace(backend, query=text))
        for pid in self.own_pids & current.keys():
            del current[pid]
        self._rows = current
        if kind == "full":
            self._full_read_at = now
        if kind != "watched":
            self._scanned = (now, counters.collected_at)
        tps, cache_hit = rates(self._previous, counters)
        self._previous = counters
        return ActivitySnapshot(
            capabilities=self.capabilities,
            counters=counters,
            backends=tuple(backend for _, backend in current.values()),
            own_pids=self.own_pids,
            tps=tps,
            cache_hit=cache_hit,
        )


@dataclass(frozen=True, slots=True)
class SessionDetail:
    """A request for one session's query text (up to ``WHOLE_TEXT_LIMIT`` characters and one
    more, to tell when it was cut; None when the session has ended) and its locks."""

    backend: Backend

    async def read(self, conn: Connection) -> tuple[str | None, list[dict[str, Any]]]:
        backend = self.backend
        version = conn.info.server_version
        params = {
            "pid": backend.pid,
            "backend_start": backend.backend_start,
            "limit": WHOLE_TEXT_LIMIT + 1,
        }
        async with conn.pipeline():
            query_cur = await conn.execute(sql.BACKEND_QUERY.sql(version), params)
            locks_cur = await conn.execute(sql.BACKEND_LOCKS.sql(version), params)
        query_row = await query_cur.fetchone()
        locks = await locks_cur.fetchall()
        if query_row is None:
            return None, locks
        (query,) = await DatabaseCodecs().recode(conn, [(backend.database, query_row["query"])])
        return query, locks
