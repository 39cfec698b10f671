"""pg_stat_statements as "what is slow right now": readings, rates between them, plans.

pg_stat_statements keeps cumulative counters per statement since its last reset, often
months old. pgtop reads them (without texts) on every collection and compares two readings:

* *now*: the last two collections, as rates per second;
* *since mark*: the reading remembered when the user set a mark (pgtop never resets the
  extension's statistics);
* *lifetime*: the cumulative counters, as the extension shows them.

An entry whose counters went backwards (a reset, an eviction and a new entry with the same
key) starts again from zero: its figures count from the restart, never negatively.

Statement texts live in a file on the server and can be large: they are fetched only for the
statements on screen, once, and cached by queryid.

The columns follow the version of the extension created in the connected database (see
``queries.STATEMENT_COUNTERS``). What the role may not use is found out once per connection
and explained, not retried on every poll.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from pgtop import queries
from pgtop.collector import WHOLE_TEXT_LIMIT, Connection, DatabaseCodecs
from pgtop.model import ActivitySnapshot, Capabilities
from pgtop.text import duration, name_text, one_line

if TYPE_CHECKING:
    from pgtop.once import Report

EXTENSION = "pg_stat_statements"
OLDEST_EXTENSION = (1, 3)
"""Oldest extension version read (1.3 added min/max/mean/stddev; 1.4 is the oldest script)."""
STATEMENTS_INTERVAL = 5.0
"""Least seconds between two readings: the tab refreshes at max(this, the refresh interval)."""
FIRST_INTERVAL = 1.0
"""Seconds until the second reading after a first one (or a long pause), so rates come soon."""
RECHECK_SECONDS = 60.0
"""How often a missing extension is looked for again (a cheap catalog query)."""
TEXT_LIMIT = 1024
"""Characters of each statement text kept for the list; the detail fetches the whole text."""
TEXT_CACHE_SIZE = 10_000
"""Statement texts kept in memory (pg_stat_statements.max is 5000 by default)."""
EXPLAIN_STATEMENT_TIMEOUT_MS = 3000
EXPLAIN_LOCK_TIMEOUT_MS = 200

StatementKey = tuple[int, int, int | None, bool | None]
"""(userid, dbid, queryid, toplevel): the identity of an entry (toplevel from 1.9)."""


# -- counters ----------------------------------------------------------------------------------


class Counters(NamedTuple):
    """Cumulative counters of one entry, or what they grew by between two readings.

    None: the extension version in use does not track it. Times are in milliseconds.
    The field order is the column order of ``queries.STATEMENT_COUNTERS``.

    A NamedTuple rather than a frozen dataclass: a reading builds one per entry (5,000 by
    default) and a tuple is built from a row slice about 15 times faster.
    """

    calls: int
    exec_ms: float
    """Total execution time (``total_exec_time``; ``total_time`` before 1.8)."""
    plans: int | None
    plan_ms: float | None
    """Total planning time (0 unless pg_stat_statements.track_planning is on)."""
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    shared_blks_dirtied: int
    shared_blks_written: int
    local_blks_hit: int
    local_blks_read: int
    local_blks_dirtied: int
    local_blks_written: int
    temp_blks_read: int
    temp_blks_written: int
    shared_blk_read_ms: float
    """``shared_blk_read_time`` (1.11+), ``blk_read_time`` before; 0 without track_io_timing."""
    shared_blk_write_ms: float
    local_blk_read_ms: float | None
    local_blk_write_ms: float | None
    temp_blk_read_ms: float | None
    temp_blk_write_ms: float | None
    wal_records: int | None
    wal_fpi: int | None
    wal_bytes: int | None
    wal_buffers_full: int | None
    jit_functions: int | None
    jit_generation_ms: float | None
    jit_inlining_count: int | None
    jit_inlining_ms: float | None
    jit_optimization_count: int | None
    jit_optimization_ms: float | None
    jit_emission_count: int | None
    jit_emission_ms: float | None
    jit_deform_count: int | None
    jit_deform_ms: float | None
    parallel_workers_to_launch: int | None
    parallel_workers_launched: int | None


COUNTER_FIELDS: tuple[str, ...] = Counters._fields
_KEY_COLUMNS = ("userid", "dbid", "toplevel", "queryid", "user", "database")
_LIFETIME_COLUMNS = (
    "min_exec_ms",
    "max_exec_ms",
    "mean_exec_ms",
    "stddev_exec_ms",
    "stats_since",
    "minmax_stats_since",
)
COUNTER_COLUMNS: tuple[str, ...] = (*_KEY_COLUMNS, *COUNTER_FIELDS, *_LIFETIME_COLUMNS)
"""Columns of ``queries.STATEMENT_COUNTERS``, in order, in every variant."""
_FIRST = len(_KEY_COLUMNS)
_LAST = _FIRST + len(COUNTER_FIELDS)


def _combine(a: Counters, b: Counters, sign: int) -> Counters:
    return Counters._make(
        None if x is None or y is None else x + sign * y for x, y in zip(a, b, strict=True)
    )


def difference(old: Counters, new: Counters) -> Counters:
    """What each counter grew by from ``old`` to ``new`` (same entry, no restart between)."""
    return _combine(new, old, -1)


def total(counters: Iterable[Counters]) -> Counters:
    """The sum of several entries' counters."""
    items = iter(counters)
    result = next(items)
    for more in items:
        result = _combine(result, more, 1)
    return result


