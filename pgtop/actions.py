"""Actions that change the server, aimed by identity, never by screen position.

A session is named by (pid, backend_start), and for a cancel also by its query_start: a
signal runs in one statement that checks the identity still holds, so a reused pid or a
finished query is never hit. A relation is named by its OID; its current schema and name
are read back before the utility statement is built with ``pgsql.Identifier``.

Maintenance runs on a connection of its own, opened at start-up (it works when the
server is out of connection slots), in autocommit, without statement_timeout and with a
short lock_timeout: a lock that is not granted in time stops the action and names who
holds it, instead of queueing every other session behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime, timezone
from typing import Any, Literal

import psycopg
from psycopg import sql as pgsql

from pgtop import pg, sql
from pgtop.config import append_private, log_dir
from pgtop.model import (
    Backend,
    Capabilities,
    CheckpointTarget,
    RelationTarget,
    SessionTarget,
    SlotTarget,
)
from pgtop.text import name_text

Connection = psycopg.AsyncConnection[dict[str, Any]]
SessionAction = Literal["cancel", "terminate"]
RelationAction = Literal["analyze", "vacuum", "reindex", "drop_invalid_index"]

FOLLOW_UP_SECONDS = 5.0
"""How long a signal's outcome is watched before it is reported as still running."""
CHECK_SECONDS = 3.0
"""How long the action connection may take to answer the check before an action."""


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What an action will do, shown in full before it runs."""

    action: str
    target: SessionTarget | RelationTarget | SlotTarget | CheckpointTarget
    statement: pgsql.Composed
    lock: str
    """The lock it takes and what that blocks, in words."""
    warning: str = ""
    """A reason for a second, explicit confirmation (e.g. the target is not a client)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Bound parameters of ``statement``."""
    shown: pgsql.Composed | None = None
    """The statement with its parameters written in, for the dialog and the log."""
    conflicts: tuple[str, ...] = ()
    """Lock modes held by others that make this action wait."""

    @property
    def sql_text(self) -> str:
        return (self.shown or self.statement).as_string(None)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened, said truthfully."""

    ok: bool
    message: str
    """One line for the user."""
    leftovers: tuple[RelationTarget, ...] = ()
    """The invalid indexes a failed REINDEX CONCURRENTLY left behind."""
    details: dict[str, Any] = field(default_factory=dict)
    gone: bool = False
    """Nothing was done because the target was no longer the one captured (it ended, or
    its pid now names another session)."""


class RefusedError(Exception):
    """The action is not available on this target; ``str()`` says why."""


# -- planning ----------------------------------------------------------------------------------


_NON_CLIENT_WORDS = {
    "autovacuum worker": "an autovacuum worker (it will be restarted later, its work lost)",
    "walsender": "a WAL sender (a standby or a logical replication client will disconnect)",
    "logical replication worker": "a logical replication worker (replication pauses)",
    "logical replication apply worker": "a logical replication apply worker",
    "parallel worker": "a parallel worker (its leader query will fail)",
}


@dataclass(frozen=True, slots=True)
class TargetRole:
    """What the server weighs before it signals a session of this role."""

    superuser: bool
    """Only a superuser may signal a superuser's session."""
    inherited: bool
    """pgtop's role has this role's privileges (it is the role, or a member of it that
    inherits): the server lets it signal the role's sessions."""


def session_refusal(
    backend: Backend,
    caps: Capabilities,
    own_pids: frozenset[int],
    role: TargetRole | None,
) -> str | None:
    """Why this role may not signal this backend, as the server judges it, or None.

    Args:
        role: the session's role (None: a process with no role, or a role dropped since).
    """
    if backend.pid in own_pids:
        return "this is one of pgtop's own sessions"
    if backend.backend_start is None:
        return "the server hides this session's identity from this role"
    if caps.is_superuser:
        return None
    if role is None:
        return "a process without a role can only be signalled by a superuser"
    if role.superuser:
        return "a superuser's session can only be signalled by a superuser"
    if not role.inherited and not caps.signal_backend:
        return (
            f"this role ({name_text(caps.user, 60)}) may only signal the sessions of roles "
            "whose privileges it has: it needs pg_signal_backend for other roles'"
        )
    return None


