"""The Health checks: what is wrong with the server right now, worst first.

Each check turns what pgtop measured into a status (``ok``, ``warn``, ``crit``, or
``unknown`` with the reason) against thresholds (``config.Thresholds``), says since when it
has been in that status, and names what it points at (a session, a table, a slot...), so
the app can lead there.

Checks of sessions (connections, idle in transaction, lock waits, long transactions) are
worked out from the Activity snapshot of every refresh: no query of their own. The others
read the server at the slow cadence of the catalog tabs (``HEALTH_INTERVAL`` at least), and
those that are rates compare two such reads: until a second read they are ``unknown``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pgtop import sql
from pgtop.collectors.base import CollectorContext, Connection
from pgtop.collectors.connections import ACTIVE_STATES, IDLE_IN_TRANSACTION_STATES
from pgtop.collectors.statements import (
    StatementKey,
    StatementsCollector,
    StatementsSnapshot,
    StatementsUnavailable,
    figures_between,
)
from pgtop.config import Thresholds
from pgtop.formats import duration, percent, size
from pgtop.model import HIDDEN_QUERY, ActivitySnapshot, Backend, PoolsSnapshot
from pgtop.text import name_text

if TYPE_CHECKING:
    from pgtop.collectors.catalog.model import AutovacuumSettings, HorizonHolder

HEALTH_INTERVAL = 30.0
"""Least seconds between two reads of what the Activity snapshot does not hold."""
WRAPAROUND_LIMIT = 2**31
"""Transaction IDs (and multixacts) a database may fall behind before the server stops."""
MIN_BLOCKS = 10_000
"""Block reads a cache hit ratio needs before it means anything."""
MIN_TRANSACTIONS = 100
"""Transactions a rollback share needs before it means anything."""
MIN_CALLS = 10
"""Calls of a statement in the window before its mean is compared."""
MIN_MEAN_MS = 10.0
"""A statement whose mean stays below this is not called slow, whatever its ratio."""
LIST_LIMIT = 50


class Status(IntEnum):
    """A check's status; the larger, the worse."""

    OK = 0
    UNKNOWN = 1
    WARN = 2
    CRIT = 3

    @property
    def word(self) -> str:
        return self.name.lower()


TargetKind = Literal["session", "blocker", "table", "index", "slot", "database", "statement"]


@dataclass(frozen=True, slots=True)
class Target:
    """What a finding points at, and so where the app leads for it."""

    kind: TargetKind
    pid: int | None = None
    oid: int | None = None
    name: str | None = None
    """A relation's qualified name, a slot's or a database's name."""
    statement: StatementKey | None = None

    def record(self) -> dict[str, Any]:
        """For ``--once health``: only the fields that apply."""
        fields = {"pid": self.pid, "oid": self.oid, "name": self.name}
        found: dict[str, Any] = {"kind": self.kind}
        found.update({k: v for k, v in fields.items() if v is not None})
        if self.statement is not None:
            userid, dbid, queryid, toplevel = self.statement
            found.update(userid=userid, dbid=dbid, queryid=queryid, toplevel=toplevel)
        return found


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result."""

    check: str
    """Its stable id (README lists them)."""
    status: Status
    summary: str
    """What was measured, in words (server names made visible)."""
    short: str = ""
    """A few words for the header line when it is not ok."""
    value: float | None = None
    warn: float | None = None
    crit: float | None = None
    target: Target | None = None
    since: datetime | None = None
    """When it entered this status (as far as pgtop has seen)."""


@dataclass(frozen=True, slots=True)
class HealthData:
    """Every check, worst first."""

    collected_at: datetime
    findings: tuple[Finding, ...]
    read_at: datetime | None
    """When the slow part was last read (None: not yet)."""

    def worst(self) -> Status:
        return max((f.status for f in self.findings), default=Status.OK)

    def problems(self) -> tuple[Finding, ...]:
        """The findings that warn or are critical, worst first."""
        return tuple(f for f in self.findings if f.status >= Status.WARN)


# -- the slow part -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotState:
    """A replication slot (``sql.HEALTH_SLOTS``)."""

    name: str
    kind: str
    """physical or logical."""
    database: str | None
    plugin: str | None
    active: bool
    active_pid: int | None
    wal_status: str | None
    retained_bytes: int | None
    """WAL kept for it: from its restart_lsn to this server's position."""
    safe_wal_size: int | None
    xmin: str | None
    catalog_xmin: str | None


@dataclass(frozen=True, slots=True)
class StandbyState:
    """A WAL sender and how far behind its standby is (``sql.HEALTH_STANDBYS``)."""

    pid: int
    application_name: str
    client_addr: str | None
    state: str | None
    sync_state: str | None
    sent_lag_bytes: int | None
    write_lag_bytes: int | None
    flush_lag_bytes: int | None
    replay_lag_bytes: int | None
    write_lag_s: float | None
    flush_lag_s: float | None
    replay_lag_s: float | None


