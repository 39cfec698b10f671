"""A query plan as shown in a statement's and a session's detail."""

from __future__ import annotations

from rich.text import Text

from pgtop.collectors.plans import QueryPlan
from pgtop.text import name_text, visible


def plan_text(plan: QueryPlan, whose: str = "the role that ran it") -> Text:
    """A plan under a note saying how it was made: as which role (``whose`` it is), generic
    or not."""
    note = f"planned as role {name_text(plan.role, 64)}, {whose}"
    if plan.parameters:
        count = "1 parameter" if plan.parameters == 1 else f"{plan.parameters} parameters"
        note += f"; a generic plan: its {count} ($1, …) planned without values"
    body = Text()
    body.append(note + "\n", style="italic")
    body.append(visible("\n".join(plan.lines)))
    return body