def plan_session(action: SessionAction, backend: Backend) -> ActionPlan:
    """The statement that signals exactly this session, and only if it is still the same."""
    target = SessionTarget.of(backend)
    function = pgsql.SQL("pg_cancel_backend" if action == "cancel" else "pg_terminate_backend")
    text = "SELECT {function}(pid) AS signalled FROM pg_stat_activity"
    text += " WHERE pid = {pid} AND backend_start = {backend_start}"
    params: dict[str, Any] = {"pid": target.pid, "backend_start": target.backend_start}
    if action == "cancel":
        if target.query_start is None or backend.state not in ("active", "fastpath function call"):
            raise RefusedError("this session is running no query to cancel")
        text += " AND query_start = {query_start}"
        params["query_start"] = target.query_start
    template = pgsql.SQL(text)  # built from constants only
    statement = template.format(function=function, **{k: pgsql.Placeholder(k) for k in params})
    shown = template.format(function=function, **{k: pgsql.Literal(v) for k, v in params.items()})
    if action == "cancel":
        lock = "no lock: the running query stops with an error, the session stays connected"
    elif backend.xact_start is not None:
        lock = "no lock: the session ends, its open transaction is rolled back"
    else:
        lock = "no lock: the session ends (it has no open transaction)"
    warning = ""
    if not backend.is_client:
        kind = backend.backend_type or "background"
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        what = _NON_CLIENT_WORDS.get(kind, f"{article} {kind} process")
        warning = f"This is not a client session: it is {name_text(what, 120)}."
    return ActionPlan(action, target, statement, lock, warning, params, shown)


NOT_A_CLIENT = "not a client session: only client sessions are signalled together"


@dataclass(frozen=True, slots=True)
class GroupTarget:
    """One session of an action on many, as its confirmation lists it."""

    backend: Backend
    plan: ActionPlan | None
    """The guarded statement; None when the session is not signalled."""
    refusal: str = ""
    """Why it is not signalled ("" when it is)."""


def plan_group(
    action: SessionAction,
    backends: Iterable[Backend],
    caps: Capabilities,
    own_pids: frozenset[int],
    roles: Mapping[str | None, TargetRole | None],
) -> tuple[GroupTarget, ...]:
    """Each session's guarded statement, or why it is not signalled: pgtop's own sessions
    and processes that are not client sessions never are, nor those the server would
    refuse (``session_refusal``).

    Args:
        roles: each session's role, as ``target_role`` reads it.
    """
    targets: list[GroupTarget] = []
    for backend in backends:
        refusal = session_refusal(backend, caps, own_pids, roles.get(backend.user))
        if refusal is None and not backend.is_client:
            refusal = NOT_A_CLIENT
        if refusal is not None:
            targets.append(GroupTarget(backend, None, refusal))
            continue
        try:
            targets.append(GroupTarget(backend, plan_session(action, backend)))
        except RefusedError as exc:
            targets.append(GroupTarget(backend, None, str(exc)))
    return tuple(targets)