@dataclass(frozen=True, slots=True)
class Statement:
    """One pg_stat_statements entry as read at one collection.

    Entries of other roles, whose queryid and text this role may not see, are summed per
    role, database and nesting level into one Statement with ``queryid`` None.
    """

    userid: int
    dbid: int
    toplevel: bool | None
    """False for statements run inside functions (tracked with pg_stat_statements.track=all);
    None before 1.9."""
    queryid: int | None
    """None: hidden from this role (needs pg_read_all_stats)."""
    user: str | None
    """Role name; None when the role has been dropped."""
    database: str | None
    counters: Counters
    min_exec_ms: float | None = None
    max_exec_ms: float | None = None
    mean_exec_ms: float | None = None
    stddev_exec_ms: float | None = None
    stats_since: datetime | None = None
    """When the entry's counters started (1.11+): a change means it restarted."""
    minmax_stats_since: datetime | None = None
    entries: int = 1
    """How many entries were summed into this one (hidden statements)."""

    @property
    def key(self) -> StatementKey:
        return (self.userid, self.dbid, self.queryid, self.toplevel)

    @property
    def hidden(self) -> bool:
        """Its queryid and text are hidden from this role."""
        return self.queryid is None

    @property
    def nested(self) -> bool:
        """Run inside a function or procedure (not sent by a client)."""
        return self.toplevel is False


def statements_from_rows(rows: Iterable[tuple[Any, ...]]) -> dict[StatementKey, Statement]:
    """Statements keyed by identity from rows of ``queries.STATEMENT_COUNTERS``.

    Rows that share a key are summed: other roles' entries without a visible queryid, and
    top-level and nested entries of a server newer than its extension (before 1.9 the
    extension does not show the toplevel flag that tells them apart).
    """
    result: dict[StatementKey, Statement] = {}
    make = Counters._make
    for row in rows:
        userid, dbid, toplevel, queryid = row[0], row[1], row[2], row[3]
        rest = row[_LAST:]
        statement = Statement(
            userid,
            dbid,
            toplevel,
            queryid,
            row[4],
            row[5],
            make(row[_FIRST:_LAST]),
            rest[0],
            rest[1],
            rest[2],
            rest[3],
            rest[4],
            rest[5],
        )
        key = (userid, dbid, queryid, toplevel)
        same = result.get(key)
        if same is not None:
            statement = Statement(
                userid,
                dbid,
                toplevel,
                queryid,
                same.user,
                same.database,
                total((same.counters, statement.counters)),
                entries=same.entries + 1,
            )
        result[key] = statement
    return result


@dataclass(frozen=True, slots=True)
class Reading:
    """Every entry's counters at one moment: a collection, or the user's mark."""

    collected_at: datetime
    """Server clock when the counters were read."""
    statements: Mapping[StatementKey, Statement]
    dealloc: int | None = None
    """Entries evicted since the last reset (1.9+): their counters are lost."""
    stats_reset: datetime | None = None
    """When all statistics were last reset (1.9+)."""


class TextSource(Protocol):
    """Where the pane gets statement texts for what it shows (the collector)."""

    wanted: frozenset[int]
    """Queryids on screen: their texts are fetched if not cached yet."""

    async def fetch_texts(self, conn: Connection, queryids: Iterable[int]) -> Mapping[int, str]:
        """Texts of these queryids (cached ones without a query); returns all it knows."""
        ...


@dataclass(frozen=True, slots=True)
class StatementsSnapshot:
    """What one collection of the Queries tab saw."""

    current: Reading
    previous: Reading | None
    """The collection before (for *now*); None on the first one."""
    texts: Mapping[int, str]
    """Known statement texts by queryid (clipped to TEXT_LIMIT characters)."""
    extension_version: str
    server_version_num: int
    database: str
    """The connected database: plans can be made only for its statements."""
    user: str
    """pgtop's role: its own statements are marked."""
    sees_all: bool
    """The role sees every role's queryids and texts (pg_read_all_stats)."""
    text_source: TextSource | None = field(default=None, compare=False, repr=False)
    extension_schema: str = "public"
    """The schema the extension lives in: its objects are named through it."""
    texts_problem: str = ""
    """Why statement texts cannot be read ("" when they can)."""

    @property
    def collected_at(self) -> datetime:
        return self.current.collected_at

    @property
    def hidden_entries(self) -> int:
        return sum(s.entries for s in self.current.statements.values() if s.hidden)

    @property
    def evicted(self) -> int | None:
        """Entries evicted between the previous collection and this one."""
        if self.previous is None or self.previous.dealloc is None or self.current.dealloc is None:
            return None
        return max(0, self.current.dealloc - self.previous.dealloc)


@dataclass(frozen=True, slots=True)
class StatementsUnavailable:
    """Why the Queries tab cannot show anything, and what would fix it."""

    reason: str
    """One line: what is missing."""
    remedy: str
    """What to do about it, a few sentences."""
    recheck: bool = False
    """pgtop looks again now and then (the extension may be created while it runs)."""


class TextsUnreadableError(Exception):
    """pg_stat_statements cannot hand over its texts in this database; ``str()`` says why."""


class StatementsUnavailableError(queries.UnsupportedServerError):
    """Raised by ``--once queries`` when pg_stat_statements cannot be read."""


def not_preloaded(database: str, created: bool) -> StatementsUnavailable:
    """The extension's library is not loaded; ``created``: the extension exists here."""
    remedy = (
        "Add it to shared_preload_libraries in postgresql.conf (for example "
        "shared_preload_libraries = 'pg_stat_statements') and restart PostgreSQL: this "
        "setting is read only at server start."
    )
    if not created:
        remedy += (
            f" Then run CREATE EXTENSION pg_stat_statements; in database "
            f"'{name_text(database, 64)}'."
        )
    return StatementsUnavailable(
        reason="pg_stat_statements is not loaded by the server", remedy=remedy
    )


def not_created(database: str, preloaded: bool | None) -> StatementsUnavailable:
    remedy = (
        "Run CREATE EXTENSION pg_stat_statements; in database "
        f"'{name_text(database, 64)}' (as a superuser or the database owner), or connect "
        "pgtop to a database that has it: its statistics cover every database. pgtop "
        "looks for it again every minute."
    )
    if preloaded is None:
        remedy += (
            " It must also be in shared_preload_libraries, which this role may not read "
            "(pg_read_all_settings)."
        )
    return StatementsUnavailable(
        reason=f"pg_stat_statements is not created in database '{name_text(database, 64)}'",
        remedy=remedy,
        recheck=True,
    )


