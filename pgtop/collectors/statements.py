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
``sql.STATEMENT_COUNTERS``). What the role may not use is found out once per connection
and explained, not retried on every poll.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from psycopg.rows import tuple_row

from pgtop import pg, sql
from pgtop.collectors.activity import WHOLE_TEXT_LIMIT, DatabaseCodecs
from pgtop.collectors.base import CollectorContext, Connection
from pgtop.model import ActivitySnapshot, Capabilities
from pgtop.text import name_text, one_line

if TYPE_CHECKING:
    pass

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

StatementKey = tuple[int, int, int | None, bool | None]
"""(userid, dbid, queryid, toplevel): the identity of an entry (toplevel from 1.9)."""


# -- counters ----------------------------------------------------------------------------------


class Counters(NamedTuple):
    """Cumulative counters of one entry, or what they grew by between two readings.

    None: the extension version in use does not track it. Times are in milliseconds.
    The field order is the column order of ``sql.STATEMENT_COUNTERS``.

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
"""Columns of ``sql.STATEMENT_COUNTERS``, in order, in every variant."""
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
    """Statements keyed by identity from rows of ``sql.STATEMENT_COUNTERS``.

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


class StatementsUnavailableError(sql.UnsupportedServerError):
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


FIGURE_COUNTERS = tuple(f.name for f in fields(Figures) if f.name not in ("seconds", "restarted"))
"""The counters a figure is made of (the ones the list shows), named as in ``Counters``."""


def restarted(old: Statement, new: Statement) -> bool:
    """True when ``new`` cannot be a later reading of ``old``'s counters.

    A reset, or an eviction followed by a new entry with the same key, starts the counters
    again; a later reading of the same counters has none smaller.
    """
    if old.stats_since is not None and new.stats_since != old.stats_since:
        return True
    a, b = old.counters, new.counters
    return new.entries < old.entries or any(
        getattr(b, name) < getattr(a, name) for name in FIGURE_COUNTERS
    )


def _figures(c: Counters, seconds: float | None, restart: bool = False) -> Figures:
    counted = {name: getattr(c, name) for name in FIGURE_COUNTERS}
    return Figures(**counted, seconds=seconds, restarted=restart)


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
    prefixes = {_CONSTANT.split(_fold(text), maxsplit=1)[0].rstrip() for text in texts}
    return tuple(sorted(p for p in prefixes if len(p) >= _OWN_PREFIX_MIN))


def own_prefixes() -> tuple[str, ...]:
    """How pgtop's own statements start, as pg_stat_statements shows them.

    The extension replaces constants by ``$n``: each statement is compared up to its first
    constant or parameter, whitespace folded.
    """
    global _own_prefixes
    if _own_prefixes is None:
        texts = [text for q in sql.REGISTRY.values() for _, text in q.variants]
        texts += [text for q in sql.EXTENSION_REGISTRY.values() for _, text in q.variants]
        texts += [text for q in sql.AS_STATEMENT_ROLE for _, text in q.variants]
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
            text for q in sql.AS_STATEMENT_ROLE for _, text in q.variants
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


@dataclass(frozen=True, slots=True)
class StatementNeeds:
    """What the Queries pane needs besides the counters: the texts it shows."""

    texts: frozenset[int] = frozenset()
    """Queryids whose texts are on screen (or searched by a filter)."""
    all_texts: bool = False
    """Every statement's text (``--once queries``)."""
    text_limit: int = TEXT_LIMIT
    """Characters of each text to read."""