def read_slots(rows: Iterable[Mapping[str, Any]]) -> tuple[SlotState, ...]:
    return tuple(SlotState(**row) for row in rows)


def read_standbys(rows: Iterable[Mapping[str, Any]]) -> tuple[StandbyState, ...]:
    return tuple(StandbyState(**row) for row in rows)


@dataclass(frozen=True, slots=True)
class InvalidIndex:
    oid: int
    schema: str
    name: str
    table: str


@dataclass(frozen=True, slots=True)
class Backlogged:
    """A table over its autovacuum trigger."""

    oid: int
    schema: str
    name: str
    reason: str
    dead: int


@dataclass(frozen=True, slots=True)
class ServerRead:
    """One read of the slow part (``HEALTH_*`` queries)."""

    cluster: Mapping[str, Any]
    slots: tuple[SlotState, ...]
    standbys: tuple[StandbyState, ...]
    invalid_indexes: tuple[InvalidIndex, ...]
    backlog: tuple[Backlogged, ...]
    holder: HorizonHolder | None
    statements: StatementsSnapshot | StatementsUnavailable | None
    problems: Mapping[str, str]
    """Check id to why its data could not be read (e.g. a privilege)."""

    @property
    def collected_at(self) -> datetime:
        when: datetime = self.cluster["collected_at"]
        return when


# -- the checks ----------------------------------------------------------------------------


def _grade(value: float, bounds: tuple[float, float], lower_is_worse: bool = False) -> Status:
    warn, crit = bounds
    if lower_is_worse:
        return Status.CRIT if value <= crit else Status.WARN if value <= warn else Status.OK
    return Status.CRIT if value >= crit else Status.WARN if value >= warn else Status.OK


def _finding(
    check: str,
    value: float | None,
    bounds: tuple[float, float],
    summary: str,
    short: str,
    target: Target | None = None,
    *,
    lower_is_worse: bool = False,
) -> Finding:
    status = Status.OK if value is None else _grade(value, bounds, lower_is_worse)
    return Finding(check, status, summary, short, value, bounds[0], bounds[1], target)


def _unknown(check: str, why: str, bounds: tuple[float, float] | None = None) -> Finding:
    warn, crit = bounds if bounds is not None else (None, None)
    return Finding(check, Status.UNKNOWN, why, warn=warn, crit=crit)


def _hidden_note(hidden: int, snapshot: ActivitySnapshot) -> str:
    if not hidden or snapshot.capabilities.sees_all_queries:
        return ""
    return f"{hidden} sessions of other roles not visible: needs pg_read_all_stats"


Oldest = tuple[Backend, float] | None
"""The client session at something longest, and for how many seconds."""


class _SessionScan(NamedTuple):
    """What the session checks need from the client sessions, read in one pass (thousands
    of sessions, on every refresh)."""

    idle_in_transaction: Oldest
    lock_wait: Oldest
    long_transaction: Oldest
    hidden: int
    """Client sessions whose query this role may not see."""


def _scan_sessions(snapshot: ActivitySnapshot) -> _SessionScan:
    """The client session idle in a transaction longest, waiting on a lock longest (since
    its statement started, or its state changed), in a transaction longest; on a tie, the
    first listed."""
    idle: tuple[Backend, datetime] | None = None
    lock: tuple[Backend, datetime] | None = None
    xact: tuple[Backend, datetime] | None = None
    hidden = 0
    for backend in snapshot.backends:
        if backend.backend_type != "client backend":
            continue
        if backend.query == HIDDEN_QUERY:
            hidden += 1
        if backend.state in IDLE_IN_TRANSACTION_STATES:
            since = backend.state_change
            if since is not None and (idle is None or since < idle[1]):
                idle = (backend, since)
        if backend.wait_event_type == "Lock":
            since = backend.query_start or backend.state_change
            if since is not None and (lock is None or since < lock[1]):
                lock = (backend, since)
        since = backend.xact_start
        if since is not None and (xact is None or since < xact[1]):
            xact = (backend, since)
    now = snapshot.collected_at

    def aged(found: tuple[Backend, datetime] | None) -> Oldest:
        return None if found is None else (found[0], (now - found[1]).total_seconds())

    return _SessionScan(aged(idle), aged(lock), aged(xact), hidden)


