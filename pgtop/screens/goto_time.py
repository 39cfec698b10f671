"""Where a replay goes: a time typed by the user (``t`` in a replay)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class GoToTime(ModalScreen[str | None]):
    """Asks for a time; dismissed with the text typed (None: Escape)."""

    DEFAULT_CSS = """
    GoToTime {
        align: center middle;
    }
    GoToTime > Vertical {
        width: 72;
        max-width: 100%;
        height: auto;
        border: tall $accent;
        background: $surface;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_time", "Back", id="goto-back"),
    ]

    def __init__(self, span: str) -> None:
        super().__init__()
        self.span = span
        """The recording's first and last times, as a hint."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Go to the reading at or before (recorded {self.span}):")
            yield Input(placeholder="HH:MM:SS, or ISO 8601: 2026-11-26T09:30:00", id="goto-time")
            yield Static("Enter: go · Escape: back", classes="pane-status")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#goto-time")
    def go(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_dismiss_time(self) -> None:
        self.dismiss(None)
