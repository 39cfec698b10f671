"""What pgtop says about plans and the statements it runs to make them, without a server."""

from __future__ import annotations

from dataclasses import replace

from pgtop import sql
from pgtop.collectors.plans import QueryPlan, plan_obstacle, unexplainable
from pgtop.collectors.statements import Counters, Statement, is_own, planning_prefixes
from pgtop.widgets.plan import plan_text

STATEMENT = Statement(
    userid=10,
    dbid=5,
    toplevel=True,
    queryid=1,
    user="alice",
    database="shop",
    counters=Counters(*([0] * len(Counters._fields))),
)


def test_a_statement_of_a_dropped_role_is_not_planned() -> None:
    assert plan_obstacle(STATEMENT, "SELECT 1", "shop") == ""
    dropped = replace(STATEMENT, user=None)
    assert "role that ran it was dropped" in plan_obstacle(dropped, "SELECT 1", "shop")


def test_what_prepare_does_not_take_is_refused_before_asking() -> None:
    assert unexplainable("WITH x AS (SELECT 1) SELECT * FROM x") == ""
    assert unexplainable("/* x */ CREATE UNLOGGED TABLE t AS SELECT 1").startswith(
        "CREATE TABLE AS is not planned"
    )
    assert unexplainable("create materialized view v as select 1").startswith(
        "CREATE TABLE AS is not planned"
    )
    assert unexplainable("EXECUTE p(1)").startswith("EXECUTE statements have no plan")


def test_the_plan_says_as_which_role_and_whether_it_is_generic() -> None:
    generic = plan_text(
        QueryPlan(("Index Scan", "  Index Cond: (id = $1)"), role="alice", parameters=2)
    )
    assert generic.plain.splitlines() == [
        "planned as role alice, the role that ran it; a generic plan: its 2 parameters "
        "($1, …) planned without values",
        "Index Scan",
        "  Index Cond: (id = $1)",
    ]
    note = generic.spans[0]
    assert (note.start, note.style) == (0, "italic")
    assert generic.plain[note.end :] == "Index Scan\n  Index Cond: (id = $1)"  # not italic
    plain = plan_text(QueryPlan(("Seq Scan on t",), role="alice"))
    assert plain.plain.splitlines()[0] == "planned as role alice, the role that ran it"
    # A role name is server text: shown literally, control characters made visible.
    hostile = plan_text(QueryPlan(("Result",), role="[bold]x\x1b[2J"))
    assert "[bold]x\\e[2J" in hostile.plain
    assert "\x1b" not in hostile.plain


def test_what_pgtop_runs_as_another_role_is_known_as_its_own() -> None:
    prefixes = planning_prefixes()
    assert len(prefixes) == len(sql.AS_STATEMENT_ROLE)
    assert all("pgtop_" in prefix for prefix in prefixes), prefixes
    reach = 'CREATE FUNCTION pg_temp.pgtop_reach("pg_catalog"."int4") RETURNS void LANGUAGE sql'
    assert is_own(STATEMENT, reach, "pgtop")
    assert is_own(STATEMENT, 'EXPLAIN EXECUTE "pgtop_planned_12"(NULL)', "pgtop")
    # Another role's statement that merely starts like one of pgtop's is not pgtop's.
    assert not is_own(STATEMENT, "SELECT pg_catalog.set_config($1, $2, $3)", "pgtop")
