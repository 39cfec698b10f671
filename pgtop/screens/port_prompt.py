"""The port of a standby (``a`` in the Servers tab): ``pg_stat_replication`` gives the
address a standby connects from, not the port it listens on."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from pgtop.text import name_text


def valid_port(text: str) -> bool:
    """A TCP port number.

    >>> valid_port("5432"), valid_port("0"), valid_port("70000"), valid_port("x")
    (True, False, False, False)
    """
    return text.isdigit() and 0 < int(text) < 65536


class PortPrompt(ModalScreen[str | None]):
    """Asks for a standby's port, the primary's by default; dismissed with it (None:
    Escape)."""

    DEFAULT_CSS = """
    PortPrompt {
        align: center middle;
    }
    PortPrompt > Vertical {
        width: 72;
        max-width: 100%;
        height: auto;
        border: tall $accent;
        background: $surface;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "skip", "Skip", id="port-skip"),
    ]

    def __init__(self, primary: str, standby: str, default: str) -> None:
        super().__init__()
        self.primary = primary
        self.standby = standby
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            question = Text("Port of the standby ")
            question.append(name_text(self.standby, 80))
            question.append(" of ")
            question.append(name_text(self.primary, 60))
            question.append(":")
            yield Static(question)
            yield Input(value=self.default, restrict=r"[0-9]*", max_length=5, id="standby-port")
            yield Static(
                "Enter: watch it · Escape: skip it", id="port-status", classes="pane-status"
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#standby-port")
    def chosen(self, event: Input.Submitted) -> None:
        port = event.value.strip()
        if valid_port(port):
            self.dismiss(port)
        else:
            self.query_one("#port-status", Static).update("not a port: 1 to 65535")

    def action_skip(self) -> None:
        self.dismiss(None)