class StatementsCollector:
    """Reads pg_stat_statements for the Queries tab; remembers the last reading for rates,
    and the texts read so far (the only cache of them).

    One is made per connection: the capability checks are done once, and a failing one is
    not retried on every poll.
    """

    def __init__(self, context: CollectorContext) -> None:
        capabilities = context.capabilities
        self.capabilities = capabilities
        self.interval = FIRST_INTERVAL
        """Least seconds between two readings (short until a first rate is known)."""
        self.recheck_every = RECHECK_SECONDS
        self._version = capabilities.pgss_version
        self._schema = capabilities.pgss_schema or "public"
        self._unavailable = availability(capabilities)
        self._checked_at = time.monotonic()
        self._previous: Reading | None = None
        self._last: StatementsSnapshot | None = None
        self._texts: dict[int, str] = {}
        self._columns_checked = False
        self._codecs = DatabaseCodecs()
        self._texts_problem = ""
        """Why statement texts cannot be read now ("" when they can)."""
        self._texts_retry_at = 0.0

    async def close(self) -> None:
        return None

    async def collect(
        self,
        conn: Connection,
        activity: ActivitySnapshot | None = None,
        needs: StatementNeeds | None = None,
        *,
        due: bool = True,
    ) -> StatementsSnapshot | StatementsUnavailable | None:
        """A reading when ``due``, or the last one with the texts ``needs`` newly asks for;
        or why there is none.

        Raises:
            psycopg.Error: a transient failure (a timeout, a lost connection): retried.
        """
        needs = needs or StatementNeeds()
        if not due:
            last = self._last
            if last is None or not await self._read_texts(conn, last.current, needs):
                return None
            self._last = last = replace(
                last, texts=dict(self._texts), texts_problem=self._texts_problem
            )
            return last
        if self._unavailable is not None and not await self._check_again(conn):
            return self._unavailable
        assert self._version is not None
        reading = await self._read(conn)
        if reading is None:
            assert self._unavailable is not None
            return self._unavailable
        await self._read_texts(conn, reading, needs)
        previous = self._previous
        self._previous = reading
        span = (reading.collected_at - previous.collected_at).total_seconds() if previous else None
        # A long gap (the tab was hidden, the app paused) gives a rate over minutes:
        # take the next reading soon so that "now" means now again.
        fresh = span is not None and span <= 3 * max(STATEMENTS_INTERVAL, self.interval)
        self.interval = STATEMENTS_INTERVAL if fresh else FIRST_INTERVAL
        caps = self.capabilities
        self._last = StatementsSnapshot(
            current=reading,
            previous=previous,
            texts=dict(self._texts),
            extension_version=self._version,
            server_version_num=caps.server_version_num,
            database=caps.database,
            user=caps.user,
            sees_all=caps.sees_all_queries,
            extension_schema=self._schema,
            texts_problem=self._texts_problem,
        )
        return self._last

    async def _check_again(self, conn: Connection) -> bool:
        """After a missing extension, look for it again now and then; True if it is there."""
        problem = self._unavailable
        if problem is None:
            return True
        if not problem.recheck or time.monotonic() - self._checked_at < self.recheck_every:
            return False
        self._checked_at = time.monotonic()
        cur = await conn.execute(sql.STATEMENTS_EXTENSION.sql(self._server_version))
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
                info_cur = await conn.execute(sql.STATEMENTS_INFO.sql(version, self._schema))
                counters_cur = conn.cursor(row_factory=tuple_row)
                await counters_cur.execute(sql.STATEMENT_COUNTERS.sql(version, self._schema))
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
                reason=f"this role may not read pg_stat_statements ({pg.first_line(exc)})",
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

    async def _read_texts(self, conn: Connection, reading: Reading, needs: StatementNeeds) -> bool:
        """Read the texts ``needs`` asks for that are not kept yet; True if any was read (or
        their reading failed: the reason is new)."""
        if needs.all_texts:
            wanted: Iterable[int] = (
                s.queryid for s in reading.statements.values() if s.queryid is not None
            )
        else:
            wanted = needs.texts
        missing = sorted({q for q in wanted if q not in self._texts})
        if not missing or self._version is None or self._unavailable is not None:
            return False
        if self._texts_problem and time.monotonic() < self._texts_retry_at:
            return False
        try:
            texts = await fetch_texts(
                conn, self._version, self._schema, missing, needs.text_limit, self._codecs
            )
        except TextsUnreadableError as exc:
            # Every call would fail the same way until that entry goes: now and then.
            self._texts_problem = str(exc)
            self._texts_retry_at = time.monotonic() + self.recheck_every
            return True
        self._texts_problem = ""
        # A queryid without a text (evicted meanwhile) is remembered as empty, so it is
        # not asked for again and again.
        for queryid in missing:
            self._texts[queryid] = texts.get(queryid, "")
        overflow = len(self._texts) - TEXT_CACHE_SIZE
        if overflow > 0 and not needs.all_texts:
            for queryid in list(self._texts)[:overflow]:
                del self._texts[queryid]
        return True


async def fetch_texts(
    conn: Connection,
    extension_version: str,
    schema: str,
    queryids: Iterable[int],
    limit: int,
    codecs: DatabaseCodecs | None = None,
) -> dict[int, str]:
    """Texts of some statements by queryid, clipped to ``limit`` characters."""
    statement = sql.STATEMENT_TEXTS.sql(version_tuple(extension_version), schema)
    try:
        cur = await conn.execute(statement, {"queryids": list(queryids), "text_limit": limit})
        rows = await cur.fetchall()
    except (
        psycopg.errors.CharacterNotInRepertoire,
        psycopg.errors.UntranslatableCharacter,
    ) as exc:
        raise TextsUnreadableError(
            "statement texts cannot be read here: pg_stat_statements converts every text to "
            "this database's encoding, and one of them does not convert (a statement of a "
            f"SQL_ASCII database, most likely: {one_line(pg.first_line(exc), 120)}); connect "
            "pgtop to that database to read them. Counters are shown without texts."
        ) from None
    # Each text is in the encoding of the database it ran in.
    texts = await (codecs or DatabaseCodecs()).recode(
        conn, [(row["database"], row["query"] or "") for row in rows]
    )
    return {row["queryid"]: text for row, text in zip(rows, texts, strict=True)}


@dataclass(frozen=True, slots=True)
class StatementText:
    """A request for the text of one statement: at most ``WHOLE_TEXT_LIMIT`` characters and
    whether it was cut there; None when the entry is gone.

    Raises (from ``read``):
        TextsUnreadableError: pg_stat_statements cannot hand its texts to this database.
    """

    queryid: int
    extension_version: str
    schema: str

    async def read(self, conn: Connection) -> tuple[str, bool] | None:
        texts = await fetch_texts(
            conn, self.extension_version, self.schema, [self.queryid], WHOLE_TEXT_LIMIT + 1
        )
        text = texts.get(self.queryid)
        if text is None:
            return None
        return text[:WHOLE_TEXT_LIMIT], len(text) > WHOLE_TEXT_LIMIT