# Lock modes that conflict with the one each statement asks for on the table.
_CONFLICTS_SHARE_UPDATE_EXCLUSIVE = (
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
_CONFLICTS_SHARE = (
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)


def _relation(target: RelationTarget) -> pgsql.Composed:
    return pgsql.SQL("{}.{}").format(pgsql.Identifier(target.schema), pgsql.Identifier(target.name))


def maintenance_runs_as_caller(server_version_num: int) -> bool:
    """True on the releases where ANALYZE, VACUUM and REINDEX evaluate a table's index
    expressions with the rights of whoever runs them, not the table owner's: 13.0-13.6 and
    14.0-14.2 (CVE-2022-1552). There, the owner of a table can make a superuser who
    maintains it run their code.

    >>> [maintenance_runs_as_caller(v) for v in (130006, 130007, 140002, 140003, 150000)]
    [True, False, True, False, False]
    """
    return 130000 <= server_version_num < 130007 or 140000 <= server_version_num < 140003


def plan_relation(
    action: RelationAction,
    target: RelationTarget,
    *,
    standby: bool,
    server_version_num: int = 0,
    role: str | None = None,
) -> ActionPlan:
    """ANALYZE, VACUUM (ANALYZE) or REINDEX of one relation, named by identifiers.

    Args:
        standby: the server is a standby (no maintenance there).
        server_version_num: the server's version, to refuse what it makes unsafe.
        role: the role pgtop acts as.
    """
    if standby:
        raise RefusedError("the server is a standby: maintenance runs on the primary")
    if (
        action != "drop_invalid_index"
        and maintenance_runs_as_caller(server_version_num)
        and target.owner is not None
        and target.owner != role
    ):
        raise RefusedError(
            f"this server runs maintenance with the rights of its caller, so the owner of "
            f"{name_text(target.qualified, 100)} ({name_text(target.owner, 60)}) could make "
            f"it run their code as {name_text(role, 60)} (CVE-2022-1552): update PostgreSQL "
            "(13.7, 14.3 or newer) or run it as the owner"
        )
    name = _relation(target)
    if action in ("analyze", "vacuum"):
        if target.kind != "table":
            raise RefusedError(f"{action.upper()} applies to tables")
        statement = "ANALYZE {}" if action == "analyze" else "VACUUM (ANALYZE) {}"
        return ActionPlan(
            action,
            target,
            pgsql.SQL(statement).format(name),
            "SHARE UPDATE EXCLUSIVE on the table: reads and writes continue; other "
            "maintenance (VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY, ALTER TABLE) waits",
            conflicts=_CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
        )
    if action == "drop_invalid_index":
        return ActionPlan(
            action,
            target,
            pgsql.SQL("DROP INDEX CONCURRENTLY {}").format(name),
            "SHARE UPDATE EXCLUSIVE on the table: reads and writes continue",
            conflicts=_CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
        )
    word = pgsql.SQL("INDEX" if target.kind == "index" else "TABLE")
    if target.is_system:
        # REINDEX CONCURRENTLY is refused on system catalogs: the plain form is the only one.
        reindex, conflicts = pgsql.SQL("REINDEX {} {}"), _CONFLICTS_SHARE
        locks = (
            "SHARE on the table and ACCESS EXCLUSIVE on the index: writes to the table wait, "
            "and so do reads that would use the index, until it finishes"
        )
        warning = "System catalogs cannot be reindexed concurrently: writes will wait."
    else:
        reindex = pgsql.SQL("REINDEX {} CONCURRENTLY {}")
        conflicts = _CONFLICTS_SHARE_UPDATE_EXCLUSIVE
        locks = (
            "SHARE UPDATE EXCLUSIVE on the table: reads and writes continue while the index is "
            "rebuilt beside the old one; other maintenance waits"
        )
        warning = ""
    return ActionPlan(
        action, target, reindex.format(word, name), locks, warning, conflicts=conflicts
    )


def plan_drop_slot(target: SlotTarget) -> ActionPlan:
    """Drop a replication slot by name, in one statement that drops it only if it is still
    inactive (an active slot is in use: never dropped)."""
    if target.active:
        raise RefusedError(
            f"slot {name_text(target.name, 80)} is in use by pid {target.active_pid}: an "
            "active slot is never dropped (stop its consumer first)"
        )
    template = pgsql.SQL(
        "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM "
        "pg_catalog.pg_replication_slots WHERE slot_name = {slot} AND NOT active"
    )  # built from constants only
    return ActionPlan(
        "drop_slot",
        target,
        template.format(slot=pgsql.Placeholder("slot")),
        "no lock; the WAL the slot keeps is removed at the next checkpoints",
        params={"slot": target.name},
        shown=template.format(slot=pgsql.Literal(target.name)),
    )


CHECKPOINT_HELPS = "recycles WAL that no slot, archiving backlog or wal_keep_size keeps"
"""When a CHECKPOINT helps, said in its confirm dialog."""


def plan_checkpoint(target: CheckpointTarget, allowed: bool) -> ActionPlan:
    """A CHECKPOINT now, where the role may run one."""
    if not allowed:
        raise RefusedError("CHECKPOINT needs a superuser or, from PostgreSQL 15, pg_checkpoint")
    return ActionPlan(
        "checkpoint",
        target,
        pgsql.SQL("CHECKPOINT").format(),
        "no lock; writes every dirty buffer now (an I/O burst)",
    )


# -- running -----------------------------------------------------------------------------------


async def drop_slot(conn: Connection, plan: ActionPlan) -> Outcome:
    """Drop the slot if it is still there and inactive; say what happened."""
    target = plan.target
    assert isinstance(target, SlotTarget)
    name = name_text(target.name, 80)
    try:
        cur = await conn.execute(plan.statement, plan.params)
        dropped = await cur.fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        return Outcome(False, f"the server refused: {pg.first_line(exc)}")
    except psycopg.Error as exc:
        return Outcome(False, f"failed: {pg.first_line(exc)}")
    if dropped:
        return Outcome(True, f"dropped slot {name}: {plan.sql_text}")
    cur = await conn.execute(sql.SLOT_USER.sql(conn.info.server_version), {"slot": target.name})
    row = await cur.fetchone()
    if row is None:
        return Outcome(False, f"nothing done: slot {name} no longer exists")
    return Outcome(False, f"nothing done: slot {name} became active (pid {row['active_pid']})")


async def run_checkpoint(conn: Connection, plan: ActionPlan) -> Outcome:
    """Run the CHECKPOINT; say how long it took."""
    started = time.monotonic()
    try:
        await conn.execute(plan.statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        return Outcome(False, f"the server refused: {pg.first_line(exc)}")
    except psycopg.Error as exc:
        return Outcome(False, f"failed: {pg.first_line(exc)}")
    target = plan.target
    assert isinstance(target, CheckpointTarget)
    what = "restartpoint" if target.in_recovery else "checkpoint"
    return Outcome(True, f"{what} done in {time.monotonic() - started:.1f} s")


async def open_action_connection(conninfo: str, password: str | None) -> Connection:
    """The second connection: no statement timeout, a lock timeout set per action."""
    return await pg.connect(conninfo, password, statement_timeout_ms=0, lock_timeout_ms=3000)


async def send_signal(conn: Connection, plan: ActionPlan) -> Outcome | None:
    """Send the signal if the session is still the one captured: None once sent, or why
    nothing was done."""
    target = plan.target
    assert isinstance(target, SessionTarget)
    try:
        cur = await conn.execute(plan.statement, plan.params)
        row = await cur.fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        return Outcome(False, f"the server refused: {pg.first_line(exc)}")
    if row is None:
        what = "its query already finished" if plan.action == "cancel" else "it ended"
        return Outcome(
            False,
            f"nothing done: session {target.pid} is no longer the one selected ({what})",
            gone=True,
        )
    if not row["signalled"]:
        # The server found no such process any more: it ended between the check and the signal.
        return Outcome(False, f"the server could not signal process {target.pid}", gone=True)
    return None


async def signal_done(conn: Connection, plan: ActionPlan) -> bool:
    """Whether a signalled session has left (terminate), or its query stopped (cancel)."""
    target = plan.target
    assert isinstance(target, SessionTarget)
    cur = await conn.execute(
        sql.SESSION_GONE.sql(conn.info.server_version),
        {
            "pid": target.pid,
            "backend_start": target.backend_start,
            "query_start": target.query_start if plan.action == "cancel" else None,
        },
    )
    row = await cur.fetchone()
    return bool(row and row["gone"])


async def watch_signal(
    done: Callable[[], Awaitable[bool]], plan: ActionPlan, follow_up: float = FOLLOW_UP_SECONDS
) -> Outcome:
    """After a signal: report what happened within ``follow_up`` seconds."""
    target = plan.target
    assert isinstance(target, SessionTarget)
    deadline = time.monotonic() + follow_up
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if await done():
            return signalled(plan, done=True, follow_up=follow_up)
    return signalled(plan, done=False, follow_up=follow_up)


def signalled(plan: ActionPlan, *, done: bool, follow_up: float) -> Outcome:
    """The outcome of a signal that was sent: whether it took effect within ``follow_up``."""
    target = plan.target
    assert isinstance(target, SessionTarget)
    if not done:
        return Outcome(
            True, f"signal sent, but {target.pid} is still running after {follow_up:g} s"
        )
    if plan.action == "cancel":
        return Outcome(True, f"signal sent: the query of {target.pid} was cancelled")
    return Outcome(True, f"signal sent: session {target.pid} is gone")


async def signal_session(
    conn: Connection, plan: ActionPlan, follow_up: float = FOLLOW_UP_SECONDS
) -> Outcome:
    """Send the signal if the session is still the one captured; then watch what happens."""
    refused = await send_signal(conn, plan)
    if refused is not None:
        return refused
    return await watch_signal(lambda: signal_done(conn, plan), plan, follow_up)


async def signal_group(
    conn: Connection, plans: Sequence[ActionPlan], follow_up: float = FOLLOW_UP_SECONDS
) -> list[Outcome]:
    """Signal each session if it is still the one captured (each by its own guarded
    statement, ``plan_session``), then watch them all for ``follow_up`` seconds; one
    outcome per plan, in order. A failure stops the signals not yet sent."""
    outcomes: dict[int, Outcome] = {}
    sent: list[int] = []
    for index, plan in enumerate(plans):
        try:
            refused = await send_signal(conn, plan)
        except psycopg.Error as exc:
            failed = Outcome(False, f"not signalled: {pg.first_line(exc)}")
            for rest in range(index, len(plans)):
                outcomes[rest] = failed
            break
        if refused is None:
            sent.append(index)
        else:
            outcomes[index] = refused
    pending = list(sent)
    deadline = time.monotonic() + follow_up
    with contextlib.suppress(psycopg.Error):
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            pending = [i for i in pending if not await signal_done(conn, plans[i])]
    for index in sent:
        outcomes[index] = signalled(plans[index], done=index not in pending, follow_up=follow_up)
    return [outcomes[index] for index in range(len(plans))]


async def current_identity(conn: Connection, oid: int) -> tuple[str, str, str] | None:
    """A relation's schema, name and owner now; None when it is gone."""
    cur = await conn.execute(sql.RELATION_IDENTITY.sql(conn.info.server_version), {"oid": oid})
    row = await cur.fetchone()
    return (row["schema"], row["name"], row["owner"]) if row else None


async def lock_holders(
    conn: Connection, oid: int, conflicts: tuple[str, ...], own_pids: frozenset[int]
) -> str:
    """Who holds a lock on relation ``oid`` that conflicts, or an old snapshot, in words."""
    cur = await conn.execute(
        sql.LOCK_HOLDERS.sql(conn.info.server_version),
        {"oid": oid, "conflicts": list(conflicts), "own_pids": sorted(own_pids)},
    )
    rows = await cur.fetchall()
    if not rows:
        return "nobody any more"
    return "; ".join(
        f"pid {r['pid']} ({r['mode']}, {r['usename'] or '?'}, "
        f"{r['application_name'] or 'no application'}, {r['state'] or 'no state'})"
        for r in rows[:5]
    )


def _reindexes_concurrently(plan: ActionPlan) -> bool:
    return plan.action == "reindex" and "CONCURRENTLY" in plan.sql_text


async def run_maintenance(
    conn: Connection, plan: ActionPlan, lock_timeout: float, own_pids: frozenset[int] = frozenset()
) -> Outcome:
    """Run a utility statement on the action connection, bounded by ``lock_timeout``."""
    target = plan.target
    assert isinstance(target, RelationTarget)
    identity = await current_identity(conn, target.oid)
    if identity is None or identity[:2] != (target.schema, target.name):
        return Outcome(
            False, f"nothing done: {target.qualified} was dropped or renamed since it was selected"
        )
    version = conn.info.server_version
    if plan.action == "drop_invalid_index":
        cur = await conn.execute(
            sql.LEFTOVER_STILL_INVALID.sql(version),
            {"oid": target.oid, "schema": target.schema, "name": target.name},
        )
        row = await cur.fetchone()
        if not (row and row["still"]):
            return Outcome(
                False,
                f"nothing done: {target.qualified} is valid now, or an index is being built "
                "on its table, or another session uses it",
            )
    before: dict[str, Any] | None = None
    if _reindexes_concurrently(plan):
        cur = await conn.execute(
            sql.REINDEX_BEFORE.sql(version), {"table_oid": target.table_oid or target.oid}
        )
        before = await cur.fetchone()
    await conn.execute(
        "SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout * 1000)}ms",)
    )
    started = time.monotonic()
    try:
        await conn.execute(plan.statement)
    except psycopg.errors.LockNotAvailable:
        holders = await lock_holders(conn, target.table_oid or target.oid, plan.conflicts, own_pids)
        outcome = Outcome(
            False,
            f"gave up: no lock on {target.qualified} within {lock_timeout:g} s; held by {holders}",
        )
        return await _with_leftovers(conn, target, before, outcome)
    except psycopg.errors.QueryCanceled:
        return await _with_leftovers(conn, target, before, Outcome(False, "cancelled"))
    except psycopg.errors.InsufficientPrivilege as exc:
        return Outcome(False, f"the server refused: {pg.first_line(exc)}")
    except psycopg.Error as exc:
        failed = Outcome(False, f"failed: {pg.first_line(exc)}")
        return await _with_leftovers(conn, target, before, failed)
    return Outcome(True, f"done in {time.monotonic() - started:.1f} s: {plan.sql_text}")


async def _with_leftovers(
    conn: Connection, target: RelationTarget, before: dict[str, Any] | None, outcome: Outcome
) -> Outcome:
    """After a failed REINDEX CONCURRENTLY, find the invalid indexes it left behind: only
    its own (see ``sql.REINDEX_LEFTOVERS``), never an index another session builds."""
    if before is None or conn.broken:
        return outcome
    cur = await conn.execute(
        sql.REINDEX_LEFTOVERS.sql(conn.info.server_version),
        {
            "tables": before["tables"],
            "before": before["indexes"],
            "xid_before": before["xid"],
        },
    )
    rows = await cur.fetchall()
    if not rows:
        return outcome
    leftovers = tuple(
        RelationTarget(
            oid=row["oid"],
            schema=row["schema"],
            name=row["name"],
            kind="index",
            table_oid=row["table_oid"],
            table_name=target.table_name or target.qualified,
            database=target.database,
            owner=target.owner,
        )
        for row in rows
    )
    names = ", ".join(leftover.qualified for leftover in leftovers)
    what = "index" if len(leftovers) == 1 else "indexes"
    message = (
        f"{outcome.message}; it left the invalid {what} {names} behind: remove "
        f"{'it' if len(leftovers) == 1 else 'them'} with DROP INDEX CONCURRENTLY (offered next)"
    )
    return Outcome(False, message, leftovers=leftovers)


# -- the action log ----------------------------------------------------------------------------


def log_action(
    server: str, role: str, plan: ActionPlan, outcome: Outcome | None, note: str = ""
) -> None:
    """Append one JSON line to the action log (0600, never a password)."""
    _log(
        server,
        role,
        plan.action,
        plan.sql_text,
        asdict(plan.target),
        "attempted" if outcome is None else ("ok" if outcome.ok else "failed"),
        note or (outcome.message if outcome else ""),
    )


def log_group_target(
    server: str, role: str, action: SessionAction, target: GroupTarget, outcome: Outcome | None
) -> None:
    """The action log's line for one session of an action on many: signalled (``ok``),
    ``gone`` before its signal, ``refused`` (not signalled, and why) or ``failed``."""
    if target.plan is None or outcome is None:
        backend = target.backend
        fields = {f.name: getattr(backend, f.name) for f in dataclass_fields(SessionTarget)}
        shown = f"{action} pid {backend.pid}: not signalled"
        _log(server, role, action, shown, fields, "refused", target.refusal)
        return
    word = "ok" if outcome.ok else ("gone" if outcome.gone else "failed")
    plan = target.plan
    _log(server, role, action, plan.sql_text, asdict(plan.target), word, outcome.message)


def _log(
    server: str,
    role: str,
    action: str,
    shown: str,
    target: dict[str, Any],
    outcome: str,
    message: str,
) -> None:
    record = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "server": server,
        "role": role,
        "action": action,
        "sql": shown,
        "target": {k: _jsonable(v) for k, v in target.items() if k != "query"},
        "outcome": outcome,
        "message": message,
    }
    append_private(action_log_path(), json.dumps(record, ensure_ascii=True))


