"""A status line that repaints itself only."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Region
from textual.widget import Widget

from pgtop.widgets.repaint import changed_cells


class StatusLine(Widget):
    """One line of plain text that repaints itself only, never the layout around it, and
    of itself only the cells that changed.

    (``Static.update`` asks for a layout pass, which repaints the whole screen.)
    """

    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = ""

    def set_text(self, text: str) -> None:
        span = changed_cells(self._text, text)
        if span is not None:
            self._text = text
            self.refresh(Region(span[0], 0, span[1] - span[0], 1))

    @property
    def text(self) -> str:
        return self._text

    def render(self) -> Text:
        return Text(self._text, no_wrap=True, overflow="ellipsis")