def _session_check(
    snapshot: ActivitySnapshot,
    check: str,
    bounds: tuple[float, float],
    oldest: Oldest,
    hidden: str,
    words: str,
    label: str,
    none: str,
    target_kind: TargetKind = "session",
) -> Finding:
    """The session that has been at something longest (``oldest``), graded by how long;
    ``hidden``: why some sessions could not be seen ("" when all were)."""
    if oldest is None:
        if hidden:
            return _unknown(check, f"{none}; {hidden}", bounds)
        return _finding(check, 0.0, bounds, none, "")
    backend, age = oldest
    names = f"{name_text(backend.user, 30)}, {name_text(backend.application_name, 30)}"
    who = f"pid {backend.pid} ({names})"
    pid = backend.pid
    if target_kind == "blocker":
        pid = root_blocker(snapshot, backend.pid)
    finding = _finding(
        check,
        age,
        bounds,
        f"{who} {words} for {duration(age)}",
        f"{label} {duration(age)} (pid {backend.pid})",
        Target(target_kind, pid=pid),
    )
    if finding.status is Status.OK and hidden:
        return replace(finding, status=Status.UNKNOWN, summary=f"{finding.summary}; {hidden}")
    return finding


def root_blocker(snapshot: ActivitySnapshot, pid: int) -> int:
    """The session at the head of ``pid``'s chain of lock waits (``pid`` if none blocks it)."""
    by_pid = {b.pid: b for b in snapshot.backends}
    seen = {pid}
    current = pid
    while True:
        backend = by_pid.get(current)
        if backend is None or not backend.blocked_by:
            return current
        upstream = min(backend.blocked_by)
        if upstream in seen:  # a deadlock, about to be broken by the server
            return current
        seen.add(upstream)
        current = upstream


def _application_slots(
    snapshot: ActivitySnapshot, open_slots: int, bounds: tuple[float, float]
) -> Finding:
    """The application whose client sessions hold the most connection slots (the first of
    the Activity tab's groups by application), graded by its share of the slots open to
    ordinary roles.

    Thousands of sessions, on every refresh: the snapshot's census has them counted by
    application and state already.
    """
    counted = snapshot.client_sessions()
    if not counted:
        return _finding("application_slots", 0.0, bounds, "no client session", "")
    totals: dict[str | None, int] = {}
    for (name, _), sessions in counted.items():
        totals[name] = totals.get(name, 0) + sessions
    # The order of session_groups: the most sessions, then by name.
    application, total = min(
        totals.items(), key=lambda item: (-item[1], item[0] is None, item[0] or "")
    )
    states = {state: n for (name, state), n in counted.items() if name == application}
    active = sum(states.get(state, 0) for state in ACTIVE_STATES)
    in_transaction = sum(states.get(state, 0) for state in IDLE_IN_TRANSACTION_STATES)
    first = next(
        b
        for b in snapshot.backends
        if b.backend_type == "client backend" and b.application_name == application
    )
    share = 100.0 * total / open_slots if open_slots > 0 else 100.0
    name = name_text(application, 60) if application else "(no application_name)"
    return _finding(
        "application_slots",
        share,
        bounds,
        f"application {name} holds {total} of {open_slots} connection slots "
        f"({percent(share / 100)}; {active} active, {states.get('idle', 0)} idle, "
        f"{in_transaction} idle in tx)",
        f"{name} holds {percent(share / 100)} of slots",
        Target("session", pid=first.pid, name=application),
    )


def session_findings(snapshot: ActivitySnapshot, limits: Thresholds) -> list[Finding]:
    """The checks worked out from the Activity snapshot alone."""
    caps = snapshot.capabilities
    open_slots = caps.max_connections - caps.reserved_connections
    used = snapshot.client_connections
    share = 100.0 * used / open_slots if open_slots > 0 else 100.0
    scan = _scan_sessions(snapshot)
    hidden = _hidden_note(scan.hidden, snapshot)
    findings = [
        _finding(
            "connections",
            share,
            limits.connections,
            f"{used} of {open_slots} connection slots in use ({percent(share / 100)}; "
            f"max_connections {caps.max_connections}, {caps.reserved_connections} reserved)",
            f"conns {percent(share / 100)}",
            Target("session"),
        ),
        _application_slots(snapshot, open_slots, limits.application_slots),
        _session_check(
            snapshot,
            "idle_in_transaction",
            limits.idle_in_transaction,
            scan.idle_in_transaction,
            hidden,
            "idle in tx",
            "idle in tx",
            "no session idle in a transaction",
        ),
        _session_check(
            snapshot,
            "lock_wait",
            limits.lock_wait,
            scan.lock_wait,
            hidden,
            "waiting on a lock",
            "lock wait",
            "no session waits on a lock",
            target_kind="blocker",
        ),
        _session_check(
            snapshot,
            "long_transaction",
            limits.long_transaction,
            scan.long_transaction,
            hidden,
            "in a transaction",
            "tx open",
            "no open transaction",
        ),
    ]
    return findings


