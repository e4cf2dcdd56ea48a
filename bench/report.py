"""What one benchmark run measured (figures, growth, targets), and the
tables and RESULTS.md made of it."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, STACKS

RESULTS = ROOT / "bench" / "RESULTS.md"


# bench/engine.py writes the real engine's figures between these markers;
# regenerating the rest keeps them.
ENGINE_BEGIN, ENGINE_END = "<!-- engine:begin -->", "<!-- engine:end -->"
# bench/pooler.py's section, kept the same way.
POOLER_BEGIN, POOLER_END = "<!-- pooler:begin -->", "<!-- pooler:end -->"


@dataclass
class Figure:
    """One measured quantity at one catalogue size, over several runs."""

    section: str
    name: str
    unit: str
    size: int | None
    values: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def min(self) -> float:
        return float(min(self.values))

    @property
    def max(self) -> float:
        return float(max(self.values))

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "size": self.size,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "runs": len(self.values),
            "values": self.values,
            "note": self.note,
        }


@dataclass(frozen=True)
class Growth:
    """median(figure at `to`) / median(figure at `source`); linear is to/source."""

    section: str
    name: str
    source: int
    to: int
    ratio: float

    @property
    def linear(self) -> float:
        return self.to / self.source

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "from": self.source,
            "to": self.to,
            "ratio": self.ratio,
            "linear": self.linear,
        }


@dataclass(frozen=True)
class Target:
    """A target of issue 8 and whether this run met it (None: not measured)."""

    name: str
    limit: str
    measured: str
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "measured": self.measured, "met": self.met}


@dataclass
class Report:
    """Everything one benchmark run measured."""

    sizes: tuple[int, ...]
    repeat: int
    quick: bool
    timeout: float = 600.0
    figures: list[Figure] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    per_plugin_types: dict[str, dict[str, float]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    date: str = ""
    checked: list[Target] = field(default_factory=list)
    """The targets, checked once every section has run (bench/targets.py)."""

    def add(
        self,
        section: str,
        name: str,
        unit: str,
        size: int | None,
        values: Sequence[float],
        note: str = "",
    ) -> None:
        self.figures.append(Figure(section, name, unit, size, [float(v) for v in values], note))

    def find(self, section: str, name: str, size: int | None) -> Figure | None:
        for figure in self.figures:
            if (figure.section, figure.name, figure.size) == (section, name, size):
                return figure
        return None

    def growths(self) -> list[Growth]:
        """The growth between the two largest sizes of every figure measured
        at two sizes or more (1000 over 200 with the default sizes)."""
        by_figure: dict[tuple[str, str], dict[int, Figure]] = {}
        for figure in self.figures:
            if figure.size is not None:
                by_figure.setdefault((figure.section, figure.name), {})[figure.size] = figure
        found = []
        for (section, name), at in by_figure.items():
            if len(at) < 2:
                continue
            source, to = _growth_pair(sorted(at))
            if at[source].median > 0:
                found.append(Growth(section, name, source, to, at[to].median / at[source].median))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "machine": self.machine,
            "sizes": list(self.sizes),
            "repeat": self.repeat,
            "quick": self.quick,
            "timeout": self.timeout,
            "figures": [figure.as_dict() for figure in self.figures],
            "growth": [growth.as_dict() for growth in self.growths()],
            "resources_per_plugin_by_type": self.per_plugin_types,
            "targets": [target.as_dict() for target in self.checked],
            "problems": [{"section": s, "problem": p} for s, p in self.problems],
        }


def _growth_pair(sizes: list[int]) -> tuple[int, int]:
    """200 -> 1000 when both were measured, else the two largest sizes."""
    if 200 in sizes and 1000 in sizes:
        return 200, 1000
    return sizes[-2], sizes[-1]


def number(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append(
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        )
    return "\n".join(lines)


def figures_table(report: Report) -> str:
    growth: dict[tuple[str, str, int | None], Growth] = {
        (g.section, g.name, g.to): g for g in report.growths()
    }
    rows = []
    for figure in report.figures:
        ratio = growth.get((figure.section, figure.name, figure.size))
        rows.append(
            [
                figure.section,
                figure.name,
                "-" if figure.size is None else str(figure.size),
                number(figure.median),
                number(figure.min),
                number(figure.max),
                figure.unit,
                f"{ratio.ratio:.2f}x ({ratio.to}/{ratio.source})" if ratio else "",
            ]
        )
    return _table(["section", "figure", "size", "median", "min", "max", "unit", "growth"], rows)


def targets_table(report: Report) -> str:
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    rows = [[t.name, t.limit, t.measured, verdict[t.met]] for t in report.checked]
    return _table(["target", "limit", "measured (median)", ""], rows)


def per_plugin_table(report: Report) -> str:
    kinds = sorted({kind for types in report.per_plugin_types.values() for kind in types})
    rows = [
        [kind, *(number(report.per_plugin_types.get(stack, {}).get(kind, 0)) for stack in STACKS)]
        for kind in kinds
    ]
    return _table(["resource type", *STACKS], rows)


def text_report(report: Report) -> str:
    parts = [figures_table(report), "", targets_table(report)]
    if report.problems:
        parts += ["", *(f"problem: {section}: {problem}" for section, problem in report.problems)]
    return "\n".join(parts) + "\n"


def markdown_report(report: Report, command: str) -> str:
    machine = report.machine
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{command}` on {report.date}; see [docs/bench.md](../docs/bench.md)",
        "for what each figure means. Regenerate with `python bench/run.py --write`.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} cores",
        f"- Python {machine.get('python', '?')} on {machine.get('platform', '?')}",
        f"- PostgreSQL {machine.get('postgresql', '?')} (the tests' wheel, local TCP, fsync off)",
        f"- Pulumi SDK {machine.get('pulumi', '?')} (mocks; no engine, no providers)",
        "",
        "## Figures",
        "",
        f"Median of {report.repeat} run(s), with min and max. Growth: median at the",
        "largest size over the median at the one before (1000/200; linear is 5x).",
        "",
        figures_table(report),
        "",
        "## Targets",
        "",
        targets_table(report),
        "",
    ]
    if report.per_plugin_types:
        lines += [
            "## Resources per plugin, by type",
            "",
            "How many of each registered resource one more plugin adds.",
            "",
            per_plugin_table(report),
            "",
        ]
    if report.problems:
        lines += ["## Not measured", ""]
        lines += [f"- {section}: {problem}" for section, problem in report.problems]
        lines.append("")
    return "\n".join(lines)


def engine_section() -> str:
    """The figures bench/engine.py and bench/pooler.py last wrote, if any."""
    current = RESULTS.read_text() if RESULTS.exists() else ""
    kept = ""
    for begin, end in ((ENGINE_BEGIN, ENGINE_END), (POOLER_BEGIN, POOLER_END)):
        if begin in current and end in current:
            kept += "\n" + begin + current.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
    return kept


def write_section(text: str, begin: str, end: str) -> None:
    """Replace the section between `begin` and `end` in RESULTS.md with `text`.

    The engine and pooler benchmarks each own one marked section, so one
    can be re-run without losing the other's figures; a file without the
    markers gets the section appended.
    """
    current = RESULTS.read_text()
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + text + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(current)


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": _postgresql_version(),
    }
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        info["pulumi"] = version("pulumi")
    return info


def _postgresql_version() -> str:
    try:
        from tests.pgserver import _bin_dir

        output = subprocess.run(
            [str(_bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError, ImportError):
        return "unknown"
    return output.strip().rsplit(" ", 1)[-1]
