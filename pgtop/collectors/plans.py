"""Plans of statements written by other roles, made without ever running their code.

A statement's text in pg_stat_statements was written by whoever ran it, and planning it can
run code: the planner folds IMMUTABLE functions with constant arguments (and STABLE ones
when estimating), and loading a table folds its index expressions and predicates. So a text
is planned only after pgtop has seen everything it reaches, and only as the role that ran
it, inside a SECURITY DEFINER function (see ``sql.EXPLAIN_REACH`` and
``PLAN_CONTAINER``).
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql as pgsql

from pgtop import sql
from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
from pgtop.collectors.base import Connection
from pgtop.collectors.statements import Statement, _fold
from pgtop.model import Backend
from pgtop.text import one_line

EXPLAIN_STATEMENT_TIMEOUT_MS = 3000
EXPLAIN_LOCK_TIMEOUT_MS = 200


@dataclass(frozen=True, slots=True)
class QueryPlan:
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
        return _elsewhere(statement.database or "a dropped database", connected_database, "ran")
    if statement.user is None:
        return "the role that ran it was dropped, and pgtop plans a statement only as its role"
    return unexplainable(text)


def _elsewhere(database: str, connected_database: str, verb: str = "runs") -> str:
    return (
        f"it {verb} in database {one_line(database, 64)!r}; pgtop is connected to "
        f"{one_line(connected_database, 64)!r} and can plan only that database's statements"
    )


def session_plan_obstacle(backend: Backend, query: str | None, connected_database: str) -> str:
    """Why pgtop will not plan a session's query (its whole text: ``query``) here; "" when
    it can try."""
    if backend.query_hidden:
        return "its query is hidden from this role (it needs pg_read_all_stats)"
    if query is None:
        return "its query is still loading; try again"
    if len(query) > WHOLE_TEXT_LIMIT:
        return f"the text is longer than {WHOLE_TEXT_LIMIT:,} characters and was cut"
    if backend.user is None:
        return "its role is not known, and pgtop plans a statement only as the role that runs it"
    if backend.database != connected_database:
        return _elsewhere(backend.database or "no database", connected_database)
    return unexplainable(query)


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

    def _sql(self, query: sql.Query) -> str:
        return query.sql(self.server_version)

    async def _row(self, query: sql.Query, params: Mapping[str, Any]) -> dict[str, Any]:
        cur = await self.conn.execute(self._sql(query), params, prepare=False)
        row = await cur.fetchone()
        assert row is not None
        return row

    async def _search_path(self, path: str) -> None:
        await self._row(sql.EXPLAIN_SEARCH_PATH, {"search_path": path})

    async def _send(self, statement: bytes) -> None:
        """A statement holding the statement's text: through the extended protocol, which
        refuses more than one statement (an appended ``; DROP ...`` never runs)."""
        await self.conn.execute(statement, binary=True, prepare=False)

    async def plan(self, text: bytes) -> QueryPlan:
        """Every step, in one transaction that is always rolled back."""
        async with self.conn.transaction(force_rollback=True):
            problem = await self._act_as_role()
            if problem:
                return QueryPlan((), problem)
            parameters = await self._prepare(text)
            problem = await self._check(text, parameters)
            if problem:
                return QueryPlan((), problem)
            lines = await self._explain(len(parameters))
        return QueryPlan(lines, role=self.role, parameters=len(parameters))

    async def _act_as_role(self) -> str:
        """Bound the transaction, check what can be checked as pgtop's role, then act as the
        statement's role; why not, if it cannot."""
        settings = {
            "statement_timeout": str(EXPLAIN_STATEMENT_TIMEOUT_MS),
            "lock_timeout": str(EXPLAIN_LOCK_TIMEOUT_MS),
        }
        setup = await self._row(sql.EXPLAIN_SETUP, settings)
        if setup["standby"]:
            return STANDBY
        check = await self._row(sql.EXPLAIN_PRECHECK, {"role": self.role})
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
            statement = pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(self.role))
            await self.conn.execute(statement, prepare=False)
        return ""

    async def _prepare(self, text: bytes) -> list[pgsql.Identifier]:
        """PREPARE the text: parse analysis and rewriting only (no function runs, nothing is
        planned); the types of its parameters."""
        self.stage = "prepare"
        await self._search_path(sql.STATEMENT_SEARCH_PATH)
        prepare = self._sql(sql.PLAN_PREPARE).format(number=self.number)
        await self._send(prepare.encode() + text)
        self.prepared = True
        await self._search_path(sql.SAFE_SEARCH_PATH)
        cur = await self.conn.execute(
            self._sql(sql.EXPLAIN_PARAMETERS),
            {"name": f"pgtop_planned_{self.number}"},
            prepare=False,
        )
        rows = await cur.fetchall()
        return [pgsql.Identifier(r["pgtop_type_schema"], r["pgtop_type_name"]) for r in rows]

    async def _check(self, text: bytes, parameters: list[pgsql.Identifier]) -> str:
        """Why planning could run code that is neither a superuser's nor pgtop's role's;
        "" when it could not."""
        # The same text as the body of a function: PostgreSQL records what it reaches.
        self.stage = "reach"
        await self._search_path(sql.STATEMENT_SEARCH_PATH)
        head, tail = self._sql(sql.PLAN_REACH_FUNCTION).split("{statement}")
        signature = pgsql.SQL(", ").join(parameters).as_string(self.conn)
        await self._send(head.format(parameters=signature).encode() + text + tail.encode())
        await self._search_path(sql.SAFE_SEARCH_PATH)
        self.stage = "walk"
        limit = sql.REACH_LIMIT
        walk = await self._row(sql.EXPLAIN_REACH, {"function": "pgtop_reach", "limit": limit + 1})
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
        await self.conn.execute(self._sql(sql.PLAN_CONTAINER), prepare=False)
        self.stage = "plan"
        await self._row(sql.EXPLAIN_PLAN_SETTINGS, {})
        nulls = f"({', '.join(['NULL'] * parameters)})" if parameters else ""
        execute = self._sql(sql.PLAN_EXECUTE).format(number=self.number, parameters=nulls)
        cur = await self.conn.execute(
            self._sql(sql.PLAN_EXPLAIN), {"statement": execute}, prepare=False
        )
        return tuple(str(row["pgtop_explain"]) for row in await cur.fetchall())

    async def deallocate(self) -> None:
        """Drop the prepared statement (PREPARE is not undone by a rollback)."""
        conn = self.conn
        idle = psycopg.pq.TransactionStatus.IDLE
        if not self.prepared or conn.closed or conn.info.transaction_status != idle:
            return
        deallocate = self._sql(sql.PLAN_DEALLOCATE).format(number=self.number)
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
                    f"{sql.STATEMENT_SEARCH_PATH}): {line}"
                )
            return f"PREPARE failed: {line}"
        if stage in ("reach", "walk"):
            return f"pgtop could not check what it reaches: {line}"
        if stage == "contain":
            return f"pgtop could not create the function it plans in, as role {who}: {line}"
        if stage == "plan":
            return f"planning it as role {who} failed: {line}"
        return line


async def explain(conn: Connection, query_text: str, server_version: int, role: str) -> QueryPlan:
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
        return QueryPlan((), problem)
    if server_version < sql.PLANNING_MIN_VERSION:
        return QueryPlan((), BEFORE_14)
    try:
        text = query_text.encode(conn.info.encoding)
    except UnicodeEncodeError:
        encoding = conn.info.encoding
        return QueryPlan((), f"its text does not fit the connection's encoding {encoding}")
    planning = _Planning(conn, server_version, role)
    try:
        return await planning.plan(text)
    except psycopg.Error as exc:
        if conn.broken or conn.closed:
            raise
        return QueryPlan((), planning.problem(exc))
    finally:
        await planning.deallocate()


@dataclass(frozen=True, slots=True)
class StatementPlan:
    """A request for the plan of a statement's text, made as ``role`` (see ``explain``)."""

    text: str
    server_version: int
    role: str

    async def read(self, conn: Connection) -> QueryPlan:
        return await explain(conn, self.text, self.server_version, self.role)
