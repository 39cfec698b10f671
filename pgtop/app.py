"""PgTopApp: the poller, the latest data, the actions, and the keys that work everywhere.

The app is the host of every pane (``pgtop.panes.host``): it polls its source (``pgtop.source``)
for the Activity snapshot and the data of the tab on screen, with what that tab's pane said it
needs, and hands the results to the screen; it reads requests and runs actions for the panes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, ClassVar, TypeVar

from textual import on, work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from pgtop.actions import (
    ActionConnectionLostError,
    ActionPlan,
    Outcome,
    RefusedError,
    RelationAction,
    SessionAction,
    action_log_path,
    action_progress,
    current_identity,
    log_action,
    log_group_target,
    plan_checkpoint,
    plan_drop_slot,
    plan_group,
    plan_relation,
    plan_session,
    send_signal,
    session_refusal,
    signal_done,
    signal_group,
    target_role,
    target_roles,
    watch_signal,
)
from pgtop.collectors.statements import Mode, Reading, StatementKey, StatementsSnapshot
from pgtop.config import Settings, write_copy_file, write_crash_log
from pgtop.formats import duration
from pgtop.messages import PollFailed, SnapshotCollected, TabDataCollected, TabDataFailed
from pgtop.model import (
    ActivitySnapshot,
    Backend,
    Capabilities,
    CheckpointTarget,
    Pool,
    RelationTarget,
    SessionTarget,
    SlotTarget,
    Snapshot,
)
from pgtop.pg import ConnectError
from pgtop.recording import Memory
from pgtop.source import LiveSource, PollError, Request, Source
from pgtop.tabs import SERVERS_TAB, TABS, Tab, collectors, tabs_for
from pgtop.text import name_text, one_line
from pgtop.widgets.repaint import ChangedCellsApp

if TYPE_CHECKING:
    from pgtop.servers import Server, ServerSet

T = TypeVar("T")

INTERVALS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
"""Refresh intervals that ``+`` and ``-`` step through."""
MAX_BACKOFF = 15.0
KEEPALIVE_SECONDS = 20.0
"""How often the idle action connection is checked (and reopened if the server ended it)."""


def next_interval(current: float, step: int) -> float:
    """The next interval up (step 1) or down (step -1) from ``current``.

    >>> next_interval(2.0, -1), next_interval(2.5, 1), next_interval(60.0, 1)
    (1.0, 3.0, 60.0)
    """
    if step > 0:
        return next((i for i in INTERVALS if i > current), INTERVALS[-1])
    return next((i for i in reversed(INTERVALS) if i < current), INTERVALS[0])


def _collect_again() -> None:
    """The first frame is on screen: start-up's garbage is collected once, what remains
    stays out of every collection from now on (it lives as long as pgtop), and garbage
    is collected again."""
    gc.collect()
    gc.freeze()
    gc.enable()


class PgTopApp(ChangedCellsApp[int]):
    """The pgtop terminal UI."""

    CSS_PATH = "pgtop.tcss"
    TITLE = "pgtop"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="interrupt"),
        Binding("question_mark", "toggle_keys", "Keys", id="keys"),
        Binding("space", "toggle_pause", "Pause", id="pause"),
        Binding("plus", "change_interval(-1)", "Faster", show=False, id="faster"),
        Binding("minus", "change_interval(1)", "Slower", show=False, id="slower"),
        Binding("X", "cancel_action", "Stop action", id="cancel-action"),
        Binding("L", "show_action_log", "Action log", show=False, id="action-log"),
        Binding("W", "write_recording", "Write recording", show=False, id="write-recording"),
        # As in other terminal programs: suspend to the shell, repaint on resume.
        Binding("ctrl+z", "suspend_process", "Suspend", show=False, id="suspend"),
    ]

    snapshot: reactive[Snapshot | None] = reactive(None, init=False, repaint=False)
    """The newest snapshot (the Activity snapshot, or a PgBouncer's pools); swapped, never
    changed in place."""
    paused: reactive[bool] = reactive(False, bindings=True, repaint=False)
    """No polling and no screen updates while paused."""
    interval: reactive[float] = reactive(2.0, repaint=False)
    """Seconds between polls."""
    lost_since: reactive[datetime | None] = reactive(None, repaint=False)
    """When the connection was lost; None while connected."""
    problem: reactive[str] = reactive("", repaint=False)
    """Why the last poll failed ("" after a good one)."""
    attempts: reactive[int] = reactive(0, repaint=False)
    """Reconnect attempts since the connection was lost."""
    active_tab: reactive[str] = reactive("activity", repaint=False)
    """The tab on screen: only its collector runs."""
    action_status: reactive[str] = reactive("", bindings=True, repaint=False)
    """What the running action is doing ("" when none runs)."""
    catalog_database: reactive[str | None] = reactive(None, repaint=False)
    """The database the catalog tabs read (None: the monitoring connection's)."""
    latest_tab_data: reactive[tuple[str, object] | None] = reactive(None, init=False, repaint=False)
    """The newest data of a tab's collector, for screens that follow it (a detail)."""
    replay: reactive[str] = reactive("", repaint=False)
    """Where in a recording the screen stands (the header shows it); "" on a server."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: Source | None = None,
        tabs: Sequence[Tab] | None = None,
        first_snapshot: Snapshot | None = None,
        servers: ServerSet | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.servers = servers if servers is not None and len(servers) > 1 else None
        """The servers watched, when there are several (the Servers tab shows them)."""
        if self.servers is not None:
            self.tabs = (SERVERS_TAB, *(tabs or TABS))
            source = self.servers.servers[0].source
        elif source is None:
            self.tabs = tuple(tabs or TABS)
            source = LiveSource(settings, collectors=collectors(self.tabs))
        else:
            # The tabs shown depend on what the source reads (PostgreSQL, PgBouncer).
            self.tabs = tuple(tabs or tabs_for(source.kind))
        self.source: Source = source
        self.actions = self.source.actions
        """Runs actions on a second connection; None in read-only mode."""
        self.crash: BaseException | None = None
        """An unexpected error that ended the app; the CLI reports it once the terminal is back."""
        self._wake = asyncio.Event()
        self._first_snapshot = first_snapshot
        """Taken while the interface loaded: shown at once instead of a first poll."""
        self.set_reactive(PgTopApp.interval, settings.refresh)
        self.tab_data: dict[str, object] = {}
        """The latest data of each tab's collector, shown at once on a tab switch."""
        self._needs: dict[str, object] = {}
        """What each tab's pane said it needs, for its collector's next run."""
        self._now: set[str] = set()
        """Tabs whose collector runs on the next poll, whatever its cadence."""
        self._memories: dict[int, Memory | None] = {}
        """The flight recorder of each server shown (by its source)."""
        self.memory = self._memory_of(self.source)
        """The flight recorder: what was read in the last minutes (``W`` writes it)."""

    def _memory_of(self, source: Source) -> Memory | None:
        """The flight recorder of ``source``: one per server, made when first shown."""
        key = id(source)
        if key not in self._memories:
            memory = None
            # A PgBouncer's console is not recorded: a recording replays a PostgreSQL server.
            if self.settings.recorder_minutes > 0 and source.kind != "pgbouncer":
                memory = Memory(
                    source.describe(),
                    minutes=self.settings.recorder_minutes,
                    megabytes=self.settings.recorder_megabytes,
                    refresh=self.settings.refresh,
                    on_failure=lambda error: self.report_failure(error, "the flight recorder"),
                )
            self._memories[key] = memory
        return self._memories[key]

    def get_default_screen(self) -> Screen[None]:
        from pgtop.screens.main import MainScreen

        return MainScreen.of([tab.pane for tab in self.tabs])

    def on_mount(self) -> None:
        if not gc.isenabled():  # started by the command (cli.main), which stopped it
            self.call_after_refresh(_collect_again)
        self.app_resume_signal.subscribe(self, self._repaint_all)
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        self.sub_title = self.source.describe()
        self.poll_server()
        if self.servers is not None:
            for server in self.servers.servers:
                self._watch_server(server)
        if isinstance(self.source, LiveSource) and (
            self.actions is not None or self.servers is not None
        ):
            if self.actions is not None and self.actions.pid is None:
                self.open_action_connection()
            self.set_interval(KEEPALIVE_SECONDS, self.check_action_connection)

    def _repaint_all(self, _app: object) -> None:
        """Back from a suspension (``fg``): the shell drew over the screen, so all of it is
        painted again, not only what changed since."""
        self.screen.refresh()

    async def on_unmount(self) -> None:
        if self.servers is not None:
            await self.servers.close()
        else:
            await self.source.close()

    # -- what panes ask (the host) -----------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities | None:
        return self.source.capabilities

    @property
    def activity(self) -> ActivitySnapshot | None:
        """The newest Activity snapshot (None on a PgBouncer)."""
        snapshot = self.snapshot
        return snapshot if isinstance(snapshot, ActivitySnapshot) else None

    def other_databases(self) -> bool:
        return self.source.other_databases and self.capabilities is not None

    def describe_source(self) -> str:
        return self.source.describe()

    def tab_shown(self, tab: str) -> object | None:
        self.active_tab = tab
        self.refresh_now()
        return self.tab_data.get(tab)

    def state_needs(self, tab: str, needs: object, *, now: bool = False) -> None:
        """What ``tab``'s collector should read from now on; ``now``: read it at once."""
        self._needs[tab] = needs
        if now:
            self._now.add(tab)
            self.refresh_now()

    async def fetch(self, request: Request[T]) -> T:
        return await self.source.fetch(request)

    def actions_offered(self) -> bool:
        return self.actions is not None

    def open_session(self, backend: Backend) -> None:
        from pgtop.screens.session import SessionScreen

        self.push_screen(SessionScreen(backend))

    def open_statement(
        self, key: StatementKey, data: StatementsSnapshot, mode: Mode, mark: Reading | None
    ) -> None:
        from pgtop.screens.statement import StatementScreen

        self.push_screen(StatementScreen(key, data, mode, mark))

    def open_pool(self, pool: Pool) -> None:
        from pgtop.screens.pool import PoolScreen

        self.push_screen(PoolScreen(pool))

    def open_database_switcher(self) -> None:
        from pgtop.screens.databases import DatabaseSwitcher

        caps = self.capabilities
        if caps is None:
            return
        shown = self.catalog_database or caps.database
        self.push_screen(DatabaseSwitcher(shown, caps.database), self._switch_database)

    def go_to(self, tab: str, key: Hashable | None = None, what: str = "") -> bool:
        from pgtop.screens.main import MainScreen

        while len(self.screen_stack) > 1 and not isinstance(self.screen, MainScreen):
            self.pop_screen()
        screen = self.screen
        return isinstance(screen, MainScreen) and screen.go_to(tab, key, what)

    def show_catalog_database(self, database: str) -> None:
        self._switch_database(database)

    def _switch_database(self, database: str | None) -> None:
        caps = self.capabilities
        if database is None or caps is None:
            return
        chosen = None if database == caps.database else database
        if chosen == self.catalog_database:
            return
        self.catalog_database = chosen
        from pgtop.screens.main import MainScreen

        screen = self.screen
        if isinstance(screen, MainScreen):
            screen.catalog_database_chosen(database)

    # -- the action connection ---------------------------------------------------------------

    @work(group="action-connection", exit_on_error=False, description="open the action connection")
    async def open_action_connection(self) -> None:
        """Open the second connection at start-up, so actions work when slots run out."""
        assert self.actions is not None
        try:
            await self.actions.connect()
        except ConnectError as exc:
            self.say(f"actions will connect when used: {exc}", severity="warning")

    @work(
        exclusive=True,
        group="action-keepalive",
        exit_on_error=False,
        description="check the action connection",
    )
    async def check_action_connection(self) -> None:
        """Keep the action connection alive, reopen it at once when the server ended it,
        and say so when it cannot be reopened (signals then go through the monitoring
        connection)."""
        if self.actions is None:  # a read-only server is in view
            return
        before = self.actions.lost
        lost = await self.actions.keep_alive()
        if lost and lost != before:
            self.say(
                f"the action connection is gone and cannot be opened again ({lost}); cancel "
                "and terminate will go through the monitoring connection, maintenance waits",
                title="Action connection",
                severity="warning",
                timeout=15,
            )
        elif before and not lost:
            self.say("the action connection is back", title="Action connection")

    # -- polling -----------------------------------------------------------------------------

    @work(exclusive=True, group="poller", exit_on_error=False, description="poll the server")
    async def poll_server(self) -> None:
        """Collect, post, wait; the wait starts after the collect, so polls never overlap."""
        source = self.source
        origin = source if self.servers is not None else None
        while True:
            delay = self.interval
            if not self.paused:
                first = self._first_snapshot is not None
                try:
                    snapshot = self._first_snapshot or await source.poll()
                    self._first_snapshot = None
                except PollError as exc:
                    self.post_message(
                        PollFailed(str(exc), connection_lost=exc.connection_lost, origin=origin)
                    )
                    if exc.connection_lost:
                        delay = min(MAX_BACKOFF, 0.5 * 2 ** min(self.attempts, 5))
                except Exception as exc:  # a bug must not stop monitoring mid-incident
                    failed = self._internal_error(exc)
                    self.post_message(PollFailed(failed, connection_lost=False, origin=origin))
                    delay = max(delay, MAX_BACKOFF)
                else:
                    self.post_message(SnapshotCollected(snapshot, origin))
                    if first:
                        # The snapshot taken while the interface loaded goes on screen
                        # before the tabs' reads (the Health checks) take their share.
                        await self._painted()
                    await self._collect_tabs(snapshot)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _painted(self) -> None:
        """Wait until the screen has been painted (a second at most)."""
        painted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not painted.done():
                painted.set_result(None)

        self.call_after_refresh(done)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(painted, timeout=1.0)

    async def _collect_tabs(self, snapshot: Snapshot) -> None:
        """The data of the tab on screen, and of the tabs whose collectors always run (the
        Health checks, which the header names on every tab)."""
        if not await self._collect_tab(self.active_tab, snapshot):
            return
        for tab in self.tabs:
            always = tab.always and tab.name != self.active_tab
            if always and not await self._collect_tab(tab.name, snapshot):
                return

    async def _collect_tab(self, tab: str, snapshot: Snapshot) -> bool:
        """The data of ``tab``, when its source has something new. False when the
        connection was lost meanwhile: that is said like a failed poll (banner, reconnect),
        not only in the tab."""
        now = tab in self._now
        self._now.discard(tab)
        source = self.source
        origin = source if self.servers is not None else None
        try:
            data = await source.collect(tab, snapshot, self._needs.get(tab), now=now)
        except PollError as exc:
            self.post_message(TabDataFailed(tab, str(exc), origin))
            if exc.connection_lost:
                self.post_message(PollFailed(str(exc), connection_lost=True, origin=origin))
                return False
        except Exception as exc:  # a bug in one tab must not stop monitoring
            self.post_message(TabDataFailed(tab, self._internal_error(exc), origin))
        else:
            if data is not None:
                self.post_message(TabDataCollected(tab, data, origin))
        return True

    def report_failure(self, error: BaseException, what: str) -> None:
        """A background task ended in an error: on screen, and in the crash log."""
        self.say(self._internal_error(error), title=f"{what} failed", severity="error", timeout=15)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.report_failure(event.worker.error, event.worker.description)

    def _internal_error(self, error: BaseException) -> str:
        """Log an unexpected error privately; one line for the screen."""
        from pgtop.pg import first_line
        from pgtop.text import redact_text

        secrets = (self.settings.password,)
        path = write_crash_log(error, secrets)
        where = f"; details in {path}" if path else ""
        return f"internal error: {redact_text(first_line(error), secrets)}{where}"

    def refresh_now(self) -> None:
        """Poll at once instead of at the end of the current wait."""
        self._wake.set()

    def _stale(self, origin: object) -> bool:
        """A message from a server no longer in view."""
        return origin is not None and origin is not self.source

    @on(TabDataCollected)
    def store_tab_data(self, message: TabDataCollected) -> None:
        if self.paused or self._stale(message.origin):
            return
        self.tab_data[message.tab] = message.data
        self._show_tab(message.tab, message.data, "")
        if self.memory is not None:
            self.memory.tab(message.tab, message.data)

    @on(TabDataFailed)
    def record_tab_failure(self, message: TabDataFailed) -> None:
        if self._stale(message.origin):
            return
        self._show_tab(message.tab, None, message.reason)

    def _show_tab(self, tab: str, data: object, reason: str) -> None:
        from pgtop.screens.main import MainScreen

        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.show_tab_data(tab, data, reason)
        if data is not None:
            self.latest_tab_data = (tab, data)

    @on(SnapshotCollected)
    def store_snapshot(self, message: SnapshotCollected) -> None:
        if self.paused or self._stale(message.origin):
            return
        self.snapshot = message.snapshot
        if self.memory is not None and isinstance(message.snapshot, ActivitySnapshot):
            self.memory.activity(message.snapshot)
        self.lost_since = None
        self.attempts = 0
        self.problem = ""
        self.sub_title = self.source.describe()

    @on(PollFailed)
    def record_failure(self, message: PollFailed) -> None:
        if self._stale(message.origin):
            return
        self.problem = message.reason
        if message.connection_lost:
            self.lost_since = self.source.lost_since or datetime.now()
            self.attempts = self.source.attempts
            if self.memory is not None:
                self.memory.lost(message.reason)

    # -- several servers ---------------------------------------------------------------------

    def _watch_server(self, server: Server) -> None:
        """Read ``server``'s light figures on every refresh, in a task of its own."""
        self.run_worker(
            self._watch(server),
            group=f"server-{server.name}",
            exit_on_error=False,
            description=f"read server {server.name}",
        )

    async def _watch(self, server: Server) -> None:
        while True:
            if not self.paused:
                try:
                    await server.read()
                except Exception as exc:  # a bug must not stop watching mid-incident
                    server.ok = False
                    server.status = self._internal_error(exc)
                self._show_servers()
            await asyncio.sleep(self.interval)

    def _show_servers(self) -> None:
        from pgtop.collectors.health import HealthData
        from pgtop.panes.servers import ServersData

        if self.servers is None:
            return
        health = self.tab_data.get("health")
        rows = tuple(
            server.row(
                in_view=server.source is self.source,
                health=health if isinstance(health, HealthData) else None,
            )
            for server in self.servers.servers
        )
        data = ServersData(rows)
        self.tab_data["servers"] = data
        self._show_tab("servers", data, "")

    def switch_server(self, name: str) -> None:
        """Show the server ``name`` in every tab: its source is the app's now (its actions
        too); the tabs forget the server before and wait for the first read."""
        server = self.servers.get(name) if self.servers is not None else None
        if server is None:
            return
        if server.source is not self.source:
            from pgtop.screens.main import MainScreen

            if self.action_status:
                self.say(
                    f"an action is running on {self.source.describe()}: wait for it, or stop "
                    "it with X, before showing another server",
                    title="Not switched",
                    severity="warning",
                )
                return

            self.source = server.source
            self.actions = server.source.actions
            self.tab_data = (
                {"servers": self.tab_data["servers"]} if "servers" in self.tab_data else {}
            )
            self._now.clear()
            self._first_snapshot = None
            self.catalog_database = None
            self.lost_since = None
            self.problem = ""
            self.attempts = 0
            self.memory = self._memory_of(server.source)
            self.snapshot = None
            self.sub_title = server.source.describe()
            for screen in self.screen_stack:
                if isinstance(screen, MainScreen):
                    screen.server_switched()
            self.poll_server()
            if self.actions is not None and self.actions.pid is None:
                self.open_action_connection()
            self._show_servers()
        self.go_to("activity")

    def add_standbys(self, name: str) -> None:
        self._add_standbys(name)

    @work(group="standbys", exit_on_error=False, description="add the standbys of a server")
    async def _add_standbys(self, name: str) -> None:
        """Ask the primary for its standbys, then each one's port (the primary's by default),
        and watch each with the primary's settings and the standby's address."""
        from pgtop.collectors.servers import StandbyAddresses
        from pgtop.screens.port_prompt import PortPrompt

        primary = self.servers.get(name) if self.servers is not None else None
        if primary is None or self.servers is None:
            return
        title = "No standby added"
        try:
            found = await primary.source.fetch(StandbyAddresses())
        except PollError as exc:
            self.say(f"{name}: {exc}", title=title, severity="warning")
            return
        if not found:
            self.say(f"{name} streams to no standby now", title=title, severity="warning")
            return
        for standby in found:
            where = standby.address or "a local socket"
            label = f"{standby.name} ({where})" if standby.name else where
            port = await self.push_screen_wait(PortPrompt(name, label, primary.port or "5432"))
            if port is None:
                continue
            added = self.servers.add(self.servers.standby_profile(primary, standby, port))
            if added is None:
                self.say(f"standby {label} is listed already", title=title)
                continue
            self._watch_server(added)
            self.say(f"watching {added.name}", title="Standby added")
        self._show_servers()

    # -- global actions ----------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.refresh_now()

    def action_change_interval(self, step: int) -> None:
        self.interval = next_interval(self.interval, step)
        self.say(f"refreshing every {self.interval:g}s", timeout=2)
        self.refresh_now()

    def action_toggle_keys(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand("Quit", "Quit pgtop", self.action_quit)
        yield SystemCommand(
            "Pause" if not self.paused else "Resume",
            "Stop or resume refreshing",
            self.action_toggle_pause,
        )
        yield SystemCommand(
            "Refresh faster", "Shorter refresh interval", lambda: self.action_change_interval(-1)
        )
        yield SystemCommand(
            "Refresh slower", "Longer refresh interval", lambda: self.action_change_interval(1)
        )
        yield SystemCommand("Keys", "Show every key", self.action_toggle_keys)
        commands = getattr(screen, "screen_commands", None)
        if commands is not None:
            yield from commands()

    # -- the flight recorder -------------------------------------------------------------------

    def action_write_recording(self) -> None:
        self._write_recording()

    @work(group="write-recording", exit_on_error=False, description="write the recording")
    async def _write_recording(self) -> None:
        """Write the flight recorder's memory to a private file, and say where."""
        memory = self.memory
        title = "Recording not written"
        if memory is None or memory.stopped:
            why = "the flight recorder is off: recorder_minutes is 0 in the config file"
            self.say(memory.stopped if memory else why, title=title, severity="warning")
            return
        try:
            saved = await memory.write()
        except OSError as exc:
            self.say(f"{exc.strerror or exc}: {exc.filename or ''}", title=title, severity="error")
            return
        if saved is None:
            self.say("nothing was read yet", title=title, severity="warning")
            return
        self.say(
            f"{saved.readings} readings, {duration(saved.seconds)}: {saved.path}",
            title="Recording written",
            timeout=30,
        )

    # -- actions -----------------------------------------------------------------------------

    def action_unavailable(self) -> str | None:
        """Why no action may run now, or None when actions may run."""
        if self.actions is None:
            if self.servers is not None:
                return f"{self.source.describe()} is read-only: no action is offered on it"
            return "pgtop runs in read-only mode"
        if self.lost_since is not None or self.activity is None:
            return "the data on screen is not fresh: waiting for the connection"
        if self.actions.running is not None:
            return "another action is still running (X stops it)"
        return None

    def act_on_session(self, action: SessionAction, backend: Backend) -> None:
        """Cancel the query of, or terminate, exactly this backend after confirmation."""
        self._session_action(action, backend)

    def act_on_sessions(self, action: SessionAction, backends: Sequence[Backend]) -> None:
        """Cancel the queries of, or terminate, these backends after one confirmation that
        lists them all; each is signalled only if it is still the same session."""
        self._group_action(action, tuple(backends))

    def act_on_relation(self, action: RelationAction, target: RelationTarget) -> None:
        """ANALYZE, VACUUM or REINDEX exactly this relation after confirmation."""
        self._relation_action(action, target)

    def drop_slot(self, target: SlotTarget) -> None:
        """Drop exactly this replication slot after confirmation, if it is still inactive."""
        what = f"drop slot {name_text(target.name, 80)}"
        self._planned_action(what, partial(plan_drop_slot, target))

    def checkpoint(self, target: CheckpointTarget, allowed: bool) -> None:
        """Run a CHECKPOINT after confirmation, where the role may."""
        self._planned_action("CHECKPOINT", partial(plan_checkpoint, target, allowed))

    def say(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
    ) -> None:
        """A notification whose text may hold server text: shown literally, on one line,
        with every character that would not show as itself made visible."""
        self.notify(
            one_line(message, 600),
            title=one_line(title, 80),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def copy_text(self, text: str, what: str) -> str:
        """Put ``text`` on the terminal's clipboard with OSC 52 (through the driver) and,
        unless the config says not to, in the copy file too: no terminal says whether it
        took an OSC 52 copy (over SSH, in tmux, in macOS Terminal it may not)."""
        self.copy_to_clipboard(text)
        message = f"copied {what} ({len(text):,} characters) to the clipboard (OSC 52)"
        if self.settings.copy_to_file:
            try:
                message += f"; also in {write_copy_file(text)}"
            except OSError as exc:
                message += f"; the copy file cannot be written: {exc.strerror or exc}"
        self.say(message, title="Copied", timeout=10)
        return message

    def _server_named(self) -> str:
        """The server in view, for a confirm dialog, when several are watched; else ""."""
        return self.source.describe() if self.servers is not None else ""

    def _refuse(self, what: str, reason: str) -> None:
        self.say(f"{what}: {reason}", title="Not available", severity="warning")

    def _ready_to_signal(self, what: str) -> tuple[ActivitySnapshot, frozenset[int]] | None:
        """The data on screen and pgtop's own pids, or None when no action may run now
        (the user is told why)."""
        reason = self.action_unavailable()
        if reason is not None:
            self._refuse(what, reason)
            return None
        activity = self.activity
        assert activity is not None
        assert self.actions is not None
        return activity, activity.own_pids | {pid for pid in (self.actions.pid,) if pid is not None}

    @work(group="action", exit_on_error=False, description="confirm and signal a session")
    async def _session_action(self, action: SessionAction, backend: Backend) -> None:
        what = f"{action} pid {backend.pid}"
        ready = self._ready_to_signal(what)
        if ready is None:
            return
        activity, own = ready
        try:
            role = await self.source.run(lambda conn: target_role(conn, backend.user))
        except PollError as exc:
            self._refuse(what, str(exc))
            return
        refusal = session_refusal(backend, activity.capabilities, own, role)
        if refusal is not None:
            self._refuse(what, refusal)
            return
        try:
            plan = plan_session(action, backend)
        except RefusedError as exc:
            self._refuse(what, str(exc))
            return
        await self._confirm_and_run(plan)

    @work(group="action", exit_on_error=False, description="confirm and run an action")
    async def _planned_action(self, what: str, make_plan: Callable[[], ActionPlan]) -> None:
        reason = self.action_unavailable()
        if reason is not None:
            self._refuse(what, reason)
            return
        try:
            plan = make_plan()
        except RefusedError as exc:
            self._refuse(what, str(exc))
            return
        await self._confirm_and_run(plan)

    @work(group="action", exit_on_error=False, description="confirm and signal sessions")
    async def _group_action(self, action: SessionAction, backends: tuple[Backend, ...]) -> None:
        what = f"{action} {len(backends)} tagged sessions"
        ready = self._ready_to_signal(what)
        if ready is None:
            return
        activity, own = ready
        try:
            roles = await self.source.run(
                lambda conn: target_roles(conn, (b.user for b in backends))
            )
        except PollError as exc:
            self._refuse(what, str(exc))
            return
        targets = plan_group(action, backends, activity.capabilities, own, roles)
        if not any(target.plan for target in targets):
            self._refuse(what, f"none can be signalled: {targets[0].refusal}")
            return
        from pgtop.screens.confirm import GroupConfirmDialog, sessions_word

        dialog = GroupConfirmDialog(
            action, targets, activity.collected_at, server=self._server_named()
        )
        if not await self.push_screen_wait(dialog):
            return
        reason = self.action_unavailable()
        if reason is not None:  # the connection went stale while the dialog was open
            self._refuse(what, reason)
            return
        assert self.actions is not None
        server = self.source.describe()
        role = activity.capabilities.user
        plans = dialog.plans  # exactly the sessions listed as signalled
        self.action_status = f"running: {action} of {sessions_word(len(plans))}"
        try:
            try:
                outcomes = await self.actions.run_group(plans)
            except ActionConnectionLostError as exc:
                outcomes = await self._group_without_action_connection(plans, str(exc))
        finally:
            self.action_status = ""
        in_order = iter(outcomes)  # one per plan, in the order of the targets listed
        unlogged = ""
        for target in targets:
            outcome = next(in_order) if target.plan is not None else None
            try:
                log_group_target(server, role, action, target, outcome)
            except OSError as exc:
                unlogged = f" (the action log cannot be written: {exc.strerror or exc})"
        sent = sum(1 for outcome in outcomes if outcome.ok)
        gone = sum(1 for outcome in outcomes if outcome.gone)
        failed = len(outcomes) - sent - gone
        refused = len(targets) - len(plans)
        parts = [f"{sent} signalled", f"{gone} had already gone", f"{refused} refused"]
        if failed:
            failures = {o.message for o in outcomes if not o.ok and not o.gone}
            parts.append(f"{failed} failed ({'; '.join(sorted(failures))})")
        self.say(
            " · ".join(parts) + " (one line each in the action log, L)" + unlogged,
            title=f"{action}: {sessions_word(len(targets))}",
            severity="information" if not failed and not unlogged else "error",
            timeout=15,
        )
        self.refresh_now()

    async def _group_without_action_connection(
        self, plans: Sequence[ActionPlan], why: str
    ) -> list[Outcome]:
        """As ``_without_action_connection``, for an action on many sessions."""
        try:
            outcomes = await self.source.run(lambda conn: signal_group(conn, plans))
        except PollError as exc:
            return [Outcome(False, f"not run: no connection to the server: {exc}")] * len(plans)
        note = f" (through the monitoring connection: the action connection is gone: {why})"
        return [replace(outcome, message=outcome.message + note) for outcome in outcomes]

    @work(group="action", exit_on_error=False, description="confirm and run maintenance")
    async def _relation_action(self, action: RelationAction, target: RelationTarget) -> None:
        what = f"{action} {name_text(target.qualified, 100)}"
        reason = self.action_unavailable()
        if reason is not None:
            self._refuse(what, reason)
            return
        activity = self.activity
        assert activity is not None
        here = activity.capabilities.database
        if target.database is not None and target.database != here:
            self._refuse(
                what,
                f"it is in database {name_text(target.database, 60)} and pgtop's actions run "
                f"in {name_text(here, 60)}: start pgtop with -d on that database to act there",
            )
            return
        try:
            identity = await self.source.run(lambda conn: current_identity(conn, target.oid))
        except PollError as exc:
            self._refuse(what, str(exc))
            return
        if identity is None or identity[:2] != (target.schema, target.name):
            self._refuse(what, "it was dropped or renamed since the list was read")
            return
        await self._plan_and_run(action, replace(target, owner=identity[2]))

    async def _plan_and_run(self, action: RelationAction, target: RelationTarget) -> None:
        activity = self.activity
        assert activity is not None
        caps = activity.capabilities
        try:
            plan = plan_relation(
                action,
                target,
                standby=activity.counters.in_recovery,
                server_version_num=caps.server_version_num,
                role=caps.user,
            )
        except RefusedError as exc:
            self._refuse(f"{action} {name_text(target.qualified, 100)}", str(exc))
            return
        await self._confirm_and_run(plan)

    async def _confirm_and_run(self, plan: ActionPlan) -> None:
        from pgtop.screens.confirm import ConfirmDialog  # loads with the first action

        server_named = self._server_named()
        if not await self.push_screen_wait(ConfirmDialog(plan, server=server_named)):
            return
        if plan.warning and not await self.push_screen_wait(
            ConfirmDialog(plan, second=True, server=server_named)
        ):
            return
        reason = self.action_unavailable()
        if reason is not None:  # the connection went stale while the dialog was open
            self._refuse(plan.action, reason)
            return
        assert self.actions is not None
        server = self.source.describe()
        role = self.activity.capabilities.user if self.activity else ""
        try:
            log_action(server, role, plan, None)
            logged = True
        except OSError as exc:
            # A full disk is a common incident: the action stays possible, once more
            # confirmed, and the user knows it goes unrecorded.
            unlogged = (
                f"the action log {action_log_path()} cannot be written "
                f"({exc.strerror or exc}): run it anyway, unrecorded?"
            )
            if not await self.push_screen_wait(
                ConfirmDialog(replace(plan, warning=unlogged), second=True, server=server_named)
            ):
                self.say(f"{plan.action} not run", title="Not run", severity="warning")
                return
            logged = False
        self.action_status = f"running: {plan.sql_text}"
        watcher = asyncio.create_task(self._watch_progress(plan))
        try:
            own = self.activity.own_pids if self.activity else frozenset()
            try:
                outcome = await self.actions.run(plan, own)
            except ActionConnectionLostError as exc:
                outcome = await self._without_action_connection(plan, str(exc))
        finally:
            watcher.cancel()
            self.action_status = ""
        message = outcome.message
        if logged:
            try:
                log_action(server, role, plan, outcome)
            except OSError as exc:
                message += f" (the action log cannot be written: {exc.strerror or exc})"
        else:
            message += " (not recorded: the action log cannot be written)"
        self.say(
            message,
            title=plan.action.replace("_", " "),
            severity="information" if outcome.ok else "error",
            timeout=12,
        )
        self.refresh_now()
        for leftover in outcome.leftovers:
            await self._plan_and_run("drop_invalid_index", leftover)

    async def _without_action_connection(self, plan: ActionPlan, why: str) -> Outcome:
        """The action connection is gone and cannot be opened again (a full server):
        a signal still goes out through the monitoring connection, which is alive."""
        if not isinstance(plan.target, SessionTarget):
            return Outcome(False, f"not run: the action connection is gone: {why}")
        try:
            refused = await self.source.run(lambda conn: send_signal(conn, plan))
            if refused is not None:
                return refused

            async def done() -> bool:
                return await self.source.run(lambda conn: signal_done(conn, plan))

            outcome = await watch_signal(done, plan)
        except PollError as exc:
            return Outcome(False, f"not run: no connection to the server: {exc}")
        return replace(
            outcome,
            message=f"{outcome.message} (through the monitoring connection: the action "
            f"connection is gone: {why})",
        )

    async def _watch_progress(self, plan: ActionPlan) -> None:
        """Show the server's progress report of the running action."""
        assert self.actions is not None
        while True:
            await asyncio.sleep(1.0)
            pid = self.actions.pid
            if pid is None:
                continue
            try:
                progress = await self.source.run(partial(action_progress, pid=pid))
            except PollError:
                continue
            label = f"running: {plan.sql_text}"
            self.action_status = f"{label} · {progress}" if progress else label

    def action_cancel_action(self) -> None:
        self._cancel_running_action()

    @work(group="action-cancel", exit_on_error=False, description="cancel the running action")
    async def _cancel_running_action(self) -> None:
        if self.actions is not None and await self.actions.cancel_running():
            self.say("asked the server to cancel the running action")

    def action_show_action_log(self) -> None:
        from pgtop.screens.action_log import ActionLogScreen

        self.push_screen(ActionLogScreen())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_action":
            return bool(self.action_status)
        if action == "show_action_log":
            return self.actions is not None
        return True

    # -- errors ------------------------------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """Record an unexpected error and exit; the CLI prints one line and a crash log.

        Textual's default prints a traceback with local variables, which could hold
        a password: never show that.
        """
        if self.crash is None:
            self.crash = error
        self._return_code = 1
        if self._exception is None:
            self._exception = error
            self._exception_event.set()
        self._close_messages_no_wait()