def _wraparound(
    check: str, age: int | None, database: str | None, freeze_max_age: int, bounds: Thresholds
) -> Finding:
    what = "transaction ID" if check == "xid_wraparound" else "multixact"
    limits = bounds.wraparound
    if age is None:
        return _unknown(check, f"the {what} ages of the databases could not be read", limits)
    share = 100.0 * age / WRAPAROUND_LIMIT
    status = _grade(share, limits)
    if age <= freeze_max_age:
        # Autovacuum has not had to freeze yet: the server's own measure comes first.
        status = Status.OK
    db = name_text(database, 60)
    return Finding(
        check,
        status,
        f"database {db}: {what} age {age:,} ({percent(share / 100)} of the way to "
        f"wraparound; autovacuum freezes from {freeze_max_age:,})",
        f"{what} age {percent(share / 100)} ({db})",
        share,
        limits[0],
        limits[1],
        Target("database", name=database) if database is not None else None,
    )


def _slots(read: ServerRead, limits: Thresholds) -> Finding:
    bounds = limits.slot_retained
    if not read.slots:
        return _finding("replication_slots", 0.0, bounds, "no replication slot", "")
    max_wal = read.cluster["max_wal_size"]
    worst: Finding | None = None
    for slot in read.slots:
        retained = slot.retained_bytes or 0
        share = 100.0 * retained / max_wal if max_wal else 0.0
        status = _grade(share, bounds)
        state = "active" if slot.active else "inactive"
        if not slot.active:
            status = max(status, Status.WARN)
        if slot.wal_status in ("unreserved", "lost"):
            status = Status.CRIT
        name = name_text(slot.name, 60)
        finding = Finding(
            "replication_slots",
            status,
            f"slot {name} ({slot.kind}, {state}, wal_status {slot.wal_status or '?'}) keeps "
            f"{size(retained)} of WAL ({percent(share / 100)} of max_wal_size)",
            f"slot {name} {state} {size(retained)}",
            share,
            bounds[0],
            bounds[1],
            Target("slot", pid=slot.active_pid, name=slot.name),
        )
        if worst is None or finding.status > worst.status:
            worst = finding
    assert worst is not None
    if len(read.slots) > 1 and worst.status is not Status.OK:
        worst = replace(worst, summary=f"{worst.summary} (and {len(read.slots) - 1} more slots)")
    return worst


def _replication_lag(read: ServerRead, limits: Thresholds) -> Finding:
    bounds = limits.replication_lag
    delay = read.cluster["replay_delay_s"]
    if read.cluster["in_recovery"]:
        if delay is None:
            return _unknown("replication_lag", "this standby has replayed nothing yet", bounds)
        return _finding(
            "replication_lag",
            delay,
            bounds,
            f"this standby's replay is {duration(delay)} behind",
            f"replay {duration(delay)} behind",
        )
    if not read.standbys:
        return _finding("replication_lag", 0.0, bounds, "no standby streams from here", "")
    if "replication_lag" in read.problems:
        return _unknown("replication_lag", read.problems["replication_lag"], bounds)
    worst = max(read.standbys, key=lambda s: s.replay_lag_s or 0.0)
    lag = worst.replay_lag_s or 0.0
    name = name_text(worst.application_name or worst.client_addr, 60)
    return _finding(
        "replication_lag",
        lag,
        bounds,
        f"standby {name} replays {duration(lag)} ({size(worst.replay_lag_bytes or 0)}) behind",
        f"standby {name} {duration(lag)} behind",
        Target("session", pid=worst.pid),
    )


def _archiver(read: ServerRead) -> Finding:
    c = read.cluster
    if c["archive_mode"] == "off":
        return Finding("archiver", Status.OK, "archive_mode is off")
    failed, archived = c["last_failed_time"], c["last_archived_time"]
    if failed is not None and (archived is None or failed > archived):
        wal = name_text(c["last_failed_wal"], 60)
        return Finding(
            "archiver",
            Status.CRIT,
            f"archiving fails: {wal} failed at {failed:%H:%M:%S}"
            + (f", last success {archived:%H:%M:%S}" if archived else ", never succeeded")
            + f" ({c['failed_count']} failures)",
            "archiving fails",
            float(c["failed_count"]),
        )
    return Finding(
        "archiver", Status.OK, f"{c['archived_count']} WAL files archived, last failure older"
    )


def _per_minute(new: int, old: int, seconds: float) -> float:
    return max(0, new - old) * 60.0 / seconds