def action_log_path() -> Any:
    return log_dir() / "actions.log"


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class ActionConnectionLostError(Exception):
    """The action connection is gone and cannot be opened again now; ``str()`` says why."""


class ActionRunner:
    """Owns the action connection and runs one action at a time.

    The connection is opened at start-up, while the server has free slots, and checked
    now and then (``keep_alive``): an idle-session timeout, another DBA's clean-up or a
    network blip can end it while pgtop sits idle, and it is opened again at once, while
    slots may still be free.
    """

    def __init__(
        self,
        conninfo: str,
        password: str | None,
        lock_timeout: float,
        conn: Connection | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.password = password
        self.lock_timeout = lock_timeout
        self._conn = conn
        self._lock = asyncio.Lock()
        self.running: ActionPlan | None = None
        """The action in progress, if any."""
        self.lost: str = ""
        """Why the connection is gone and could not be opened again ("" while it is fine)."""

    @property
    def pid(self) -> int | None:
        """The action connection's backend, one of pgtop's own."""
        conn = self._conn
        return conn.info.backend_pid if conn is not None and not conn.closed else None

    async def connect(self) -> Connection:
        """Open the action connection if it is not open (at start-up, and after a loss)."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._drop()
            self._conn = conn = await open_action_connection(self.conninfo, self.password)
        self.lost = ""
        return conn

    async def _usable(self) -> Connection:
        """The connection, checked alive (and opened again if it is not).

        Raises:
            ActionConnectionLostError: it is gone and cannot be opened again now.
        """
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            try:
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=CHECK_SECONDS)
            except (psycopg.Error, asyncio.TimeoutError):
                self._drop()
        try:
            return await self.connect()
        except pg.ConnectError as exc:
            self.lost = str(exc)
            raise ActionConnectionLostError(self.lost) from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    async def keep_alive(self) -> str:
        """Check the connection while no action runs; "" when it is usable, else why not."""
        if self._lock.locked():
            return self.lost
        async with self._lock:
            try:
                await self._usable()
            except ActionConnectionLostError as exc:
                return str(exc)
        return ""

    async def run(self, plan: ActionPlan, own_pids: frozenset[int] = frozenset()) -> Outcome:
        """Run ``plan`` on the action connection.

        Raises:
            ActionConnectionLostError: the connection is gone and cannot be opened again; the
                caller may signal a session another way.
        """
        async with self._lock:
            conn = await self._usable()
            self.running = plan
            try:
                if isinstance(plan.target, SessionTarget):
                    return await signal_session(conn, plan)
                if isinstance(plan.target, SlotTarget):
                    return await drop_slot(conn, plan)
                if isinstance(plan.target, CheckpointTarget):
                    return await run_checkpoint(conn, plan)
                return await run_maintenance(conn, plan, self.lock_timeout, own_pids)
            except psycopg.OperationalError as exc:
                return Outcome(False, f"the action connection failed: {pg.first_line(exc)}")
            finally:
                self.running = None

    async def run_group(self, plans: Sequence[ActionPlan]) -> list[Outcome]:
        """Signal many sessions on the action connection (``signal_group``).

        Raises:
            ActionConnectionLostError: as ``run``.
        """
        async with self._lock:
            conn = await self._usable()
            self.running = plans[0] if plans else None
            try:
                return await signal_group(conn, plans)
            finally:
                self.running = None

    async def cancel_running(self) -> bool:
        """Ask the server to cancel the action in progress; True if one was running."""
        conn = self._conn
        if conn is None or self.running is None:
            return False
        await conn.cancel_safe(timeout=5)
        return True

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), timeout=2)
            except (asyncio.TimeoutError, psycopg.Error):
                conn.pgconn.finish()


async def action_progress(conn: Connection, pid: int) -> str:
    """The server's progress report of the action connection's statement, in words."""
    cur = await conn.execute(sql.ACTION_PROGRESS.sql(conn.info.server_version), {"pid": pid})
    row = await cur.fetchone()
    if row is None:
        return ""
    percent = "" if row["percent"] is None else f" {row['percent']:.0f}%"
    return f"{row['phase']}{percent}"


async def target_roles(
    conn: Connection, roles: Iterable[str | None]
) -> dict[str | None, TargetRole | None]:
    """``target_role`` of each role."""
    return {role: await target_role(conn, role) for role in set(roles)}


async def target_role(conn: Connection, role: str | None) -> TargetRole | None:
    """How the server will judge a signal to a session of ``role``; None without one."""
    if role is None:
        return None
    cur = await conn.execute(sql.TARGET_ROLE.sql(conn.info.server_version), {"role": role})
    row = await cur.fetchone()
    return TargetRole(**row) if row else None
