"""The action log, in the app: what was attempted, where, by whom, and how it ended."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from pgtop.actions import action_log_path
from pgtop.text import one_line
from pgtop.widgets.footer import KeysFooter

SHOWN = 200
"""The newest entries shown."""


def log_text(lines: list[str]) -> Text:
    text = Text()
    if not lines:
        text.append("No action has been attempted yet.", style="italic")
        return text
    for raw in reversed(lines[-SHOWN:]):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        outcome = str(entry.get("outcome", ""))
        text.append(f"{entry.get('time', '')}  ", style="bold")
        text.append(f"{outcome.upper():<9} ", style="reverse" if outcome == "failed" else "")
        text.append(one_line(str(entry.get("sql", "")), 300))
        text.append("\n    ")
        text.append(one_line(f"{entry.get('role', '')} on {entry.get('server', '')}", 200))
        message = entry.get("message")
        if message:
            text.append(" · ")
            text.append(one_line(str(message), 400))
        text.append("\n")
    return text


class ActionLogScreen(Screen[None]):
    """The newest entries of the action log, newest first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="close-action-log"),
    ]

    def compose(self) -> ComposeResult:
        path = action_log_path()
        yield Static(Text(f"Action log: {path}", style="bold"), id="detail-title")
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        with VerticalScroll(id="detail-body"):
            yield Static(log_text(lines))
        yield KeysFooter()

    def action_close(self) -> None:
        self.dismiss()