def too_old(database: str, version: str) -> StatementsUnavailable:
    oldest = ".".join(map(str, OLDEST_EXTENSION))
    return StatementsUnavailable(
        reason=f"pg_stat_statements {version} in database '{name_text(database, 64)}' is too old",
        remedy=(
            f"pgtop reads version {oldest} or newer: run ALTER EXTENSION pg_stat_statements "
            f"UPDATE; in database '{name_text(database, 64)}'."
        ),
    )


def version_tuple(version: str) -> tuple[int, ...]:
    """``"1.10"`` -> ``(1, 10)``; parts that are not numbers are ignored."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def availability(caps: Capabilities) -> StatementsUnavailable | None:
    """What the probe already tells: None when the extension looks usable."""
    if caps.pgss_preloaded is False:
        return not_preloaded(caps.database, caps.pgss_version is not None)
    if caps.pgss_version is None:
        return not_created(caps.database, caps.pgss_preloaded)
    if version_tuple(caps.pgss_version) < OLDEST_EXTENSION:
        return too_old(caps.database, caps.pgss_version)
    return None


def privilege_notice(snapshot: StatementsSnapshot) -> str:
    """What this role cannot see, and which role unlocks it; "" when it sees everything."""
    if snapshot.sees_all:
        return ""
    hidden = snapshot.hidden_entries
    count = f"{hidden}, " if hidden else ""
    return (
        f"Other roles' statement texts are hidden ({count}summed per role): "
        f"GRANT pg_read_all_stats (or pg_monitor) TO {snapshot.user};"
    )


# -- figures per mode --------------------------------------------------------------------------


class Mode(Enum):
    """How the list compares readings."""

    NOW = "now"
    """Between the last two collections, per second."""
    MARK = "since mark"
    """Since the reading the user marked."""
    LIFETIME = "lifetime"
    """Cumulative, since the entry was created or the statistics reset."""

    def next(self) -> Mode:
        members = list(Mode)
        return members[(members.index(self) + 1) % len(members)]


@dataclass(frozen=True, slots=True)
class Figures:
    """What one statement did over a span (or its lifetime): the columns of the list."""

    calls: int
    exec_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    temp_blks_written: int
    seconds: float | None
    """Length of the span; None for lifetime counters."""
    restarted: bool = False
    """Its counters went backwards in the span: these count from the restart."""

    @property
    def active(self) -> bool:
        return self.calls > 0 or self.exec_ms > 0

    @property
    def mean_ms(self) -> float | None:
        """Mean execution time per call over the span."""
        return self.exec_ms / self.calls if self.calls else None

    @property
    def load(self) -> float | None:
        """Seconds of execution per second: how many cores' worth this statement takes."""
        if not self.seconds:
            return None
        return self.exec_ms / 1000 / self.seconds

    def per_second(self, value: float) -> float | None:
        if not self.seconds:
            return None
        return value / self.seconds


def restarted(old: Statement, new: Statement) -> bool:
    """True when ``new`` cannot be a later reading of ``old``'s counters.

    A reset, or an eviction followed by a new entry with the same key, starts the counters
    again; a later reading of the same counters has none smaller.
    """
    if old.stats_since is not None and new.stats_since != old.stats_since:
        return True
    a, b = old.counters, new.counters
    return (
        b.calls < a.calls
        or b.exec_ms < a.exec_ms
        or b.rows < a.rows
        or b.shared_blks_hit < a.shared_blks_hit
        or b.shared_blks_read < a.shared_blks_read
        or b.temp_blks_written < a.temp_blks_written
        or new.entries < old.entries
    )


def _figures(c: Counters, seconds: float | None, restart: bool = False) -> Figures:
    return Figures(
        calls=c.calls,
        exec_ms=c.exec_ms,
        rows=c.rows,
        shared_blks_hit=c.shared_blks_hit,
        shared_blks_read=c.shared_blks_read,
        temp_blks_written=c.temp_blks_written,
        seconds=seconds,
        restarted=restart,
    )


def figures_between(base: Reading, current: Reading) -> dict[StatementKey, Figures]:
    """What every current entry did since ``base``.

    An entry not in ``base`` was created since: all its counters count. An entry that
    restarted counts from its restart.
    """
    seconds = max(0.0, (current.collected_at - base.collected_at).total_seconds())
    before = base.statements
    result: dict[StatementKey, Figures] = {}
    for key, new in current.statements.items():
        old = before.get(key)
        if old is None:
            result[key] = _figures(new.counters, seconds)
        elif restarted(old, new):
            result[key] = _figures(new.counters, seconds, restart=True)
        else:
            a, b = old.counters, new.counters
            result[key] = Figures(
                calls=b.calls - a.calls,
                exec_ms=b.exec_ms - a.exec_ms,
                rows=b.rows - a.rows,
                shared_blks_hit=b.shared_blks_hit - a.shared_blks_hit,
                shared_blks_read=b.shared_blks_read - a.shared_blks_read,
                temp_blks_written=b.temp_blks_written - a.temp_blks_written,
                seconds=seconds,
            )
    return result


def lifetime_figures(current: Reading) -> dict[StatementKey, Figures]:
    return {key: _figures(s.counters, None) for key, s in current.statements.items()}


def base_for(mode: Mode, snapshot: StatementsSnapshot, mark: Reading | None) -> Reading | None:
    """The reading ``mode`` compares the current one with (None for lifetime or unknown)."""
    if mode is Mode.NOW:
        return snapshot.previous
    if mode is Mode.MARK:
        return mark
    return None


def mode_figures(
    mode: Mode, snapshot: StatementsSnapshot, mark: Reading | None
) -> dict[StatementKey, Figures] | None:
    """The list's figures in ``mode``; None when the mode has nothing to compare with yet."""
    if mode is Mode.LIFETIME:
        return lifetime_figures(snapshot.current)
    base = base_for(mode, snapshot, mark)
    if base is None:
        return None
    return figures_between(base, snapshot.current)


def counters_since(base: Statement | None, current: Statement) -> tuple[Counters, bool]:
    """Every counter of one entry since ``base``; and whether it restarted in between."""
    if base is None:
        return current.counters, False
    if restarted(base, current):
        return current.counters, True
    return difference(base.counters, current.counters), False


