"""Faults injected into a real server while the app runs: it says so, keeps the last data
marked stale, reconnects by itself, and never shows a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from helpers import screen_text, shows, wait_for

from pgtop.app import PgTopApp
from pgtop.cluster import Cluster
from pgtop.config import Settings
from pgtop.messages import PollFailed, SnapshotCollected
from pgtop.source import WATCHDOG_SECONDS, LiveSource

SIZE = (120, 30)


@pytest.fixture
def victim(new_cluster: Callable[..., Cluster]) -> Cluster:
    """A cluster of this test's own, free to be restarted, stopped or frozen."""
    return new_cluster()


class Recorder:
    """Collects the app's poll messages."""

    def __init__(self) -> None:
        self.snapshots: list[SnapshotCollected] = []
        self.failures: list[PollFailed] = []

    def __call__(self, message: object) -> None:
        if isinstance(message, SnapshotCollected):
            self.snapshots.append(message)
        elif isinstance(message, PollFailed):
            self.failures.append(message)


def make_app(cluster: Cluster) -> PgTopApp:
    return PgTopApp(Settings(conninfo=cluster.conninfo(), refresh=0.5))


async def recovers(pilot: Any, app: PgTopApp, seen: Recorder, timeout: float = 60) -> None:
    """Fresh data arrives after a failure, and the banner is gone."""
    failures = len(seen.failures)
    assert failures, "the fault was noticed"
    snapshots = len(seen.snapshots)
    await wait_for(
        pilot,
        lambda: len(seen.snapshots) > snapshots and app.lost_since is None,
        "fresh data after the fault",
        timeout,
    )
    assert app.problem == ""
    text = screen_text(app)
    assert "disconnected" not in text
    assert "STALE" not in text
    assert "Traceback" not in text


def own_pid(app: PgTopApp) -> int:
    """The monitoring connection's backend."""
    assert isinstance(app.source, LiveSource)
    pid = app.source.monitor_pid
    assert pid is not None
    return pid


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_server_restart(victim: Cluster, mode: str) -> None:
    seen = Recorder()
    app = make_app(victim)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first data")
        before = own_pid(app)
        await asyncio.to_thread(victim.restart, mode)
        await wait_for(pilot, lambda: bool(seen.failures), "the restart to be noticed")
        assert any(f.connection_lost for f in seen.failures)
        await recovers(pilot, app, seen)
        assert own_pid(app) != before


async def test_server_stopped_then_started(victim: Cluster) -> None:
    """30 s without a server: the banner counts attempts, the data stays, marked stale."""
    seen = Recorder()
    app = make_app(victim)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first data")
        await asyncio.to_thread(victim.stop, "fast")
        text = await shows(pilot, "disconnected since", "retrying (attempt", "STALE")
        # A poll that was under way while the server stopped may have ended well: the data
        # on screen once the loss is shown is the last there was.
        last = app.snapshot
        assert "1 Activity" in text, "the last data stays on screen"
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < 30:
            await pilot.pause(0.5)
        assert app.attempts >= 3, "it kept retrying"
        assert app.snapshot is last, "no fresh data was invented"
        await shows(pilot, f"attempt {app.attempts + 1}")
        await asyncio.to_thread(victim.start)
        await recovers(pilot, app, seen, timeout=60)


async def test_own_backend_terminated(victim: Cluster) -> None:
    seen = Recorder()
    app = make_app(victim)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first data")
        pid = own_pid(app)
        victim.psql(f"SELECT pg_terminate_backend({pid})")
        await wait_for(pilot, lambda: bool(seen.failures), "the termination to be noticed")
        await recovers(pilot, app, seen)
        assert own_pid(app) != pid


@contextlib.contextmanager
def frozen(*pids: int) -> Iterator[None]:
    """SIGSTOP the processes; SIGCONT them whatever happens."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def test_frozen_server_is_caught_by_the_watchdog(victim: Cluster) -> None:
    seen = Recorder()
    app = make_app(victim)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "first data")
        postmaster = victim.postmaster_pid
        assert postmaster is not None
        with frozen(postmaster, own_pid(app)):
            await wait_for(
                pilot,
                lambda: any("no answer from the server" in f.reason for f in seen.failures),
                "the watchdog",
                timeout=60,
            )
            await shows(pilot, "no answer from the server", "STALE")
        await recovers(pilot, app, seen, timeout=60)


async def test_quit_works_while_a_poll_hangs(victim: Cluster) -> None:
    """q ends pgtop at once, even with a poll stuck on a frozen server (the watchdog would
    only give up on it after several seconds)."""
    app = make_app(victim)
    postmaster = victim.postmaster_pid
    assert postmaster is not None
    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as stack:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, "first data")
            stack.enter_context(frozen(postmaster, own_pid(app)))
            await pilot.pause(1.5)  # the next poll is now stuck on the frozen backend
            pressed = loop.time()
            await pilot.press("q")
        elapsed = loop.time() - pressed  # the app has shut down, server still frozen
    assert elapsed < WATCHDOG_SECONDS / 2


async def test_server_text_never_leaks_a_password(new_cluster: Callable[..., Cluster]) -> None:
    """Connected with a password: it is on no screen, in no title, in no error."""
    cluster = new_cluster()
    secret = "Sup3r-Secret-pw"
    cluster.psql(f"CREATE ROLE watcher LOGIN SUPERUSER PASSWORD '{secret}'")
    conninfo = cluster.conninfo(user="watcher", password=secret)
    with psycopg.connect(conninfo):
        pass
    app = PgTopApp(Settings(conninfo=conninfo, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await shows(pilot, "watcher@", "PostgreSQL")
        assert secret not in screen_text(app)
        assert secret not in app.title + app.sub_title