def rate_findings(
    read: ServerRead, previous: ServerRead | None, limits: Thresholds
) -> list[Finding]:
    """The checks that compare two reads of the server's counters."""
    names = ("requested_checkpoints", "temp_files", "deadlocks", "rollbacks", "cache_hit")
    if previous is None:
        why = f"needs a second read ({HEALTH_INTERVAL:g}s after the first)"
        return [_unknown(name, why, limits.of(name)) for name in names]
    new, old = read.cluster, previous.cluster
    seconds = (read.collected_at - previous.collected_at).total_seconds()
    if seconds <= 0:
        return [_unknown(name, "the server clock went back", limits.of(name)) for name in names]
    span = duration(seconds)
    findings = []
    timed = max(0, new["checkpoints_timed"] - old["checkpoints_timed"])
    requested = max(0, new["checkpoints_requested"] - old["checkpoints_requested"])
    if timed + requested == 0:
        findings.append(
            _finding(
                "requested_checkpoints",
                0.0,
                limits.requested_checkpoints,
                f"no checkpoint in the last {span}",
                "",
            )
        )
    else:
        share = 100.0 * requested / (timed + requested)
        findings.append(
            _finding(
                "requested_checkpoints",
                share,
                limits.requested_checkpoints,
                f"{requested} of {timed + requested} checkpoints in the last {span} forced by "
                "WAL volume or asked for (raise max_wal_size?)",
                f"checkpoints forced {percent(share / 100)}",
            )
        )
    temp = _per_minute(new["temp_bytes"], old["temp_bytes"], seconds) / 2**20
    findings.append(
        _finding(
            "temp_files",
            temp,
            limits.temp_files,
            f"{size(temp * 2**20)} of temporary files written per minute (last {span})",
            f"temp files {size(temp * 2**20)}/min",
        )
    )
    deadlocks = _per_minute(new["deadlocks"], old["deadlocks"], seconds)
    count = max(0, new["deadlocks"] - old["deadlocks"])
    findings.append(
        _finding(
            "deadlocks",
            deadlocks if count else 0.0,
            limits.deadlocks,
            f"{count} deadlocks in the last {span}",
            f"{count} deadlocks",
        )
    )
    commits = max(0, new["xact_commit"] - old["xact_commit"])
    rollbacks = max(0, new["xact_rollback"] - old["xact_rollback"])
    findings.append(
        _share(
            "rollbacks",
            rollbacks,
            commits + rollbacks,
            MIN_TRANSACTIONS,
            limits.rollbacks,
            (f"transactions in the last {span}", "rolled back", "rollbacks"),
        )
    )
    hits = max(0, new["blks_hit"] - old["blks_hit"])
    reads = max(0, new["blks_read"] - old["blks_read"])
    findings.append(
        _share(
            "cache_hit",
            hits,
            hits + reads,
            MIN_BLOCKS,
            limits.cache_hit,
            (f"block reads in the last {span}", "found in shared buffers", "cache hit"),
            lower_is_worse=True,
        )
    )
    return findings


def _share(
    check: str,
    part: int,
    total: int,
    minimum: int,
    bounds: tuple[float, float],
    words: tuple[str, str, str],
    *,
    lower_is_worse: bool = False,
) -> Finding:
    """``part`` of ``total`` as a percentage, or unknown when ``total`` is too small to judge.

    ``words``: what ``total`` counts, what ``part`` of it did, and the header's short name.
    """
    counted, did, short = words
    if total < minimum:
        return _unknown(check, f"{total:,} {counted}: too few to judge", bounds)
    share = 100.0 * part / total
    return _finding(
        check,
        share,
        bounds,
        f"{part:,} of {total:,} {counted} {did} ({percent(share / 100)})",
        f"{short} {percent(share / 100)}",
        lower_is_worse=lower_is_worse,
    )


def _invalid_indexes(read: ServerRead, limits: Thresholds, database: str) -> Finding:
    found = read.invalid_indexes
    if not found:
        return _finding(
            "invalid_indexes",
            0.0,
            limits.invalid_indexes,
            f"no invalid index in database {name_text(database, 60)}",
            "",
        )
    first = found[0]
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    qualified = f"{first.schema}.{first.name}"
    return _finding(
        "invalid_indexes",
        float(len(found)),
        limits.invalid_indexes,
        f"{name_text(qualified, 80)} on {name_text(first.table, 60)} is invalid{more} "
        "(a failed CREATE INDEX CONCURRENTLY?): drop it or REINDEX it",
        f"{len(found)} invalid indexes",
        Target("index", oid=first.oid, name=qualified),
    )