# -- formatting --------------------------------------------------------------------------------


def count(value: float | None) -> str:
    """A count, compact past 10,000.

    >>> count(7), count(9999), count(12345), count(2_500_000), count(None)
    ('7', '9999', '12.3k', '2.5M', '')
    """
    if value is None:
        return ""
    if value < 10_000:
        return str(round(value))
    return _scaled(value)


def _scaled(value: float) -> str:
    for unit in ("k", "M", "G", "T"):
        value /= 1000
        if value < 1000 or unit == "T":
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    raise AssertionError("unreachable")


def rate(value: float | None) -> str:
    """A rate per second.

    >>> rate(0), rate(0.25), rate(12.34), rate(456.7), rate(12345.0)
    ('0', '0.25', '12.3', '457', '12.3k')
    """
    if value is None:
        return ""
    if value == 0:
        return "0"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    if value < 1000:
        return f"{value:.0f}"
    return _scaled(value)


def millis(ms: float | None) -> str:
    """A time given in milliseconds.

    >>> millis(0.0123), millis(12.345), millis(456.7), millis(83_000), millis(None)
    ('0.012ms', '12.35ms', '457ms', '1m23s', '')
    """
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.3f}ms"
    if ms < 100:
        return f"{ms:.2f}ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    return duration(ms / 1000)


def cores(value: float | None) -> str:
    """Seconds of execution per second.

    >>> cores(0.8312), cores(12.0), cores(None)
    ('0.83', '12.00', '')
    """
    return "" if value is None else f"{value:.2f}"


# -- pgtop's own statements --------------------------------------------------------------------

# Where pg_stat_statements would put a $n: a quoted or numeric constant, NULL, true, false,
# a dollar-quoted body, or a parameter. In a template, a {slot} comes first.
_CONSTANT = re.compile(r"'|\$\$|\{|%\(|\$\d|(?<![\w$.])\d|\b(?:null|true|false)\b", re.IGNORECASE)
_OWN_PREFIX_MIN = 20
_own_prefixes: tuple[str, ...] | None = None
_planning_prefixes: tuple[str, ...] | None = None


def _fold(text: str) -> str:
    return " ".join(text.split())


def _prefixes(texts: Iterable[str]) -> tuple[str, ...]:
    prefixes = {_CONSTANT.split(_fold(sql), maxsplit=1)[0].rstrip() for sql in texts}
    return tuple(sorted(p for p in prefixes if len(p) >= _OWN_PREFIX_MIN))


def own_prefixes() -> tuple[str, ...]:
    """How pgtop's own statements start, as pg_stat_statements shows them.

    The extension replaces constants by ``$n``: each statement is compared up to its first
    constant or parameter, whitespace folded.
    """
    global _own_prefixes
    if _own_prefixes is None:
        texts = [sql for q in queries.REGISTRY.values() for _, sql in q.variants]
        texts += [sql for q in queries.EXTENSION_REGISTRY.values() for _, sql in q.variants]
        texts += [sql for q in queries.AS_STATEMENT_ROLE for _, sql in q.variants]
        _own_prefixes = _prefixes(texts)
    return _own_prefixes


def planning_prefixes() -> tuple[str, ...]:
    """How the statements pgtop runs as another role to plan its statement start.

    pg_stat_statements records them under that role. Each names one of pgtop's own objects
    or columns (``pgtop_...``), so no statement of that role is taken for one by chance.
    """
    global _planning_prefixes
    if _planning_prefixes is None:
        _planning_prefixes = _prefixes(
            sql for q in queries.AS_STATEMENT_ROLE for _, sql in q.variants
        )
    return _planning_prefixes


def is_own(statement: Statement, text: str | None, pgtop_user: str) -> bool:
    """A statement pgtop itself runs: a text that starts like one of pgtop's, and pgtop's
    role (or any role, for what pgtop runs as a statement's role to plan it)."""
    if text is None:
        return False
    folded = _fold(text[:400])
    if statement.user == pgtop_user and any(map(folded.startswith, own_prefixes())):
        return True
    return any(map(folded.startswith, planning_prefixes()))


# -- collecting --------------------------------------------------------------------------------


