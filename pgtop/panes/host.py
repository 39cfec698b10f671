"""What a pane (or a screen) may ask of the app that shows it: the host.

A pane shows what it is given and asks for everything else through its host: what its
collector should read (``state_needs``, a frozen value), a request read on demand
(``fetch``), an action (``act_on_session``, ``act_on_relation``), another screen. It never
touches a source, a collector, a connection or a credential.
"""

from __future__ import annotations

from collections.abc import Awaitable, Hashable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState

from pgtop.actions import RelationAction, SessionAction
from pgtop.collectors.statements import Mode, Reading, StatementKey, StatementsSnapshot
from pgtop.model import (
    Backend,
    Capabilities,
    CheckpointTarget,
    Pool,
    RelationTarget,
    SlotTarget,
    Snapshot,
)
from pgtop.source import Request

if TYPE_CHECKING:
    from textual.app import App

T = TypeVar("T")


class Host(Protocol):
    """The app, as panes and screens see it."""

    snapshot: Snapshot | None
    """The newest snapshot: the Activity snapshot, or a PgBouncer's pools."""
    interval: float
    """Seconds between two refreshes."""
    catalog_database: str | None
    """The database the catalog tabs read (None: the monitoring connection's)."""
    replay: str
    """Where in a recording the screen stands; "" on a server."""

    @property
    def capabilities(self) -> Capabilities | None:
        """What the connected role may see and do."""
        ...

    def say(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
    ) -> None:
        """A notification; ``message`` may hold server text (it is shown literally)."""
        ...

    def report_failure(self, error: BaseException, what: str) -> None:
        """A background task failed: on screen and in the crash log."""
        ...

    def tab_shown(self, tab: str) -> object | None:
        """``tab`` is on screen now (only its collector runs): its latest data, if any."""
        ...

    def state_needs(self, tab: str, needs: object, *, now: bool = False) -> None:
        """What ``tab``'s collector should read from now on; ``now``: read it at once."""
        ...

    def fetch(self, request: Request[T]) -> Awaitable[T]:
        """Read ``request`` (raises ``PollError`` when it cannot be read)."""
        ...

    def other_databases(self) -> bool:
        """The catalog tabs may be switched to another database."""
        ...

    def actions_offered(self) -> bool:
        """Actions may be offered at all (not read-only, not a recording)."""
        ...

    def act_on_session(self, action: SessionAction, backend: Backend) -> None: ...

    def act_on_sessions(self, action: SessionAction, backends: Sequence[Backend]) -> None:
        """One confirmation listing every session, then a guarded signal to each."""
        ...

    def copy_text(self, text: str, what: str) -> str:
        """Put ``text`` (``what`` it is, for the message) on the clipboard; what was done,
        in words, for the status line."""
        ...

    def act_on_relation(self, action: RelationAction, target: RelationTarget) -> None: ...

    def drop_slot(self, target: SlotTarget) -> None: ...

    def checkpoint(self, target: CheckpointTarget, allowed: bool) -> None: ...

    def open_session(self, backend: Backend) -> None:
        """Show the detail of a session."""
        ...

    def open_statement(
        self, key: StatementKey, data: StatementsSnapshot, mode: Mode, mark: Reading | None
    ) -> None:
        """Show the detail of a pg_stat_statements entry."""
        ...

    def open_pool(self, pool: Pool) -> None:
        """Show the clients and servers of a PgBouncer's pool."""
        ...

    def open_database_switcher(self) -> None:
        """Let the user choose the database the catalog tabs read."""
        ...

    def go_to(self, tab: str, key: Hashable | None = None, what: str = "") -> bool:
        """Show ``tab`` with the cursor on the row ``key`` (``what`` it is, for a message)
        once it shows; False when there is no such tab."""
        ...

    def show_catalog_database(self, database: str) -> None:
        """Have the catalog tabs read ``database``."""
        ...

    def switch_server(self, name: str) -> None:
        """Show the server ``name`` in every tab (several servers watched)."""
        ...

    def add_standbys(self, name: str) -> None:
        """Add the standbys the server ``name`` streams to, after asking their port."""
        ...


def host_of(app: App[object]) -> Host:
    return cast(Host, app)


class ReportsFailures:
    """Mixed into a widget or screen that starts workers (``exit_on_error=False``): one that
    fails is reported by the app, instead of ending without a trace."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            host_of(self.app).report_failure(  # type: ignore[attr-defined]
                event.worker.error, event.worker.description
            )