def _holder_finding(
    holder: HorizonHolder | None, seen_for: float | None, now: datetime, limits: Thresholds
) -> Finding:
    bounds = limits.xmin_horizon
    if holder is None:
        return _finding("xmin_horizon", 0.0, bounds, "nothing holds the xmin horizon back", "")
    held = (now - holder.since).total_seconds() if holder.since is not None else seen_for
    ident = name_text(holder.ident, 60)
    what = {"session": f"pid {ident}", "slot": f"slot {ident}", "prepared": f"prepared {ident}"}
    who = what.get(holder.kind, ident)
    target = (
        Target("slot", pid=holder.pid, name=holder.ident)
        if holder.kind == "slot"
        else Target("session", pid=holder.pid)
        if holder.pid is not None
        else None
    )
    age = f"{holder.age:,} transactions" if holder.age is not None else "?"
    if held is None:
        return _unknown("xmin_horizon", f"{who} holds the xmin horizon back ({age})", bounds)
    return _finding(
        "xmin_horizon",
        held,
        bounds,
        f"{who} holds the xmin horizon back ({age}) for {duration(held)}: vacuum cannot "
        "remove rows deleted since",
        f"xmin held {duration(held)} ({who})",
        target,
    )


def _slowdown(
    statements: StatementsSnapshot | StatementsUnavailable | None, limits: Thresholds
) -> Finding:
    bounds = limits.statement_slowdown
    if statements is None:
        return _unknown("statement_slowdown", "not read yet", bounds)
    if isinstance(statements, StatementsUnavailable):
        return _unknown("statement_slowdown", statements.reason, bounds)
    previous = statements.previous
    if previous is None:
        return _unknown(
            "statement_slowdown",
            f"needs a second read of pg_stat_statements ({HEALTH_INTERVAL:g}s after the first)",
            bounds,
        )
    window = figures_between(previous, statements.current)
    worst: tuple[float, StatementKey, float, float] | None = None
    for key, figures in window.items():
        before = previous.statements.get(key)
        if before is None or figures.restarted or figures.calls < MIN_CALLS:
            continue
        if before.counters.calls < MIN_CALLS or figures.mean_ms is None:
            continue
        lifetime = before.counters.exec_ms / before.counters.calls
        if figures.mean_ms < MIN_MEAN_MS or lifetime <= 0:
            continue
        ratio = figures.mean_ms / lifetime
        if worst is None or ratio > worst[0]:
            worst = (ratio, key, figures.mean_ms, lifetime)
    if worst is None:
        return _finding(
            "statement_slowdown", 0.0, bounds, "no statement slower than it used to be", ""
        )
    ratio, key, mean, lifetime = worst
    return _finding(
        "statement_slowdown",
        ratio,
        bounds,
        f"queryid {key[2]}: {mean:.1f} ms a call now, {lifetime:.1f} ms over its lifetime "
        f"({ratio:.1f}x)",
        f"statement {ratio:.0f}x slower",
        Target("statement", statement=key),
    )


def slow_findings(
    read: ServerRead | None,
    previous: ServerRead | None,
    limits: Thresholds,
    database: str,
    holder_seen_for: float | None,
    backlog_for: Mapping[int, float],
    now: datetime,
) -> list[Finding]:
    """The checks worked out from the slow reads; durations measured to ``now``."""
    if read is None:
        return [_unknown(name, "not read yet") for name in CHECKS if name in _SLOW]
    c = read.cluster
    findings = [
        _wraparound("xid_wraparound", c["xid_age"], c["xid_database"], c["freeze_max_age"], limits),
        _wraparound(
            "multixact_wraparound",
            c["mxid_age"],
            c["mxid_database"],
            c["multixact_freeze_max_age"],
            limits,
        ),
        _slots(read, limits),
        _replication_lag(read, limits),
        _archiver(read),
        *rate_findings(read, previous, limits),
        _invalid_indexes(read, limits, database),
        _backlog(read, limits, backlog_for),
        _holder_finding(read.holder, holder_seen_for, now, limits),
        _slowdown(read.statements, limits),
    ]
    return [
        replace(f, status=Status.UNKNOWN, summary=read.problems[f.check], short="", target=None)
        if f.check in read.problems and f.check != "replication_lag"
        else f
        for f in findings
    ]


def _backlog(read: ServerRead, limits: Thresholds, backlog_for: Mapping[int, float]) -> Finding:
    bounds = limits.vacuum_backlog
    if not read.backlog:
        return _finding("vacuum_backlog", 0.0, bounds, "no table over its autovacuum trigger", "")
    longest = max(read.backlog, key=lambda t: backlog_for.get(t.oid, 0.0))
    seconds = backlog_for.get(longest.oid, 0.0)
    qualified = f"{longest.schema}.{longest.name}"
    more = f" ({len(read.backlog)} tables over their trigger)" if len(read.backlog) > 1 else ""
    return _finding(
        "vacuum_backlog",
        seconds,
        bounds,
        f"{name_text(qualified, 80)}: {longest.dead:,} dead rows, over its autovacuum trigger "
        f"({longest.reason}) for at least {duration(seconds)}{more}",
        f"vacuum due {duration(seconds)} ({name_text(longest.name, 30)})",
        Target("table", oid=longest.oid, name=qualified),
    )