class StatementsCollector:
    """Reads pg_stat_statements for the Queries tab; remembers the last reading for rates.

    One is made per connection (see ``PaneCollector``): the capability checks are done once,
    and a failing one is not retried on every poll.
    """

    def __init__(self, capabilities: Capabilities, *, text_limit: int = TEXT_LIMIT) -> None:
        self.capabilities = capabilities
        self.interval = FIRST_INTERVAL
        """Least seconds between two collections (short until a first rate is known)."""
        self.wanted: frozenset[int] = frozenset()
        """Queryids on screen, set by the pane: their missing texts are fetched."""
        self.recheck_every = RECHECK_SECONDS
        self.text_limit = text_limit
        self._version = capabilities.pgss_version
        self._schema = capabilities.pgss_schema or "public"
        self._unavailable = availability(capabilities)
        self._checked_at = time.monotonic()
        self._previous: Reading | None = None
        self._texts: dict[int, str] = {}
        self._columns_checked = False
        self._codecs = DatabaseCodecs()
        self.texts_problem = ""
        """Why statement texts cannot be read now ("" when they can)."""
        self._texts_retry_at = 0.0

    @property
    def unavailable(self) -> StatementsUnavailable | None:
        return self._unavailable

    async def collect(
        self, conn: Connection, activity: ActivitySnapshot | None = None
    ) -> StatementsSnapshot | StatementsUnavailable:
        """One reading, or why there is none.

        Raises:
            psycopg.Error: a transient failure (a timeout, a lost connection): retried.
        """
        if self._unavailable is not None and not await self._check_again(conn):
            return self._unavailable
        assert self._version is not None
        reading = await self._read(conn)
        if reading is None:
            assert self._unavailable is not None
            return self._unavailable
        missing = [q for q in self.wanted if q not in self._texts]
        if missing:
            await self.fetch_texts(conn, missing)
        previous = self._previous
        self._previous = reading
        span = (reading.collected_at - previous.collected_at).total_seconds() if previous else None
        # A long gap (the tab was hidden, the app paused) gives a rate over minutes:
        # take the next reading soon so that "now" means now again.
        fresh = span is not None and span <= 3 * max(STATEMENTS_INTERVAL, self.interval)
        self.interval = STATEMENTS_INTERVAL if fresh else FIRST_INTERVAL
        caps = self.capabilities
        return StatementsSnapshot(
            current=reading,
            previous=previous,
            texts=dict(self._texts),
            extension_version=self._version,
            server_version_num=caps.server_version_num,
            database=caps.database,
            user=caps.user,
            sees_all=caps.sees_all_queries,
            text_source=self,
            extension_schema=self._schema,
            texts_problem=self.texts_problem,
        )

    async def _check_again(self, conn: Connection) -> bool:
        """After a missing extension, look for it again now and then; True if it is there."""
        problem = self._unavailable
        if problem is None:
            return True
        if not problem.recheck or time.monotonic() - self._checked_at < self.recheck_every:
            return False
        self._checked_at = time.monotonic()
        cur = await conn.execute(queries.STATEMENTS_EXTENSION.sql(self._server_version))
        row = await cur.fetchone()
        if row is None:
            return False
        version = str(row["extversion"])
        self._version = version
        self._schema = str(row["schema"])
        if version_tuple(version) < OLDEST_EXTENSION:
            self._unavailable = too_old(self.capabilities.database, version)
            return False
        self._unavailable = None
        return True

    @property
    def _server_version(self) -> int:
        return self.capabilities.server_version_num

    async def _read(self, conn: Connection) -> Reading | None:
        """The counters now; None (and the reason kept) when the extension cannot be read."""
        assert self._version is not None
        version = version_tuple(self._version)
        database = self.capabilities.database
        try:
            async with conn.pipeline():
                info_cur = await conn.execute(queries.STATEMENTS_INFO.sql(version, self._schema))
                counters_cur = conn.cursor(row_factory=tuple_row)
                await counters_cur.execute(queries.STATEMENT_COUNTERS.sql(version, self._schema))
            info = await info_cur.fetchone()
            rows = await counters_cur.fetchall()
        except psycopg.errors.ObjectNotInPrerequisiteState:
            # "must be loaded via shared_preload_libraries": the probe could not tell
            # (reading that setting needs pg_read_all_settings).
            self._unavailable = not_preloaded(database, created=True)
            return None
        except (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable):
            # Dropped since the probe.
            self._unavailable = not_created(database, self.capabilities.pgss_preloaded)
            self._checked_at = time.monotonic()
            return None
        except psycopg.errors.InsufficientPrivilege as exc:
            self._unavailable = StatementsUnavailable(
                reason=f"this role may not read pg_stat_statements ({_first_line(exc)})",
                remedy=(
                    f"GRANT pg_monitor TO {self.capabilities.user}; or give back EXECUTE on "
                    "the function pg_stat_statements(boolean), revoked in this database."
                ),
            )
            return None
        if not self._columns_checked:
            names = tuple(c.name for c in counters_cur.description or ())
            assert names == COUNTER_COLUMNS, f"unexpected pg_stat_statements columns {names}"
            self._columns_checked = True
        assert info is not None
        return Reading(
            collected_at=info["collected_at"],
            statements=statements_from_rows(rows),
            dealloc=info["dealloc"],
            stats_reset=info["stats_reset"],
        )

    async def fetch_texts(self, conn: Connection, queryids: Iterable[int]) -> Mapping[int, str]:
        """Fetch the texts of ``queryids`` not cached yet; returns every cached text."""
        missing = sorted({q for q in queryids if q not in self._texts})
        if self.texts_problem and time.monotonic() < self._texts_retry_at:
            return dict(self._texts)
        if missing and self._version is not None and self._unavailable is None:
            try:
                texts = await fetch_texts(
                    conn, self._version, self._schema, missing, self.text_limit, self._codecs
                )
            except TextsUnreadableError as exc:
                # Every call would fail the same way until that entry goes: now and then.
                self.texts_problem = str(exc)
                self._texts_retry_at = time.monotonic() + self.recheck_every
                return dict(self._texts)
            self.texts_problem = ""
            # A queryid without a text (evicted meanwhile) is remembered as empty, so it is
            # not asked for again and again.
            for queryid in missing:
                self._texts[queryid] = texts.get(queryid, "")
            overflow = len(self._texts) - TEXT_CACHE_SIZE
            if overflow > 0:
                for queryid in list(self._texts)[:overflow]:
                    del self._texts[queryid]
        return dict(self._texts)


async def fetch_texts(
    conn: Connection,
    extension_version: str,
    schema: str,
    queryids: Iterable[int],
    limit: int,
    codecs: DatabaseCodecs | None = None,
) -> dict[int, str]:
    """Texts of some statements by queryid, clipped to ``limit`` characters."""
    sql = queries.STATEMENT_TEXTS.sql(version_tuple(extension_version), schema)
    try:
        cur = await conn.execute(sql, {"queryids": list(queryids), "text_limit": limit})
        rows = await cur.fetchall()
    except (
        psycopg.errors.CharacterNotInRepertoire,
        psycopg.errors.UntranslatableCharacter,
    ) as exc:
        raise TextsUnreadableError(
            "statement texts cannot be read here: pg_stat_statements converts every text to "
            "this database's encoding, and one of them does not convert (a statement of a "
            f"SQL_ASCII database, most likely: {one_line(_first_line(exc), 120)}); connect "
            "pgtop to that database to read them. Counters are shown without texts."
        ) from None
    # Each text is in the encoding of the database it ran in.
    texts = await (codecs or DatabaseCodecs()).recode(
        conn, [(row["database"], row["query"] or "") for row in rows]
    )
    return {row["queryid"]: text for row, text in zip(rows, texts, strict=True)}


