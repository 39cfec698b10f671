"""Who blocks whom: the blocking forest built from ``pg_blocking_pids()``.

The edges come from the Activity snapshot's ``blocked_by``, which the ACTIVITY query fills
with ``pg_blocking_pids()`` for backends waiting on a heavyweight lock, and for them only.
That function knows what the lock manager knows: holders of a conflicting lock, and waiters
ahead in the queue that want a conflicting one (the SELECTs stuck behind an ``ALTER TABLE``
that itself waits). Joining ``pg_locks`` to itself on the lock type, as many runbooks do,
pairs sessions that do not block each other at all; nothing here does that.

This module only adds what the edges do not say: the lock each waiter asked for
(``LocksCollector``, one read of ``pg_locks`` restricted to the waiters, and only while
someone waits). Everything else is pure functions, so the tree is tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgtop import sql
from pgtop.collectors.base import CollectorContext, Connection
from pgtop.model import ActivitySnapshot, Backend
from pgtop.text import name_text, one_line

MAX_NODES = 5000
"""Rows of the tree at most. Many sessions queued on one hot row block each other pairwise,
so the edges grow with the square of the waiters; the tree stops here and says so."""

PREPARED_PID = 0
"""``pg_blocking_pids()`` reports a prepared transaction holding the lock as pid 0."""

TREE_BRANCH = "├─ "
TREE_LAST = "└─ "
TREE_PIPE = "│  "
TREE_SPACE = "   "
MAX_DRAWN_DEPTH = 4
"""Deeper nodes draw only their last levels of tree lines, after a "…"."""


@dataclass(frozen=True, slots=True)
class LockWait:
    """The lock one backend has requested and not been granted: a row of ``pg_locks``."""

    pid: int
    locktype: str
    mode: str
    relation: str | None
    """Relation name (``regclass`` output), ``oid N`` in another database, or None."""
    page: int | None
    tuple: int | None
    transactionid: str | None
    virtualxid: str | None
    classid: int | None
    objid: int | None
    objsubid: int | None
    waitstart: datetime | None
    """When the wait began (PostgreSQL 14+; briefly None right after it begins)."""

    @property
    def target(self) -> str:
        """What is locked, in words: ``accounts``, ``xid 7781``, ``advisory 42``..."""
        return lock_target(self)

    @property
    def label(self) -> str:
        """Mode and target, e.g. ``ShareLock xid 7781``."""
        return f"{self.mode} {self.target}".strip()


def advisory_key(classid: int | None, objid: int | None, objsubid: int | None) -> str:
    """The key of an advisory lock as the application passed it.

    ``pg_advisory_lock(bigint)`` stores the key's high and low halves in classid and objid
    (objsubid 1); ``pg_advisory_lock(int, int)`` stores the two keys (objsubid 2). Both
    halves arrive as unsigned oids.

    >>> advisory_key(0, 42, 1), advisory_key(256, 7, 1), advisory_key(4294967295, 4294967291, 1)
    ('42', '1099511627783', '-5')
    >>> advisory_key(1, 4294967295, 2)
    '1,-1'
    """
    if classid is None or objid is None:
        return ""
    if objsubid == 2:
        return f"{_int32(classid)},{_int32(objid)}"
    key = (classid << 32) | objid
    if key >= 1 << 63:
        key -= 1 << 64
    return str(key)


def _int32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def lock_target(wait: LockWait) -> str:
    """What a lock is on, in a few words; server strings kept on one line and visible.

    >>> w = LockWait(1, "tuple", "ExclusiveLock", "accounts", 0, 3, None, None,
    ...              None, None, None, None)
    >>> lock_target(w)
    'row (0,3) of accounts'
    """
    kind = wait.locktype
    if kind == "virtualxid":
        return f"vxid {one_line(wait.virtualxid, 40)}"
    if kind == "advisory":
        return f"advisory {advisory_key(wait.classid, wait.objid, wait.objsubid)}"
    template = _LOCK_TARGETS.get(kind)
    if template is None:
        return one_line(kind, 40)
    return template.format(
        relation=name_text(wait.relation, 200) or "?",
        page=wait.page,
        tuple=wait.tuple,
        xid=wait.transactionid,
        object=f"{wait.classid}/{wait.objid}" + (f".{wait.objsubid}" if wait.objsubid else ""),
    )


_LOCK_TARGETS = {
    "relation": "{relation}",
    "extend": "extension of {relation}",
    "page": "page {page} of {relation}",
    "tuple": "row ({page},{tuple}) of {relation}",
    "transactionid": "xid {xid}",
    "spectoken": "speculative insertion of xid {xid}",
    "object": "object {object}",
}
"""What a lock of each type is on (``lock_target``); server strings are filled in visible."""


def lock_wait_from_row(row: Mapping[str, Any]) -> LockWait:
    """A LockWait from one row of the LOCK_WAITS query."""
    return LockWait(**row)


@dataclass(frozen=True, slots=True)
class LocksData:
    """What the Locks tab's collector returns: the Activity snapshot it read the waits for,
    and the ungranted lock of each waiter that still waited when pg_locks was read."""

    activity: ActivitySnapshot
    waits: tuple[LockWait, ...]

    def waits_by_pid(self) -> dict[int, LockWait]:
        return {wait.pid: wait for wait in self.waits}


class LocksCollector:
    """Reads the lock each waiting backend asked for; reads nothing when no one waits.

    Runs after every Activity poll while the Locks tab is shown (its tree is built from that
    poll's ``blocked_by``, so it can only be as fresh as Activity).
    """

    interval: float = 0.0

    def __init__(self, context: CollectorContext) -> None:
        self._sql = sql.LOCK_WAITS.sql(context.capabilities.server_version_num)

    async def close(self) -> None:
        return None

    async def collect(
        self, conn: Connection, activity: ActivitySnapshot, needs: object = None, *, due: bool
    ) -> LocksData:
        pids = sorted({b.pid for b in activity.backends if b.waiting_on_lock})
        if not pids:
            return LocksData(activity, ())
        cur = await conn.execute(self._sql, {"pids": pids})
        seen: dict[int, LockWait] = {}
        for row in await cur.fetchall():
            wait = lock_wait_from_row(row)
            seen.setdefault(wait.pid, wait)
        return LocksData(activity, tuple(seen.values()))


# -- the forest ------------------------------------------------------------------------------


def blocking_edges(backends: Iterable[Backend]) -> tuple[tuple[int, int], ...]:
    """Every (blocked pid, blocking pid) pair that ``pg_blocking_pids()`` reported, once,
    in order of blocked pid then blocking pid.

    Duplicates (a parallel query's workers are reported as their leader) count once. A
    pid reported as blocking itself (members of one parallel group on a relation
    extension lock) is no blocking between sessions and is left out.
    """
    # Thousands of sessions, a few blocked: only those are sorted and looked into.
    blocked = sorted((backend for backend in backends if backend.blocked_by), key=_pid)
    return tuple(
        (backend.pid, blocker)
        for backend in blocked
        for blocker in sorted(set(backend.blocked_by))
        if blocker != backend.pid
    )


@dataclass(frozen=True, slots=True)
class Related:
    """The sessions one session waits for and blocks, from ``pg_blocking_pids()``."""

    waits_for: tuple[int, ...]
    """Sessions that block it themselves."""
    waits_behind: tuple[tuple[int, int], ...]
    """Sessions that block those, and so on up the chain: (pid, the pid it blocks)."""
    blocks: tuple[int, ...]
    """Sessions it blocks itself."""
    blocks_through: tuple[tuple[int, int], ...]
    """Sessions it blocks through others: (pid, the pid that blocks it)."""

    @property
    def blocks_total(self) -> int:
        return len(self.blocks) + len(self.blocks_through)


def related(backends: Iterable[Backend], pid: int) -> Related:
    """Whom ``pid`` waits for and whom it blocks, directly and through others, each once
    (the nearest first; a session in a cycle with ``pid`` counts once, as direct).

    >>> from dataclasses import replace
    >>> from pgtop.model import Backend
    >>> b = Backend(*([None] * 19), (), "")  # type: ignore[arg-type]
    >>> chain = [replace(b, pid=1), replace(b, pid=2, blocked_by=(1,)),
    ...          replace(b, pid=3, blocked_by=(2,)), replace(b, pid=4, blocked_by=(3,))]
    >>> related(chain, 2)
    Related(waits_for=(1,), waits_behind=(), blocks=(3,), blocks_through=((4, 3),))
    >>> related(chain, 1).blocks_total, related(chain, 4).waits_behind
    (3, ((2, 3), (1, 2)))
    """
    blockers: dict[int, tuple[int, ...]] = {}
    children: dict[int, list[int]] = {}
    for blocked, blocker in blocking_edges(backends):
        blockers.setdefault(blocked, ())
        blockers[blocked] += (blocker,)
        children.setdefault(blocker, []).append(blocked)

    def walk(
        start: Iterable[int], step: Mapping[int, Sequence[int]]
    ) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        direct = tuple(p for p in start if p != pid)
        seen = {pid, *direct}
        further: list[tuple[int, int]] = []
        queue = list(direct)
        while queue:
            current = queue.pop(0)
            for other in step.get(current, ()):
                if other not in seen:
                    seen.add(other)
                    further.append((other, current))
                    queue.append(other)
        return direct, tuple(further)

    waits_for, behind = walk(blockers.get(pid, ()), blockers)
    blocks, through = walk(children.get(pid, ()), children)
    return Related(waits_for, behind, blocks, through)


def _pid(backend: Backend) -> int:
    return backend.pid


@dataclass(frozen=True, slots=True)
class Node:
    """One row of the blocking tree: a session at one place in the forest."""

    path: tuple[int, ...]
    """Pids from the root down to this session: the row's key. A session under two blockers
    has two paths."""
    prefix: str
    """Tree lines to draw before the pid (``"│  └─ "``); empty for a root."""
    backend: Backend | None
    """None when the session is not in the snapshot: a prepared transaction (pid 0), or a
    session that ended between two reads."""
    wait: LockWait | None
    """The lock this session waits for, when it waits and the details were read."""
    blocked_by: tuple[int, ...]
    """Sessions blocking this one, each once."""
    blocks_direct: int
    """Sessions this one blocks itself."""
    blocks_total: int
    """Sessions this one blocks directly or through others, each counted once."""
    repeat: bool = False
    """Its sessions below are listed where it first appears, above: not again here."""
    cycle: bool = False
    """It already appears higher on its own path: a deadlock the server has not broken yet."""

    @property
    def pid(self) -> int:
        return self.path[-1]

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    @property
    def is_root(self) -> bool:
        return len(self.path) == 1


@dataclass(frozen=True, slots=True)
class Forest:
    """The blocking trees of one snapshot, flattened in display order."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int], ...]
    """Every (blocked, blocking) pair, each once, as pg_blocking_pids() reported them."""
    roots: tuple[int, ...]
    """Pids at the top of the trees, most blocking first."""
    waiting: tuple[int, ...]
    """Pids waiting on a heavyweight lock (whether or not a blocker was reported)."""
    cut: bool = False
    """The tree was stopped at ``MAX_NODES`` rows."""

    def first_index(self) -> dict[int, int]:
        """Each pid's first row."""
        first: dict[int, int] = {}
        for index, node in enumerate(self.nodes):
            first.setdefault(node.pid, index)
        return first


def _strongly_connected(
    vertices: Sequence[int], children: Mapping[int, Sequence[int]]
) -> dict[int, int]:
    """Tarjan's algorithm, without recursion: vertex -> component number.

    Components are numbered in reverse topological order (a component's children come
    first), which is the order descendant sets are built in.
    """
    index_of: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    component: dict[int, int] = {}
    counter = 0
    found = 0
    for start in vertices:
        if start in index_of:
            continue
        work: list[tuple[int, int]] = [(start, 0)]
        while work:
            vertex, child_index = work.pop()
            if child_index == 0:
                index_of[vertex] = low[vertex] = counter
                counter += 1
                stack.append(vertex)
                on_stack.add(vertex)
            kids = children.get(vertex, ())
            descended = False
            while child_index < len(kids):
                child = kids[child_index]
                child_index += 1
                if child not in index_of:
                    work.append((vertex, child_index))
                    work.append((child, 0))
                    descended = True
                    break
                if child in on_stack:
                    low[vertex] = min(low[vertex], index_of[child])
            if descended:
                continue
            if low[vertex] == index_of[vertex]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = found
                    if member == vertex:
                        break
                found += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[vertex])
    return component


def blocked_totals(
    vertices: Sequence[int], children: Mapping[int, Sequence[int]]
) -> dict[int, int]:
    """How many distinct sessions each one blocks, directly or through others.

    Descendant sets are bit sets built once per strongly connected component, so a hot row
    with hundreds of sessions queued behind each other costs milliseconds, not a walk per
    session. In a cycle every member blocks every other member.

    >>> blocked_totals([1, 2, 3, 4], {1: [2, 3], 2: [3, 4], 3: [4]})
    {1: 3, 2: 2, 3: 1, 4: 0}
    >>> blocked_totals([1, 2, 3], {1: [2], 2: [1], 3: [1]})
    {1: 1, 2: 1, 3: 2}
    """
    component = _strongly_connected(vertices, children)
    bit = {vertex: 1 << position for position, vertex in enumerate(vertices)}
    count = max(component.values(), default=-1) + 1
    members: list[int] = [0] * count
    for vertex in vertices:
        members[component[vertex]] |= bit[vertex]
    reach: list[int] = [0] * count
    by_component: list[list[int]] = [[] for _ in range(count)]
    for vertex in vertices:
        by_component[component[vertex]].append(vertex)
    for number in range(count):  # children's components are numbered first
        below = 0
        for vertex in by_component[number]:
            for child in children.get(vertex, ()):
                other = component[child]
                if other != number:
                    below |= members[other] | reach[other]
        reach[number] = below
    totals: dict[int, int] = {}
    for vertex in vertices:
        number = component[vertex]
        descendants = reach[number] | (members[number] & ~bit[vertex])
        totals[vertex] = descendants.bit_count()
    return totals


def _tree_prefix(last_flags: Sequence[bool]) -> str:
    """Tree lines for a node whose ancestors below the root were last (True) or not.

    >>> _tree_prefix([]), _tree_prefix([False]), _tree_prefix([False, True])
    ('', '├─ ', '│  └─ ')
    """
    if not last_flags:
        return ""
    drawn = list(last_flags)
    head = ""
    if len(drawn) > MAX_DRAWN_DEPTH:
        head = f"…{len(drawn)} "
        drawn = drawn[-MAX_DRAWN_DEPTH:]
    lines = [TREE_SPACE if last else TREE_PIPE for last in drawn[:-1]]
    lines.append(TREE_LAST if drawn[-1] else TREE_BRANCH)
    return head + "".join(lines)


def build_forest(
    activity: ActivitySnapshot,
    waits: Mapping[int, LockWait] | None = None,
    *,
    max_nodes: int = MAX_NODES,
) -> Forest:
    """The blocking forest of a snapshot, in display order.

    Roots are sessions that block others and wait for no one; they come most blocking
    first (sessions blocked in total, then directly), then oldest transaction first. Under
    each session come the sessions it blocks, in the same order. A session blocked by
    several others appears under each of them; its own sessions below are listed once,
    where it first appears. If sessions block each other in a circle (a deadlock not yet
    detected), the circle is entered at its most blocking member and the session reached
    again is marked instead of followed.

    Args:
        activity: the snapshot whose ``blocked_by`` gives the edges.
        waits: the ungranted lock of each waiting pid, where known.
        max_nodes: rows at most.
    """
    waits = waits or {}
    backends = {backend.pid: backend for backend in activity.backends}
    edges = blocking_edges(activity.backends)
    children: dict[int, list[int]] = {}
    blockers: dict[int, list[int]] = {}
    for blocked, blocking in edges:
        children.setdefault(blocking, []).append(blocked)
        blockers.setdefault(blocked, []).append(blocking)
    vertices = sorted(set(children) | set(blockers))
    totals = blocked_totals(vertices, children)

    def rank(pid: int) -> tuple[int, int, float, int]:
        backend = backends.get(pid)
        start = backend.xact_start if backend is not None else None
        age = (activity.collected_at - start).total_seconds() if start is not None else -1.0
        return (-totals[pid], -len(children.get(pid, ())), -age, pid)

    ranks = {pid: rank(pid) for pid in vertices}
    order = ranks.__getitem__
    for kids in children.values():
        kids.sort(key=order)
    roots = sorted((pid for pid in children if pid not in blockers), key=order)

    # Details read after the snapshot may be stale for one refresh: a session that no
    # longer waits shows no lock.
    waiting_now = {b.pid for b in activity.backends if b.waiting_on_lock}
    nodes: list[Node] = []
    expanded: set[int] = set()
    cut = False

    def visit(path: tuple[int, ...], flags: tuple[bool, ...]) -> bool:
        """Add the row of ``path``; True if the sessions it blocks go below it."""
        pid = path[-1]
        kids = children.get(pid, ())
        cycle = pid in path[:-1]
        repeat = not cycle and bool(kids) and pid in expanded
        nodes.append(
            Node(
                path=path,
                prefix=_tree_prefix(flags),
                backend=backends.get(pid),
                wait=waits.get(pid) if pid in waiting_now else None,
                blocked_by=tuple(blockers.get(pid, ())),
                blocks_direct=len(kids),
                blocks_total=totals[pid],
                repeat=repeat,
                cycle=cycle,
            )
        )
        if cycle or repeat or not kids:
            return False
        expanded.add(pid)
        return True

    def walk(root: int) -> bool:
        """Add the tree under ``root``; False once the row limit is reached.

        Depth first without recursion (a queue on a hot row makes chains hundreds deep),
        and a child's path is made only when the child is reached: the limit bounds the
        work, however many edges there are.
        """
        if len(nodes) >= max_nodes:
            return False
        if not visit((root,), ()):
            return True
        # Frames: (path, tree-line flags, index of the next child).
        stack: list[tuple[tuple[int, ...], tuple[bool, ...], int]] = [((root,), (), 0)]
        while stack:
            path, flags, position = stack.pop()
            kids = children[path[-1]]
            if position >= len(kids):
                continue
            stack.append((path, flags, position + 1))
            if len(nodes) >= max_nodes:
                return False
            child_path = (*path, kids[position])
            child_flags = (*flags, position == len(kids) - 1)
            if visit(child_path, child_flags):
                stack.append((child_path, child_flags, 0))
        return True

    all_roots: list[int] = []
    for root in roots:
        all_roots.append(root)
        if not walk(root):
            cut = True
            break
    # Sessions in a circle have no root above them: enter each circle once.
    while not cut:
        left = [pid for pid in vertices if pid in children and pid not in expanded]
        if not left:
            break
        root = min(left, key=order)
        all_roots.append(root)
        if not walk(root):
            cut = True
    return Forest(tuple(nodes), edges, tuple(all_roots), tuple(sorted(waiting_now)), cut)


def wait_age(
    backend: Backend | None, wait: LockWait | None, now: datetime
) -> tuple[float | None, bool]:
    """Seconds a session has waited for its lock, and whether that is exact.

    Exact from ``pg_locks.waitstart`` (PostgreSQL 14+). Without it, the age of the running
    statement, an upper bound: the wait began during it.
    """
    if wait is not None and wait.waitstart is not None:
        return max(0.0, (now - wait.waitstart).total_seconds()), True
    if backend is not None and backend.waiting_on_lock and backend.query_start is not None:
        return max(0.0, (now - backend.query_start).total_seconds()), False
    return None, False


def longest_wait(
    activity: ActivitySnapshot, waits: Mapping[int, LockWait]
) -> tuple[int, float, bool] | None:
    """The session waiting longest on a lock: (pid, seconds, exact), or None."""
    best: tuple[int, float, bool] | None = None
    now = activity.collected_at
    for backend in activity.backends:
        if not backend.waiting_on_lock:
            continue
        seconds, exact = wait_age(backend, waits.get(backend.pid), now)
        if seconds is not None and (best is None or seconds > best[1]):
            best = (backend.pid, seconds, exact)
    return best
