"""Detail of one session: every field, the full query wrapped, its locks."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from pgtop.collectors.activity import WHOLE_TEXT_LIMIT, SessionDetail
from pgtop.formats import duration
from pgtop.model import ActivitySnapshot, Backend
from pgtop.panes.activity import HIDDEN_TEXT, state_label
from pgtop.panes.host import Host, ReportsFailures, host_of
from pgtop.screens.copying import shown_text
from pgtop.source import PollError
from pgtop.text import one_line, visible
from pgtop.widgets.footer import KeysFooter


def fields_text(backend: Backend, snapshot: ActivitySnapshot | None, gone: bool) -> Text:
    """Every field of the backend as ``label  value`` lines, values as plain text."""
    now = snapshot.collected_at if snapshot else None

    def age(value: Any) -> str:
        if value is None:
            return ""
        stamp = f"{value:%Y-%m-%d %H:%M:%S%z}"
        return f"{stamp} ({duration((now - value).total_seconds())} ago)" if now else stamp

    wait = ":".join(filter(None, (backend.wait_event_type, backend.wait_event)))
    client = backend.client_addr or ""
    if backend.client_hostname:
        client = f"{client} ({backend.client_hostname})"
    if backend.client_port is not None:
        client = f"{client} port {backend.client_port}"
    rows = (
        ("pid", str(backend.pid)),
        ("database", backend.database or ""),
        ("user", backend.user or ""),
        ("application", backend.application_name),
        ("client", client.strip()),
        ("backend type", backend.backend_type),
        ("state", backend.state or state_label(backend)),
        ("wait event", wait),
        ("blocked by", ", ".join(map(str, backend.blocked_by))),
        ("backend start", age(backend.backend_start)),
        ("transaction start", age(backend.xact_start)),
        ("query start", age(backend.query_start)),
        ("state change", age(backend.state_change)),
        ("backend xid", backend.backend_xid or ""),
        ("backend xmin", backend.backend_xmin or ""),
        ("parallel leader", str(backend.leader_pid or "")),
        ("query id", "" if backend.query_id is None else str(backend.query_id)),
    )
    text = Text()
    if gone:
        text.append(
            "This session has ended; the values below are the last ones seen.\n\n",
            style="bold reverse",
        )
    for label, value in rows:
        text.append(f"{label:>18}  ", style="bold")
        text.append(one_line(value, 500))
        text.append("\n")
    return text


def _lock_target(lock: dict[str, Any]) -> str:
    target = lock["relation"] or lock["transactionid"] or lock["virtualxid"]
    if target is None and lock["objid"] is not None:
        target = f"object {lock['classid']}/{lock['objid']}"
    return one_line(str(target or ""), 200)


def locks_summary(locks: list[dict[str, Any]]) -> str:
    """The locks in one line, for the title: what the session waits for, how many it holds.

    >>> locks_summary([{"granted": True}, {"granted": True}])
    'holds 2 locks'
    """
    held = sum(1 for lock in locks if lock["granted"])
    parts = [
        f"WAITS for {lock['mode']} on {lock['locktype']} {_lock_target(lock)}"
        for lock in locks
        if not lock["granted"]
    ]
    parts.append(f"holds {held} lock{'' if held == 1 else 's'}" if held else "holds no lock")
    return " · ".join(parts)


def locks_text(locks: list[dict[str, Any]]) -> Text:
    text = Text()
    if not locks:
        text.append("no locks held or awaited", style="italic")
        return text
    for lock in locks:
        status = "HOLDS  " if lock["granted"] else "WAITS  "
        text.append(status, style="bold" if lock["granted"] else "bold reverse")
        text.append(f"{lock['mode']:<24} {lock['locktype']:<14} ")
        text.append(_lock_target(lock))
        if lock.get("waitstart") is not None:
            text.append(f"  since {lock['waitstart']:%H:%M:%S}")
        text.append("\n")
    text.rstrip()
    return text


class SessionScreen(ReportsFailures, Screen[None]):
    """One backend in full; stays live until closed. What one opens it for comes first,
    within an 80x24 terminal: the title sums up the locks, then the query, its locks, and
    the session's fields last."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="close-detail"),
        Binding("ctrl+r", "reload", "Reload", id="reload-detail"),
        Binding("y", "copy_detail", "Copy", id="copy-detail", show=False),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self._gone = False

    @property
    def host(self) -> Host:
        return host_of(self.app)

    def compose(self) -> ComposeResult:
        title = f"Backend {self.backend.pid}"
        yield Static(Text(title, style="bold"), id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(Text("Query", style="bold underline"), classes="detail-heading")
            yield Static(id="detail-query")
            yield Static(Text("Locks", style="bold underline"), classes="detail-heading")
            yield Static(Text("loading…", style="italic"), id="detail-locks")
            yield Static(Text("Session", style="bold underline"), classes="detail-heading")
            yield Static(id="detail-fields")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self._follow, init=True)
        self.action_reload()

    def _follow(self, snapshot: ActivitySnapshot | None) -> None:
        if snapshot is not None:
            current = next((b for b in snapshot.backends if b.pid == self.backend.pid), None)
            if current is not None and current.backend_start == self.backend.backend_start:
                changed = current.query != self.backend.query
                self.backend = current
                if changed:
                    self.action_reload()
            else:
                self._gone = True
        self.query_one("#detail-fields", Static).update(
            fields_text(self.backend, snapshot, self._gone)
        )
        if self.backend.query_hidden:
            self.query_one("#detail-query", Static).update(Text(HIDDEN_TEXT, style="italic"))

    def action_close(self) -> None:
        self.dismiss()

    def action_copy_detail(self) -> None:
        self.host.copy_text(shown_text(self), f"the detail of {self.backend.pid}")

    def action_reload(self) -> None:
        self.load_detail()

    @work(exclusive=True, group="detail", exit_on_error=False, description="load backend detail")
    async def load_detail(self) -> None:
        query_box = self.query_one("#detail-query", Static)
        locks_box = self.query_one("#detail-locks", Static)
        try:
            query, locks = await self.host.fetch(SessionDetail(self.backend))
        except PollError as exc:
            locks_box.update(Text(f"could not load: {one_line(str(exc), 300)}", style="bold"))
            if not self.backend.query_hidden:
                query_box.update(Text(visible(self.backend.query)))
            return
        if query is None:
            self._gone = True
            query = self.backend.query
        if not self.backend.query_hidden:
            # Wrapped in full, newlines kept; control characters made visible.
            shown = Text(visible(query[:WHOLE_TEXT_LIMIT]) or "(no query yet)")
            if len(query) > WHOLE_TEXT_LIMIT:
                shown.append(
                    f"\n… cut: only the first {WHOLE_TEXT_LIMIT:,} characters are read",
                    style="bold reverse",
                )
            query_box.update(shown)
        locks_box.update(locks_text(locks))
        title = Text(f"Backend {self.backend.pid}", style="bold", no_wrap=True, overflow="ellipsis")
        title.append(f" · {locks_summary(locks)}", style="")
        self.query_one("#detail-title", Static).update(title)