async def statement_text(
    conn: Connection, extension_version: str, schema: str, queryid: int
) -> tuple[str, bool] | None:
    """The text of one statement, at most ``WHOLE_TEXT_LIMIT`` characters, and whether it
    was cut there; None when the entry is gone."""
    texts = await fetch_texts(conn, extension_version, schema, [queryid], WHOLE_TEXT_LIMIT + 1)
    text = texts.get(queryid)
    if text is None:
        return None
    return text[:WHOLE_TEXT_LIMIT], len(text) > WHOLE_TEXT_LIMIT


# -- plans -------------------------------------------------------------------------------------
# A statement's text in pg_stat_statements was written by whoever ran it, and planning it can
# run code: the planner folds IMMUTABLE functions with constant arguments (and STABLE ones
# when estimating), and loading a table folds its index expressions and predicates. So a
# text is planned only after pgtop has seen everything it reaches, and only as the role that
# ran it, inside a SECURITY DEFINER function (see queries.EXPLAIN_REACH and PLAN_CONTAINER).


@dataclass(frozen=True, slots=True)
class Plan:
    """The plan of a statement, or why there is none."""

    lines: tuple[str, ...]
    problem: str = ""
    """One line saying why no plan could be made; "" when ``lines`` hold one."""
    role: str = ""
    """The role it was planned as: the role that ran it."""
    parameters: int = 0
    """Its parameters ($1, …), planned without values: a generic plan."""


