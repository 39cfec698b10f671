"""Actions from the panes: cancel and terminate where sessions are shown (Activity, Locks),
ANALYZE, VACUUM and REINDEX where tables and indexes are (Tables, Vacuum, Indexes)."""

from __future__ import annotations

from collections.abc import Iterable

from textual import work
from textual.app import SystemCommand
from textual.binding import Binding
from textual.widget import Widget

from pgtop.actions import SessionAction
from pgtop.collectors.activity import WHOLE_TEXT_LIMIT, SessionDetail
from pgtop.model import Backend, RelationTarget
from pgtop.panes.base import ListPane
from pgtop.panes.host import host_of
from pgtop.source import PollError

SESSION_ACTION_BINDINGS = [
    Binding("C", "signal('cancel')", "Cancel query", id="cancel-query"),
    Binding("K", "signal('terminate')", "Terminate", id="terminate-session"),
]
COPY_BINDING = Binding("y", "copy_query", "Copy query", id="copy-query", show=False)
"""``y`` as in yank: the selected session's whole query to the clipboard."""


class SessionActions(Widget):
    """A pane whose cursor is on a session; it gets ``C`` and ``K`` (on the tagged sessions
    when there are any), and ``y`` to copy the query."""

    def selected_backend(self) -> Backend | None:
        raise NotImplementedError

    def tagged_backends(self) -> list[Backend]:
        """The sessions tagged for an action on many (none unless the pane tags)."""
        return []

    def action_signal(self, action: str) -> None:
        if action not in ("cancel", "terminate"):
            return
        signal: SessionAction = "cancel" if action == "cancel" else "terminate"
        host = host_of(self.app)
        tagged = self.tagged_backends()
        if tagged:
            host.act_on_sessions(signal, tagged)
            return
        backend = self.selected_backend()
        if backend is not None:
            host.act_on_session(signal, backend)

    def check_signal(self) -> bool | None:
        """False hides the keys (read-only mode); None greys them (nothing selected)."""
        if not host_of(self.app).actions_offered():
            return False
        if self.tagged_backends():
            return True
        return True if self.selected_backend() is not None else None

    def action_copy_query(self) -> None:
        backend = self.selected_backend()
        if backend is None:
            return
        if backend.query_hidden:
            host_of(self.app).say(
                "nothing copied: this role may not see that session's query", severity="warning"
            )
            return
        self.copy_query(backend)

    @work(exclusive=True, group="copy", exit_on_error=False, description="copy a query")
    async def copy_query(self, backend: Backend) -> None:
        """Copy the whole query text (a list holds only its start), read for the purpose."""
        host = host_of(self.app)
        what = f"the query of {backend.pid}"
        try:
            query, _ = await host.fetch(SessionDetail(backend))
        except PollError as exc:
            query = None
            what += f" as listed (the whole text could not be read: {exc})"
        if query is None:
            query = backend.query
            what += " as last seen (the session ended)"
        message = host.copy_text(query[:WHOLE_TEXT_LIMIT], what)
        if isinstance(self, ListPane):
            self.show_notice(message)

    def session_commands(self, where: str) -> Iterable[SystemCommand]:
        tagged = bool(self.tagged_backends())
        if not host_of(self.app).actions_offered():
            return
        if not tagged and self.selected_backend() is None:
            return
        yield SystemCommand(
            "Cancel the tagged sessions' queries"
            if tagged
            else "Cancel the selected session's query",
            f"{where}: pg_cancel_backend, after confirmation",
            lambda: self.action_signal("cancel"),
        )
        yield SystemCommand(
            "Terminate the tagged sessions" if tagged else "Terminate the selected session",
            f"{where}: pg_terminate_backend, after confirmation",
            lambda: self.action_signal("terminate"),
        )


RELATION_ACTION_BINDINGS = [
    Binding("A", "maintain('analyze')", "Analyze", id="analyze"),
    Binding("V", "maintain('vacuum')", "Vacuum", id="vacuum"),
    Binding("R", "maintain('reindex')", "Reindex", id="reindex"),
]


class RelationActions(Widget):
    """A pane whose cursor is on a table or an index; it gets ``A``, ``V`` and ``R``."""

    def selected_target(self) -> RelationTarget | None:
        raise NotImplementedError

    def action_maintain(self, action: str) -> None:
        target = self.selected_target()
        if target is None:
            return
        host = host_of(self.app)
        if action == "analyze":
            host.act_on_relation("analyze", target)
        elif action == "vacuum":
            host.act_on_relation("vacuum", target)
        elif action == "reindex":
            host.act_on_relation("reindex", target)

    def check_maintain(self, action: str) -> bool | None:
        """False hides the key (read-only, or not for this kind); None greys it."""
        if not host_of(self.app).actions_offered():
            return False
        target = self.selected_target()
        if target is None:
            return None
        if target.kind == "index" and action != "reindex":
            return None
        return True

    def relation_commands(self, where: str) -> Iterable[SystemCommand]:
        target = self.selected_target()
        if not host_of(self.app).actions_offered() or target is None:
            return
        # Palette titles and help are markup: no server text goes in them (the confirm
        # dialog names the target in full).
        if target.kind == "table":
            yield SystemCommand(
                "ANALYZE the selected table",
                f"{where}: after confirmation",
                lambda: self.action_maintain("analyze"),
            )
            yield SystemCommand(
                "VACUUM (ANALYZE) the selected table",
                f"{where}: after confirmation",
                lambda: self.action_maintain("vacuum"),
            )
        yield SystemCommand(
            f"REINDEX the selected {target.kind}",
            f"{where}: CONCURRENTLY where possible, after confirmation",
            lambda: self.action_maintain("reindex"),
        )
