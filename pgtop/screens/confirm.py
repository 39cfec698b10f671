"""The confirm dialog: names the target in full, shows the exact SQL and its lock.

"No" has the focus. Only an explicit yes runs the action: ``y`` or the Yes button. A ``y``
typed before the dialog was on screen long enough to be read (its key event is older than
that moment, however late it is processed on a busy machine) is ignored; a no is always
taken.
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from pgtop.actions import CHECKPOINT_HELPS, ActionPlan
from pgtop.formats import size
from pgtop.model import CheckpointTarget, RelationTarget, SessionTarget, SlotTarget
from pgtop.text import name_text, one_line, visible

ARM_SECONDS = 0.4
"""A yes typed before the dialog had been visible this long is not taken as an answer."""

TITLES = {
    "cancel": "Cancel the query of this session?",
    "terminate": "Terminate this session?",
    "analyze": "ANALYZE this table?",
    "vacuum": "VACUUM (ANALYZE) this table?",
    "reindex": "REINDEX?",
    "drop_invalid_index": "Drop the invalid index left behind?",
    "drop_slot": "Drop this replication slot?",
    "checkpoint": "Run a CHECKPOINT now?",
}


def target_text(plan: ActionPlan) -> Text:
    """The target, every value as plain text with control characters visible."""
    target = plan.target
    text = Text()

    def line(label: str, value: str) -> None:
        text.append(f"{label:>14}  ", style="bold")
        text.append(value)
        text.append("\n")

    if isinstance(target, SessionTarget):
        line("pid", str(target.pid))
        line("user", name_text(target.user, 80))
        line("application", name_text(target.application_name, 80))
        line("database", name_text(target.database, 80))
        line("type", name_text(target.backend_type, 40))
        line("state", one_line(target.state, 40))
        line("backend start", f"{target.backend_start:%Y-%m-%d %H:%M:%S%z}")
        if target.query_start is not None:
            line("query start", f"{target.query_start:%Y-%m-%d %H:%M:%S%z}")
        line("query", one_line(target.query, 300))
    elif isinstance(target, RelationTarget):
        line(target.kind, name_text(target.qualified, 200))
        if target.table_name and target.kind == "index":
            line("table", name_text(target.table_name, 200))
        if target.database is not None:
            line("database", name_text(target.database, 80))
        if target.owner is not None:
            line("owner", name_text(target.owner, 80))
        if target.size_bytes is not None:
            line("size", size(target.size_bytes))
        line("oid", str(target.oid))
    elif isinstance(target, SlotTarget):
        line("slot", name_text(target.name, 200))
        kind = target.kind
        if kind == "logical":
            plugin, database = name_text(target.plugin, 60), name_text(target.database, 60)
            kind = f"logical ({plugin}, database {database})"
        line("type", kind)
        line("WAL kept", size(target.retained_bytes) or "?")
        line("its consumer", target.consumer_loss)
    elif isinstance(target, CheckpointTarget):
        line("server", "a standby: this is a restartpoint" if target.in_recovery else "primary")
        if target.wal_dir_bytes is not None:
            line("pg_wal", size(target.wal_dir_bytes))
        if target.last_checkpoint_time is not None:
            line("last one", f"{target.last_checkpoint_time:%Y-%m-%d %H:%M:%S%z}")
        line("when it helps", CHECKPOINT_HELPS)
    return text


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no, with everything needed to decide."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No", id="confirm-no"),
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),  # handled in on_key
    ]

    def __init__(self, plan: ActionPlan, *, second: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.second = second
        self._armed_at = math.inf
        """When a yes starts to count: set once the dialog has been drawn."""

    def compose(self) -> ComposeResult:
        plan = self.plan
        with VerticalScroll(id="confirm-box"):
            title = TITLES.get(plan.action, plan.action)
            if self.second:
                title = "Are you sure? " + one_line(plan.warning, 200)
            yield Static(Text(title, style="bold"), id="confirm-title")
            yield Static(target_text(plan), id="confirm-target")
            sql_text = Text("SQL  ", style="bold")
            sql_text.append(visible(plan.sql_text))
            yield Static(sql_text, id="confirm-sql")
            lock_text = Text("Lock ", style="bold")
            lock_text.append(plan.lock)
            yield Static(lock_text, id="confirm-lock")
            if plan.warning:
                yield Static(
                    Text("⚠ " + one_line(plan.warning, 300), style="bold"), id="confirm-warning"
                )
            with Horizontal(id="confirm-buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button("Yes", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()
        self.call_after_refresh(self._arm)

    def _arm(self) -> None:
        self._armed_at = time.monotonic() + ARM_SECONDS

    def _armed(self) -> bool:
        return time.monotonic() >= self._armed_at

    def on_key(self, event: events.Key) -> None:
        # Judged by when the key was typed, not when it is handled: keys typed ahead wait in
        # a queue and may be handled after the dialog is up.
        if event.key == "y":
            event.stop()
            event.prevent_default()
            if event.time >= self._armed_at:
                self.dismiss(True)

    def action_answer(self, yes: bool) -> None:
        if yes and not self._armed():
            return
        self.dismiss(yes)

    @on(Button.Pressed)
    def answer_button(self, event: Button.Pressed) -> None:
        event.stop()
        if not self._armed():
            return
        self.dismiss(event.button.id == "yes")