_EXPLAINABLE = {"select", "insert", "update", "delete", "merge", "values", "with", "table", "("}
_CREATE_AS = re.compile(
    r"create\s+(?:(?:global|local)\s+)?(?:(?:temp|temporary|unlogged)\s+)?"
    r"(?:table|materialized)"
)
_LEADING = re.compile(r"\s+|--[^\n]*(?:\n|$)|/\*.*?\*/", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+|\(")
PLANNED_KINDS = "SELECT, INSERT, UPDATE, DELETE, MERGE and VALUES"
TRUST = "pgtop plans only statements whose code is pgtop's role's or a superuser's"


def _statement_start(text: str) -> int:
    """Where the statement starts, after whitespace and comments."""
    position = 0
    while True:
        match = _LEADING.match(text, position)
        if not match or match.end() == position:
            return position
        position = match.end()


def unexplainable(text: str) -> str:
    """Why pgtop will not plan ``text``, known without asking the server; "" when it may.

    >>> unexplainable("/* app */ SELECT 1")
    ''
    >>> unexplainable("VACUUM t").split(":")[0]
    'VACUUM statements have no plan'
    >>> unexplainable("create table t as select 1").split(":")[0]
    'CREATE TABLE AS is not planned'
    """
    if not text.strip():
        return "no statement text to plan"
    start = _statement_start(text)
    word = _WORD.match(text, start)
    if word is None:
        return ""  # the server will say what is wrong with it
    keyword = word.group().lower()
    if keyword in _EXPLAINABLE:
        return ""
    if keyword == "create" and _CREATE_AS.match(_fold(text[start : start + 200]).lower()):
        return (
            f"CREATE TABLE AS is not planned: pgtop plans a statement by preparing it, and "
            f"PREPARE takes only {PLANNED_KINDS}; plan its query on its own"
        )
    kind = one_line(keyword.upper(), 40)
    return f"{kind} statements have no plan: pgtop plans only {PLANNED_KINDS}"


def plan_obstacle(statement: Statement, text: str | None, connected_database: str) -> str:
    """Why pgtop will not plan this statement here; "" when it can try."""
    if statement.hidden:
        return "the statement is hidden from this role (it needs pg_read_all_stats)"
    if text is None:
        return "the statement's text is no longer in pg_stat_statements"
    if statement.database != connected_database:
        where = one_line(statement.database or "a dropped database", 64)
        return (
            f"it ran in database {where!r}; pgtop is connected to "
            f"{one_line(connected_database, 64)!r} and can plan only that database's statements"
        )
    if statement.user is None:
        return "the role that ran it was dropped, and pgtop plans a statement only as its role"
    return unexplainable(text)


BEFORE_14 = (
    "PostgreSQL 13 cannot show pgtop what a statement reaches (SQL-standard function bodies "
    "came in 14), so pgtop cannot make sure that planning it runs no other role's code"
)
STANDBY = (
    "this server is a standby: pgtop checks what a statement reaches with a temporary "
    "function, which a standby cannot create"
)

_plan_numbers = itertools.count(1)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class _Planning:
    """One attempt to plan a statement: its steps, and what to say when one fails."""

    def __init__(self, conn: Connection, server_version: int, role: str) -> None:
        self.conn = conn
        self.server_version = server_version
        self.role = role
        self.number = next(_plan_numbers)
        """Of the prepared statement: its name is unique, as PREPARE outlives a rollback."""
        self.stage = "setup"
        self.prepared = False

    @property
    def _who(self) -> str:
        return one_line(self.role, 64)

    def _sql(self, query: queries.Query) -> str:
        return query.sql(self.server_version)

    async def _row(self, query: queries.Query, params: Mapping[str, Any]) -> dict[str, Any]:
        cur = await self.conn.execute(self._sql(query), params, prepare=False)
        row = await cur.fetchone()
        assert row is not None
        return row

    async def _search_path(self, path: str) -> None:
        await self._row(queries.EXPLAIN_SEARCH_PATH, {"search_path": path})

    async def _send(self, statement: bytes) -> None:
        """A statement holding the statement's text: through the extended protocol, which
        refuses more than one statement (an appended ``; DROP ...`` never runs)."""
        await self.conn.execute(statement, binary=True, prepare=False)

    async def plan(self, text: bytes) -> Plan:
        """Every step, in one transaction that is always rolled back."""
        async with self.conn.transaction(force_rollback=True):
            problem = await self._act_as_role()
            if problem:
                return Plan((), problem)
            parameters = await self._prepare(text)
            problem = await self._check(text, parameters)
            if problem:
                return Plan((), problem)
            lines = await self._explain(len(parameters))
        return Plan(lines, role=self.role, parameters=len(parameters))

    async def _act_as_role(self) -> str:
        """Bound the transaction, check what can be checked as pgtop's role, then act as the
        statement's role; why not, if it cannot."""
        settings = {
            "statement_timeout": str(EXPLAIN_STATEMENT_TIMEOUT_MS),
            "lock_timeout": str(EXPLAIN_LOCK_TIMEOUT_MS),
        }
        setup = await self._row(queries.EXPLAIN_SETUP, settings)
        if setup["standby"]:
            return STANDBY
        check = await self._row(queries.EXPLAIN_PRECHECK, {"role": self.role})
        if check["temp"] is None:
            return f"role {self._who} no longer exists"
        if not check["temp"]:
            return (
                f"role {self._who} may not create temporary objects in this database (TEMP "
                "privilege), and pgtop checks what a statement reaches with a temporary function"
            )
        if check["event_trigger"] is not None:
            return (
                f"event trigger {one_line(check['event_trigger'], 64)} runs function "
                f"{one_line(check['function'], 100)} of role {one_line(check['owner'], 64)} on "
                f"the temporary functions pgtop checks a statement with; {TRUST}"
            )
        if self.role != setup["acting"]:
            self.stage = "role"
            statement = sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.role))
            await self.conn.execute(statement, prepare=False)
        return ""

    async def _prepare(self, text: bytes) -> list[sql.Identifier]:
        """PREPARE the text: parse analysis and rewriting only (no function runs, nothing is
        planned); the types of its parameters."""
        self.stage = "prepare"
        await self._search_path(queries.STATEMENT_SEARCH_PATH)
        prepare = self._sql(queries.PLAN_PREPARE).format(number=self.number)
        await self._send(prepare.encode() + text)
        self.prepared = True
        await self._search_path(queries.SAFE_SEARCH_PATH)
        cur = await self.conn.execute(
            self._sql(queries.EXPLAIN_PARAMETERS),
            {"name": f"pgtop_planned_{self.number}"},
            prepare=False,
        )
        rows = await cur.fetchall()
        return [sql.Identifier(r["pgtop_type_schema"], r["pgtop_type_name"]) for r in rows]

    async def _check(self, text: bytes, parameters: list[sql.Identifier]) -> str:
        """Why planning could run code that is neither a superuser's nor pgtop's role's;
        "" when it could not."""
        # The same text as the body of a function: PostgreSQL records what it reaches.
        self.stage = "reach"
        await self._search_path(queries.STATEMENT_SEARCH_PATH)
        head, tail = self._sql(queries.PLAN_REACH_FUNCTION).split("{statement}")
        signature = sql.SQL(", ").join(parameters).as_string(self.conn)
        await self._send(head.format(parameters=signature).encode() + text + tail.encode())
        await self._search_path(queries.SAFE_SEARCH_PATH)
        self.stage = "walk"
        limit = queries.REACH_LIMIT
        walk = await self._row(
            queries.EXPLAIN_REACH, {"function": "pgtop_reach", "limit": limit + 1}
        )
        if walk["reached"] > limit:
            return f"it reaches more than {limit:,} objects, more than pgtop checks"
        if walk["object"] is None:
            return ""
        through = walk["through"]
        via = f" (through {one_line(through, 120)})" if through else ""
        return (
            f"it reaches {one_line(walk['object'], 120)} of role "
            f"{one_line(walk['owner'] or '?', 64)}{via}; planning could run it ({TRUST})"
        )

    async def _explain(self, parameters: int) -> tuple[str, ...]:
        """EXPLAIN EXECUTE, read only and generic, inside the SECURITY DEFINER function."""
        self.stage = "contain"
        await self.conn.execute(self._sql(queries.PLAN_CONTAINER), prepare=False)
        self.stage = "plan"
        await self._row(queries.EXPLAIN_PLAN_SETTINGS, {})
        nulls = f"({', '.join(['NULL'] * parameters)})" if parameters else ""
        execute = self._sql(queries.PLAN_EXECUTE).format(number=self.number, parameters=nulls)
        cur = await self.conn.execute(
            self._sql(queries.PLAN_EXPLAIN), {"statement": execute}, prepare=False
        )
        return tuple(str(row["pgtop_explain"]) for row in await cur.fetchall())

    async def deallocate(self) -> None:
        """Drop the prepared statement (PREPARE is not undone by a rollback)."""
        conn = self.conn
        idle = psycopg.pq.TransactionStatus.IDLE
        if not self.prepared or conn.closed or conn.info.transaction_status != idle:
            return
        deallocate = self._sql(queries.PLAN_DEALLOCATE).format(number=self.number)
        self.prepared = False
        # Gone already when psycopg, which sends DEALLOCATE ALL after a rollback once it
        # has prepared statements of its own, got there first.
        with contextlib.suppress(psycopg.errors.InvalidSqlStatementName):
            await conn.execute(deallocate, prepare=False)

    def problem(self, exc: psycopg.Error) -> str:
        """What a failed step means, in one line."""
        state = exc.sqlstate or ""
        line = one_line(_first_line(exc), 200)
        stage = self.stage
        who = self._who
        if state == "55P03":
            return "a table it uses is locked by another session; try again later (Ctrl-R)"
        if state == "57014":
            seconds = f"{EXPLAIN_STATEMENT_TIMEOUT_MS / 1000:g}s"
            if stage == "plan":
                return f"planning took longer than {seconds}"
            return f"checking what it reaches took longer than {seconds}"
        if stage == "role":
            if state == "42501":
                return (
                    f"pgtop's role may not act as {who} (SET ROLE), and pgtop plans a "
                    "statement only as the role that ran it"
                )
            return f"pgtop could not act as {who}: {line}"
        if stage == "prepare":
            if state == "42P18":
                return f"the types of its parameters cannot be told without values: {line}"
            if state == "42601":
                return f"PREPARE does not take it: {line}"
            if state == "42501":
                return f"role {who} may not use what it names: {line}"
            if state.startswith(("42", "3F")):
                return (
                    f"it cannot be parsed here (pgtop reads it as role {who} with search_path "
                    f"{queries.STATEMENT_SEARCH_PATH}): {line}"
                )
            return f"PREPARE failed: {line}"
        if stage in ("reach", "walk"):
            return f"pgtop could not check what it reaches: {line}"
        if stage == "contain":
            return f"pgtop could not create the function it plans in, as role {who}: {line}"
        if stage == "plan":
            return f"planning it as role {who} failed: {line}"
        return line


