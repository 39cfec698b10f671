"""The blocking forest from pg_blocking_pids() edges: shape, order, counts, edge cases."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from pgtop.collectors.locks import (
    Forest,
    LocksData,
    LockWait,
    advisory_key,
    blocked_totals,
    blocking_edges,
    build_forest,
    lock_target,
    longest_wait,
    wait_age,
)
from pgtop.model import ActivitySnapshot, Backend, Capabilities, ServerCounters
from pgtop.panes.locks import IDLE_IN_TX_MARK, node_row
from pgtop.reports.locks import edge_rows

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
CAPS = Capabilities(
    server_version="15.18",
    server_version_num=150018,
    is_standby=False,
    user="postgres",
    database="postgres",
    is_superuser=True,
    read_all_stats=True,
    monitor=True,
    signal_backend=True,
    pgss_preloaded=None,
    pgss_version=None,
    max_connections=100,
    reserved_connections=3,
    started_at=NOW - timedelta(days=1),
)
BASE = Backend(
    pid=0,
    database="postgres",
    user="app",
    application_name="web",
    client_addr=None,
    client_hostname=None,
    client_port=None,
    backend_type="client backend",
    state="active",
    wait_event_type=None,
    wait_event=None,
    backend_start=NOW - timedelta(hours=1),
    xact_start=None,
    query_start=None,
    state_change=None,
    backend_xid=None,
    backend_xmin=None,
    leader_pid=None,
    query_id=None,
    blocked_by=(),
    query="SELECT 1",
)


def session(pid: int, *blocked_by: int, age: float = 10.0, **fields: Any) -> Backend:
    """A backend whose transaction began ``age`` seconds ago, waiting if blocked."""
    start = NOW - timedelta(seconds=age)
    values: dict[str, Any] = {
        "pid": pid,
        "blocked_by": tuple(blocked_by),
        "xact_start": start,
        "query_start": start,
        "state_change": start,
    }
    if blocked_by:
        values.update(wait_event_type="Lock", wait_event="transactionid")
    values.update(fields)
    return replace(BASE, **values)


def snapshot(*backends: Backend) -> ActivitySnapshot:
    return ActivitySnapshot(
        capabilities=CAPS,
        counters=ServerCounters(NOW, 0, 0, 0),
        backends=backends,
        own_pids=frozenset(),
    )


def lock(pid: int, **fields: Any) -> LockWait:
    values: dict[str, Any] = {
        "pid": pid,
        "locktype": "transactionid",
        "mode": "ShareLock",
        "relation": None,
        "page": None,
        "tuple": None,
        "transactionid": "7781",
        "virtualxid": None,
        "classid": None,
        "objid": None,
        "objsubid": None,
        "waitstart": None,
    }
    values.update(fields)
    return LockWait(**values)


def paths(forest: Forest) -> list[tuple[int, ...]]:
    return [node.path for node in forest.nodes]


def drawn(forest: Forest) -> list[str]:
    return [f"{node.prefix}{node.pid}" for node in forest.nodes]


def test_a_chain_is_one_tree_with_its_lines() -> None:
    forest = build_forest(snapshot(session(1), session(2, 1), session(3, 2), session(4)))
    assert paths(forest) == [(1,), (1, 2), (1, 2, 3)]
    assert drawn(forest) == ["1", "└─ 2", "   └─ 3"]
    assert forest.roots == (1,)
    assert forest.edges == ((2, 1), (3, 2))
    assert forest.waiting == (2, 3)
    root, middle, leaf = forest.nodes
    assert (root.blocks_direct, root.blocks_total) == (1, 2)
    assert (middle.blocks_direct, middle.blocks_total) == (1, 1)
    assert (leaf.blocks_direct, leaf.blocks_total) == (0, 0)
    assert root.is_root
    assert not middle.is_root
    assert middle.blocked_by == (1,)


def test_siblings_get_branch_and_pipe_lines() -> None:
    forest = build_forest(
        snapshot(session(1), session(2, 1), session(3, 1), session(4, 2), session(5, 4))
    )
    assert drawn(forest) == ["1", "├─ 2", "│  └─ 4", "│     └─ 5", "└─ 3"]


def test_a_session_behind_two_holders_appears_under_each_with_its_own_key() -> None:
    forest = build_forest(snapshot(session(10, age=50), session(11, age=20), session(12, 10, 11)))
    assert paths(forest) == [(10,), (10, 12), (11,), (11, 12)]
    assert len({node.path for node in forest.nodes}) == 4
    assert forest.edges == ((12, 10), (12, 11))
    assert [n.blocked_by for n in forest.nodes if n.pid == 12] == [(10, 11), (10, 11)]


def test_roots_by_sessions_blocked_in_total_then_directly_then_age() -> None:
    forest = build_forest(
        snapshot(
            # 1: young, blocks 3 in total through a chain.
            session(1, age=1),
            session(2, 1),
            session(3, 2),
            session(4, 3),
            # 5: old, blocks 2 directly (2 in total).
            session(5, age=500),
            session(6, 5),
            session(7, 5),
            # 8 and 9: block one each; 9 has the older transaction.
            session(8, age=30),
            session(10, 8),
            session(9, age=60),
            session(11, 9),
            # 12: blocks 3 in total, all directly: before 1 (3 in total, 1 directly).
            session(12, age=2),
            session(13, 12),
            session(14, 12),
            session(15, 12),
        )
    )
    assert forest.roots == (12, 1, 5, 9, 8)
    assert [n.path for n in forest.nodes if n.is_root] == [(12,), (1,), (5,), (9,), (8,)]


def test_a_repeated_subtree_is_listed_once() -> None:
    # 2 waits for both 1 and 5 and itself blocks 3: 3 is listed under the first 2 only.
    forest = build_forest(
        snapshot(session(1, age=100), session(5, age=50), session(2, 1, 5), session(3, 2))
    )
    assert paths(forest) == [(1,), (1, 2), (1, 2, 3), (5,), (5, 2)]
    repeated = forest.nodes[-1]
    assert repeated.repeat
    assert not repeated.cycle
    assert (repeated.blocks_direct, repeated.blocks_total) == (1, 1)
    assert not forest.nodes[1].repeat


def test_a_circle_is_entered_once_and_marked() -> None:
    # 1 and 2 wait for each other (a deadlock before the server detects it); 3 waits for 1.
    forest = build_forest(snapshot(session(1, 2), session(2, 1), session(3, 1)))
    assert forest.roots == (1,)
    assert paths(forest) == [(1,), (1, 2), (1, 2, 1), (1, 3)]
    again = forest.nodes[2]
    assert again.cycle
    assert forest.nodes[0].blocks_total == 2


def test_duplicates_and_self_reports_are_no_extra_edges() -> None:
    # A parallel query's workers come back as their leader: duplicates; a pid reporting
    # itself (one parallel group on an extension lock) blocks no other session.
    backends = [session(1), session(2, 1, 1, 2)]
    assert blocking_edges(backends) == ((2, 1),)
    forest = build_forest(snapshot(*backends))
    assert paths(forest) == [(1,), (1, 2)]


def test_a_blocker_missing_from_the_snapshot_is_still_a_root() -> None:
    # pid 0: a prepared transaction; 77: a session that ended between the two reads.
    forest = build_forest(snapshot(session(2, 0), session(3, 77)))
    assert paths(forest) == [(0,), (0, 2), (77,), (77, 3)]
    assert forest.nodes[0].backend is None
    row = node_row(forest.nodes[0], NOW)
    assert row.cells[0] == "0 prepared"
    assert row.cells[4] == "prepared tx"
    assert node_row(forest.nodes[2], NOW).cells[4] == "ended"


def test_a_hot_row_queue_stays_bounded() -> None:
    # 60 sessions queued on one row: each is blocked by the holder's successor and by
    # every waiter ahead of it, so edges grow with the square of the queue.
    n = 60
    backends = [session(1, age=1000)]
    backends.append(session(2, 1))
    for pid in range(3, n + 2):
        backends.append(session(pid, *range(2, pid)))
    forest = build_forest(snapshot(*backends))
    assert len(forest.edges) == 1 + (n - 1) * n // 2
    assert forest.roots == (1,)
    assert forest.nodes[0].blocks_total == n
    assert len(forest.nodes) <= len(forest.edges) + 1
    # Every edge shows once under an expanded blocker; no subtree is listed twice.
    shown = {(node.path[-1], node.path[-2]) for node in forest.nodes if len(node.path) > 1}
    assert shown == set(forest.edges)
    cut = build_forest(snapshot(*backends), max_nodes=50)
    assert cut.cut
    assert len(cut.nodes) == 50


def test_deep_trees_draw_their_last_levels() -> None:
    backends = [session(1)] + [session(pid, pid - 1) for pid in range(2, 12)]
    forest = build_forest(snapshot(*backends))
    deepest = forest.nodes[-1]
    assert deepest.depth == 10
    assert deepest.prefix == "…10 " + "   " * 3 + "└─ "


@pytest.mark.parametrize("seed", range(20))
def test_blocked_totals_match_a_plain_walk(seed: int) -> None:
    rng = random.Random(seed)
    vertices = list(range(1, 16))
    children: dict[int, list[int]] = {}
    for _ in range(rng.randint(5, 40)):
        a, b = rng.sample(vertices, 2)
        if b not in children.setdefault(a, []):
            children[a].append(b)

    def walk(start: int) -> set[int]:
        seen: set[int] = set()
        todo = list(children.get(start, ()))
        while todo:
            pid = todo.pop()
            if pid not in seen:
                seen.add(pid)
                todo.extend(children.get(pid, ()))
        seen.discard(start)
        return seen

    totals = blocked_totals(vertices, children)
    assert totals == {v: len(walk(v)) for v in vertices}


def test_every_edge_of_a_random_graph_shows_and_nothing_else() -> None:
    rng = random.Random(7)
    pids = list(range(100, 130))
    blocked: dict[int, set[int]] = {pid: set() for pid in pids}
    for _ in range(45):
        a, b = rng.sample(pids, 2)
        blocked[a].add(b)
    backends = [session(pid, *sorted(blocked[pid])) for pid in pids]
    forest = build_forest(snapshot(*backends))
    expected = {(a, b) for a, bs in blocked.items() for b in bs}
    assert set(forest.edges) == expected
    shown = {(node.path[-1], node.path[-2]) for node in forest.nodes if len(node.path) > 1}
    assert shown == expected
    assert len({node.path for node in forest.nodes}) == len(forest.nodes)
    involved = {pid for edge in expected for pid in edge}
    assert {node.pid for node in forest.nodes} == involved


@pytest.mark.parametrize(
    ("fields", "target"),
    [
        ({"locktype": "relation", "relation": "accounts"}, "accounts"),
        ({"locktype": "relation", "relation": "oid 16384"}, "oid 16384"),
        ({"locktype": "transactionid", "transactionid": "7781"}, "xid 7781"),
        (
            {"locktype": "tuple", "relation": "accounts", "page": 0, "tuple": 3},
            "row (0,3) of accounts",
        ),
        ({"locktype": "virtualxid", "virtualxid": "3/15"}, "vxid 3/15"),
        ({"locktype": "advisory", "classid": 0, "objid": 42, "objsubid": 1}, "advisory 42"),
        ({"locktype": "advisory", "classid": 1, "objid": 2, "objsubid": 2}, "advisory 1,2"),
        ({"locktype": "extend", "relation": "t"}, "extension of t"),
        ({"locktype": "object", "classid": 1262, "objid": 5, "objsubid": 0}, "object 1262/5"),
        ({"locktype": "relation", "relation": "evil\x1b[2J\nname"}, "evil\\e[2J^Jname"),
    ],
)
def test_lock_targets_in_words(fields: dict[str, Any], target: str) -> None:
    assert lock_target(lock(1, **fields)) == target


def test_advisory_keys_round_trip_through_the_oid_halves() -> None:
    for key in (0, 1, 42, 2**31, 2**32 + 5, 2**62, -1, -5, -(2**63)):
        unsigned = key % 2**64
        assert advisory_key(unsigned >> 32, unsigned & 0xFFFFFFFF, 1) == str(key)
    assert advisory_key(None, None, None) == ""


def test_wait_ages_are_exact_with_waitstart_else_an_upper_bound() -> None:
    waiter = session(2, 1, age=30)
    exact = lock(2, waitstart=NOW - timedelta(seconds=12))
    assert wait_age(waiter, exact, NOW) == (12.0, True)
    assert wait_age(waiter, lock(2), NOW) == (30.0, False)
    assert wait_age(session(1), None, NOW) == (None, False)
    # A wait that began after the snapshot's clock is no negative age.
    assert wait_age(waiter, lock(2, waitstart=NOW + timedelta(seconds=1)), NOW) == (0.0, True)
    activity = snapshot(session(1), waiter, session(3, 1, age=50))
    assert longest_wait(activity, {2: exact}) == (3, 50.0, False)
    assert longest_wait(activity, {2: exact, 3: lock(3, waitstart=NOW)}) == (2, 12.0, True)
    assert longest_wait(snapshot(session(1)), {}) is None


def test_a_lock_read_before_a_session_stopped_waiting_is_not_shown() -> None:
    forest = build_forest(snapshot(session(1), session(2, 1)), {1: lock(1), 2: lock(2)})
    assert forest.nodes[0].wait is None
    assert forest.nodes[1].wait == lock(2)


def test_edge_rows_one_per_pair_in_tree_order() -> None:
    activity = snapshot(
        session(1, state="idle in transaction", query="UPDATE t SET v = 1"),
        session(2, 1, query="UPDATE t SET v = 2"),
        session(3, 1, 2),
        session(9, 0),
    )
    waits = (lock(2, waitstart=NOW - timedelta(seconds=4)), lock(3))
    rows = edge_rows(LocksData(activity, waits))
    assert [(r["blocked_pid"], r["blocking_pid"]) for r in rows] == [(2, 1), (3, 1), (3, 2), (9, 0)]
    first = rows[0]
    assert first["mode"] == "ShareLock"
    assert first["locktype"] == "transactionid"
    assert first["relation"] is None
    assert first["wait_seconds"] == 4.0
    assert first["blocked_state"] == "active"
    assert first["blocked_query"] == "UPDATE t SET v = 2"
    assert first["blocking_state"] == "idle in transaction"
    assert first["blocking_query"] == "UPDATE t SET v = 1"
    assert rows[1]["wait_seconds"] is None  # no waitstart: unknown, not a guess
    assert rows[3]["blocking_prepared"] is True
    assert rows[3]["blocking_state"] is None
    assert rows[3]["locktype"] is None  # details not read for 9


def test_rows_mark_roots_and_an_idle_in_transaction_blocker_without_colour() -> None:
    activity = snapshot(
        session(1, state="idle in transaction", age=700),
        session(2, 1, age=30),
        session(3, 2, age=20, query="SELECT\n\x1b[31m1"),
    )
    forest = build_forest(activity, {2: lock(2, waitstart=NOW - timedelta(seconds=25))})
    root, middle, leaf = (node_row(node, NOW) for node in forest.nodes)
    assert root.key == (1,)
    assert root.cells[1] == "▲ 1/2"
    assert root.cells[4] == IDLE_IN_TX_MARK + "idle in tx"
    assert root.tone == "error"
    assert middle.cells[0] == "└─ 2"
    assert middle.cells[1] == "1/1"
    assert middle.cells[6] == "ShareLock xid 7781"
    assert middle.cells[7] == "25.0s"
    assert middle.tone == "warning"
    assert leaf.cells[0] == "   └─ 3"
    assert leaf.cells[1] == ""
    assert leaf.cells[7] == "≤20.0s"  # no waitstart: the statement's age, an upper bound
    assert leaf.cells[9] == "SELECT \\e[31m1"