def ordered(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Worst first; within a status, in the order of the checks."""
    indexed = list(enumerate(findings))
    indexed.sort(key=lambda item: (-item[1].status, item[0]))
    return tuple(f for _, f in indexed)


CHECKS = (
    "connections",
    "application_slots",
    "idle_in_transaction",
    "lock_wait",
    "long_transaction",
    "xid_wraparound",
    "multixact_wraparound",
    "replication_slots",
    "replication_lag",
    "archiver",
    "requested_checkpoints",
    "temp_files",
    "deadlocks",
    "rollbacks",
    "cache_hit",
    "invalid_indexes",
    "vacuum_backlog",
    "xmin_horizon",
    "statement_slowdown",
)
"""Every check's id on PostgreSQL, in the order they are listed when of equal status."""
POOLER_CHECKS = ("pooler_wait",)
"""Every check's id on a PgBouncer's admin console."""
_SLOW = frozenset(CHECKS[CHECKS.index("xid_wraparound") :])
UNITS = {
    "connections": "%",
    "application_slots": "%",
    "idle_in_transaction": "s",
    "lock_wait": "s",
    "long_transaction": "s",
    "xid_wraparound": "%",
    "multixact_wraparound": "%",
    "replication_slots": "%",
    "replication_lag": "s",
    "archiver": "",
    "requested_checkpoints": "%",
    "temp_files": "MiB/min",
    "deadlocks": "/min",
    "rollbacks": "%",
    "cache_hit": "%",
    "invalid_indexes": "",
    "vacuum_backlog": "s",
    "xmin_horizon": "s",
    "statement_slowdown": "x",
    "pooler_wait": "s",
}
"""The unit of each check's value and thresholds (``formats.quantity``)."""
"""The checks that need the slow reads."""


# -- the collector -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HealthNeeds:
    """Nothing: the checks need no choice of the pane (a type for the contract)."""


class HealthCollector:
    """Runs every check after every Activity poll, whichever tab is shown (the header line
    names the worst findings on every tab); reads what the Activity snapshot does not hold
    at its slow cadence."""

    def __init__(self, context: CollectorContext) -> None:
        self.capabilities = context.capabilities
        self.limits = context.thresholds
        self.interval = HEALTH_INTERVAL
        self._statements = StatementsCollector(context)
        self._read: ServerRead | None = None
        self._previous: ServerRead | None = None
        self._since: dict[str, tuple[Status, datetime]] = {}
        self._holder: tuple[str, float] | None = None
        self._backlog_since: dict[int, float] = {}

    async def close(self) -> None:
        await self._statements.close()

    async def collect(
        self,
        conn: Connection,
        activity: ActivitySnapshot,
        needs: object = None,
        *,
        due: bool = True,
    ) -> HealthData:
        if due:
            read = await self.read(conn, activity.own_pids)
            self._previous, self._read = self._read, read
            self._follow(read)
        return self.evaluate(activity)

    def evaluate(self, activity: ActivitySnapshot) -> HealthData:
        """Every check now, from this snapshot and the last slow read."""
        read = self._read
        holder_for = None
        if self._holder is not None:
            holder_for = time.monotonic() - self._holder[1]
        backlog_for = {oid: time.monotonic() - t for oid, t in self._backlog_since.items()}
        findings = session_findings(activity, self.limits) + slow_findings(
            read,
            self._previous,
            self.limits,
            self.capabilities.database,
            holder_for,
            backlog_for,
            activity.collected_at,
        )
        now = activity.collected_at
        dated = _dated(findings, self._since, now)
        return HealthData(now, ordered(dated), read.collected_at if read else None)

    def _follow(self, read: ServerRead) -> None:
        """Keep since when the same holder holds the horizon, and since when each table is
        over its trigger (as far as pgtop has seen)."""
        clock = time.monotonic()
        holder = read.holder
        if holder is None:
            self._holder = None
        elif self._holder is None or self._holder[0] != f"{holder.kind}:{holder.ident}":
            self._holder = (f"{holder.kind}:{holder.ident}", clock)
        over = {t.oid for t in read.backlog}
        self._backlog_since = {oid: self._backlog_since.get(oid, clock) for oid in over}

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> ServerRead:
        """One read of the slow part. A part the role may not read is marked, not fatal."""
        # The catalog tabs' code loads with the first read, not with the interface.
        from pgtop.collectors.catalog.model import AutovacuumSettings, HorizonHolder

        version = self.capabilities.server_version_num
        problems: dict[str, str] = {}
        async with conn.pipeline():
            cluster_cur = await conn.execute(sql.HEALTH_CLUSTER.sql(version))
            slots_cur = await conn.execute(sql.HEALTH_SLOTS.sql(version))
            standbys_cur = await conn.execute(sql.HEALTH_STANDBYS.sql(version))
            invalid_cur = await conn.execute(
                sql.HEALTH_INVALID_INDEXES.sql(version), {"limit": LIST_LIMIT}
            )
            holder_cur = await conn.execute(
                sql.XMIN_HOLDERS.sql(version),
                {"own_pids": sorted(own_pids), "query_limit": 200, "limit": 1},
            )
            settings_cur = await conn.execute(sql.AUTOVACUUM_SETTINGS.sql(version))
            candidates_cur = await conn.execute(
                sql.HEALTH_DEAD_CANDIDATES.sql(version), {"limit": LIST_LIMIT}
            )
        cluster = await cluster_cur.fetchone()
        assert cluster is not None
        slots = read_slots(await slots_cur.fetchall())
        standbys = read_standbys(await standbys_cur.fetchall())
        if standbys and not self.capabilities.sees_all_queries:
            problems["replication_lag"] = (
                "standby lag is hidden from this role: needs pg_read_all_stats (pg_monitor)"
            )
        invalid = tuple(InvalidIndex(**row) for row in await invalid_cur.fetchall())
        holder_rows = await holder_cur.fetchall()
        holder = HorizonHolder(**holder_rows[0]) if holder_rows else None
        settings = AutovacuumSettings(**(await settings_cur.fetchone() or {}))
        candidates = [row["oid"] for row in await candidates_cur.fetchall()]
        backlog = await self._backlog(conn, settings, candidates)
        statements = await self._statements.collect(conn, None, None, due=True)
        return ServerRead(cluster, slots, standbys, invalid, backlog, holder, statements, problems)

    async def _backlog(
        self, conn: Connection, settings: AutovacuumSettings, candidates: list[int]
    ) -> tuple[Backlogged, ...]:
        if not candidates:
            return ()
        from pgtop.collectors.catalog.collectors import vacuum_table

        version = self.capabilities.server_version_num
        cur = await conn.execute(
            sql.VACUUM_TABLES_SOME.sql(version), {"oids": candidates, "after": 2**32 - 1}
        )
        found = []
        for row in await cur.fetchall():
            table = vacuum_table(row, settings, set())
            if table.verdict.vacuum:
                found.append(
                    Backlogged(
                        table.oid, table.schema, table.name, table.verdict.vacuum, table.n_dead_tup
                    )
                )
        return tuple(found)


def _dated(
    findings: Iterable[Finding], since: dict[str, tuple[Status, datetime]], now: datetime
) -> list[Finding]:
    """The findings with since when each has been in its status (kept in ``since``)."""
    dated = []
    for finding in findings:
        seen = since.get(finding.check)
        if seen is None or seen[0] is not finding.status:
            seen = since[finding.check] = (finding.status, now)
        dated.append(replace(finding, since=seen[1]))
    return dated


# -- a PgBouncer -------------------------------------------------------------------------------


def pooler_findings(snapshot: PoolsSnapshot, limits: Thresholds) -> list[Finding]:
    """The checks of a PgBouncer's admin console, from its pools: clients waiting for a
    server, graded by how long the one that has waited longest has waited."""
    bounds = limits.pooler_wait
    waiting = snapshot.waiting_pools()
    if not waiting:
        return [_finding("pooler_wait", 0.0, bounds, "no client waits for a server", "")]
    first = waiting[0]
    where = name_text(f"{first.database}/{first.user}", 60)
    clients = snapshot.clients_waiting
    return [
        _finding(
            "pooler_wait",
            first.maxwait_s,
            bounds,
            f"{clients} clients waiting for a server in {len(waiting)} pools; pool {where} "
            f"({first.cl_waiting} waiting, {first.sv_active} servers active of "
            f"{first.pool_size if first.pool_size is not None else '?'}) for "
            f"{duration(first.maxwait_s)}",
            f"{clients} clients wait {duration(first.maxwait_s)} ({where})",
        )
    ]


class PoolerHealth:
    """The Health checks of a PgBouncer's admin console, worked out from the pools of each
    refresh: no command of their own."""

    def __init__(self, limits: Thresholds) -> None:
        self.limits = limits
        self._since: dict[str, tuple[Status, datetime]] = {}

    def evaluate(self, snapshot: PoolsSnapshot) -> HealthData:
        now = snapshot.collected_at
        findings = _dated(pooler_findings(snapshot, self.limits), self._since, now)
        return HealthData(now, ordered(findings), None)