async def explain(conn: Connection, query_text: str, server_version: int, role: str) -> Plan:
    """Plan a statement of ``role`` without running it, never with pgtop's own rights.

    Everything happens in one transaction that is always rolled back, with a short
    statement_timeout and lock_timeout, acting as ``role`` (the role that ran it):

    1. ``PREPARE`` the text (parse analysis and rewriting: nothing is planned or run), sent
       through the extended protocol, which refuses more than one statement;
    2. create it again as the body of a temporary function with a SQL-standard body, for
       which PostgreSQL records every function, operator, relation and type it names;
    3. walk from there (views, policies, defaults, indexes, constraints, types…) and give
       up if any function or operator reached is neither a superuser's nor pgtop's role's;
    4. ``EXPLAIN EXECUTE`` it, read only, with a generic plan (``$1`` parameters are given
       NULLs, which a generic plan does not use), inside a temporary SECURITY DEFINER
       function owned by ``role``: code that slips past the check (an index created in
       between, a trusted function whose string body calls another role's function, SQL
       text that a built-in function runs) cannot SET or RESET ROLE back to pgtop's role.

    Needs PostgreSQL 14+, a primary, and the TEMP privilege for ``role``. The prepared
    statement is deallocated afterwards (PREPARE is not undone by a rollback).

    Returns:
        The plan's lines, or a one-line reason why there is none.
    """
    problem = unexplainable(query_text)
    if problem:
        return Plan((), problem)
    if server_version < queries.PLANNING_MIN_VERSION:
        return Plan((), BEFORE_14)
    try:
        text = query_text.encode(conn.info.encoding)
    except UnicodeEncodeError:
        return Plan((), f"its text does not fit the connection's encoding {conn.info.encoding}")
    planning = _Planning(conn, server_version, role)
    try:
        return await planning.plan(text)
    except psycopg.Error as exc:
        if conn.broken or conn.closed:
            raise
        return Plan((), planning.problem(exc))
    finally:
        await planning.deallocate()


# -- --once queries ----------------------------------------------------------------------------


def report_rows(reading: Reading, texts: Mapping[int, str]) -> list[dict[str, Any]]:
    """Lifetime counters of every entry, most total execution time first; texts cut at
    ``WHOLE_TEXT_LIMIT`` characters (``query_truncated``)."""
    rows: list[dict[str, Any]] = []
    ordered = sorted(reading.statements.values(), key=lambda s: -s.counters.exec_ms)
    for s in ordered:
        c = s.counters
        text = texts.get(s.queryid, "") if s.queryid is not None else ""
        mean = s.mean_exec_ms
        if mean is None and c.calls:
            mean = c.exec_ms / c.calls
        row: dict[str, Any] = {
            "queryid": s.queryid,
            "toplevel": s.toplevel,
            "user": s.user,
            "database": s.database,
            "query_hidden": s.hidden,
            "entries": s.entries,
            "query": text[:WHOLE_TEXT_LIMIT],
            "query_truncated": len(text) > WHOLE_TEXT_LIMIT,
            "calls": c.calls,
            "total_exec_ms": c.exec_ms,
            "mean_exec_ms": mean,
            "min_exec_ms": s.min_exec_ms,
            "max_exec_ms": s.max_exec_ms,
            "stddev_exec_ms": s.stddev_exec_ms,
            "rows": c.rows,
        }
        for name in COUNTER_FIELDS:
            if name in ("calls", "exec_ms", "rows"):
                continue
            row["total_plan_ms" if name == "plan_ms" else name] = getattr(c, name)
        row["stats_since"] = s.stats_since
        rows.append(row)
    return rows


async def statements_report(conn: Connection, caps: Capabilities) -> Report:
    """``--once queries``: lifetime counters with whole texts, most total time first.

    Raises:
        StatementsUnavailableError: pg_stat_statements cannot be read; says why.
    """
    from pgtop.once import Report

    collector = StatementsCollector(caps)
    result = await collector.collect(conn)
    if isinstance(result, StatementsUnavailable):
        raise StatementsUnavailableError(f"{result.reason}. {result.remedy}")
    reading = result.current
    queryids = [s.queryid for s in reading.statements.values() if s.queryid is not None]
    texts = {}
    if queryids:
        try:
            texts = await fetch_texts(
                conn,
                result.extension_version,
                result.extension_schema,
                queryids,
                WHOLE_TEXT_LIMIT + 1,
            )
        except TextsUnreadableError as exc:
            print(f"pgtop: warning: {exc}", file=sys.stderr)
    rows = report_rows(reading, texts)

    def text_of(row: dict[str, Any]) -> str:
        if row["query_hidden"]:
            return f"<{row['entries']} statements hidden: needs pg_read_all_stats>"
        return one_line(row["query"], 200)

    columns = [
        ("QUERYID", lambda r: "" if r["queryid"] is None else str(r["queryid"])),
        ("USER", lambda r: one_line(r["user"] or "", 20)),
        ("DATABASE", lambda r: one_line(r["database"] or "", 20)),
        ("CALLS", lambda r: str(r["calls"])),
        ("TOTAL", lambda r: millis(r["total_exec_ms"])),
        ("MEAN", lambda r: millis(r["mean_exec_ms"])),
        ("ROWS", lambda r: str(r["rows"])),
        ("READ", lambda r: str(r["shared_blks_read"])),
        ("TEMP", lambda r: str(r["temp_blks_written"])),
        ("QUERY", text_of),
    ]
    return Report(reading.collected_at, rows, columns)
