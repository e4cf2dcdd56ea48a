"""The targets of the mocks benchmark (issue 8), checked against a run's medians."""

from __future__ import annotations

from collections.abc import Callable

from bench.common import STACKS
from bench.report import Figure, Report, Target, number


def targets(report: Report) -> list[Target]:
    """Issue 8's targets, checked against this run's medians."""
    found: list[Target] = []

    def check(
        name: str, limit: str, figure: Figure | None, ok: Callable[[float], bool], unit: str = "s"
    ) -> None:
        if figure is None:
            found.append(Target(name, limit, "not measured", None))
        else:
            found.append(Target(name, limit, f"{number(figure.median)} {unit}", ok(figure.median)))

    growth = {(g.section, g.name): g for g in report.growths()}
    for stack in STACKS:
        section = f"program {stack}"
        check(
            f"{stack} program, 200 plugins",
            "< 5 s",
            report.find(section, "evaluation", 200),
            lambda v: v < 5,
        )
        ratio = growth.get((section, "evaluation"))
        if ratio is None or (ratio.source, ratio.to) != (200, 1000):
            found.append(
                Target(f"{stack} program growth 200 -> 1000", "<= 5.5x", "not measured", None)
            )
        else:
            found.append(
                Target(
                    f"{stack} program growth 200 -> 1000",
                    "<= 5.5x",
                    f"{ratio.ratio:.2f}x",
                    ratio.ratio <= 5.5,
                )
            )
        check(
            f"{stack} resources per plugin",
            "<= 20",
            report.find(section, "resources per plugin", None),
            lambda v: v <= 20,
            unit="",
        )
    check(
        "`plan --format sql`, 1000 plugins",
        "< 2 s",
        report.find("plan", "`plan --format sql` (CLI)", 1000),
        lambda v: v < 2,
    )
    check("plan_to_sql, 1000 plugins", "< 2 s", report.find("plan", "sql", 1000), lambda v: v < 2)
    queries = [
        f.median for f in report.figures if f.section == "verify" and f.name == "queries sent"
    ]
    if queries:
        found.append(
            Target(
                "verify queries, constant in the catalogue",
                "same at every size",
                ", ".join(number(q) for q in queries),
                len(set(queries)) == 1,
            )
        )
    else:
        found.append(
            Target(
                "verify queries, constant in the catalogue",
                "same at every size",
                "not measured",
                None,
            )
        )
    check("verify, 1000 schemas", "< 2 s", report.find("verify", "verify", 1000), lambda v: v < 2)
    check(
        "`python -m naapdb verify`, 1000 schemas",
        "< 2 s",
        report.find("verify", "`python -m naapdb verify` (CLI)", 1000),
        lambda v: v < 2,
    )
    check("no-op push", "< 0.3 s", report.find("push", "no-op push", None), lambda v: v < 0.3)
    check(
        "no-op `python -m naapdb push` (CLI)",
        "< 0.3 s",
        report.find("push", "no-op `python -m naapdb push` (CLI)", None),
        lambda v: v < 0.3,
    )
    check(
        "failed connections during rotations",
        "0",
        report.find("rotation", "failed connections", None),
        lambda v: v == 0,
        unit="",
    )
    check(
        "failures elsewhere while one plugin is at its limits",
        "0",
        report.find("limits", "failures elsewhere", None),
        lambda v: v == 0,
        unit="",
    )
    check(
        "connections refused past a plugin's limit",
        "all 5",
        report.find("limits", "noisy connections refused", None),
        lambda v: v == 5,
        unit="",
    )
    return found
