"""naap-db at scale: how long the program, the plan, the push, verify and a
rotation take as the plugin catalogue grows, measured the way a user (or CI)
runs them, without the Pulumi CLI or Docker; and what one noisy plugin
costs its neighbours under the limits.

    python bench/run.py [--json] [--write] [--sizes 8,50,200,1000] [--repeat N] [--quick]

Every figure is the median of `--repeat` runs, with min and max; each figure
measured at several catalogue sizes also gets its growth ratio between the
two largest sizes (1000/200 by default; linear growth is 1000/200 = 5).
`--write` regenerates `bench/RESULTS.md`. The real PostgreSQL comes from the
test dependencies (`tests/pgserver.py`), AWS from moto, in process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder is first on sys.path, where its modules (plan,
# push, limits, ...) would shadow top-level modules of those names: the
# checkout takes its place, so `bench`, `naapdb` and `tests` import from it.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import DEFAULT_REPEAT, DEFAULT_SIZES  # noqa: E402
from bench.limits import bench_limits  # noqa: E402
from bench.plan import bench_plan  # noqa: E402
from bench.program import WORKER_MEMORY_LIMIT, bench_program, program_worker  # noqa: E402
from bench.push import bench_push  # noqa: E402
from bench.report import (  # noqa: E402
    RESULTS,
    Report,
    engine_section,
    machine_info,
    markdown_report,
    text_report,
)
from bench.rotation import QUICK_ROTATIONS, bench_rotation  # noqa: E402
from bench.targets import targets  # noqa: E402
from bench.verify import bench_verify  # noqa: E402

SECTIONS: dict[str, Callable[[Report], None]] = {
    "program": bench_program,
    "plan": bench_plan,
    "push": bench_push,
    "verify": bench_verify,
    "rotation": bench_rotation,
    "limits": bench_limits,
}


def run_benchmarks(
    sizes: tuple[int, ...],
    repeat: int,
    quick: bool,
    only: Sequence[str] = (),
    timeout: float = 600.0,
) -> Report:
    report = Report(sizes=sizes, repeat=repeat, quick=quick, timeout=timeout)
    report.date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report.machine = machine_info()
    for name, section in SECTIONS.items():
        if only and name not in only:
            continue
        try:
            section(report)
        except Exception as error:
            report.problems.append((name, f"{type(error).__name__}: {error}"))
            traceback.print_exc(file=sys.stderr)
    report.checked = targets(report)
    return report


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers, e.g. 8,50,200,1000")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--write", action="store_true", help="regenerate bench/RESULTS.md")
    parser.add_argument(
        "--sizes", type=_sizes, default=DEFAULT_SIZES, help="plugin counts, default 8,50,200,1000"
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="runs per figure (default 3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer rotations ({QUICK_ROTATIONS}) and no-op pushes: checks the benchmark works",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds one program evaluation may take (default 600); larger sizes are then skipped",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--worker", choices=("program",), help=argparse.SUPPRESS)
    parser.add_argument("--stack", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker == "program":
        # A catalogue that makes the program blow up must not take the
        # (shared) machine down with it: a MemoryError ends the run instead.
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
        print(json.dumps(program_worker(args.stack, args.size)))
        return 0
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    only = [part for part in args.only.split(",") if part]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        print(f"error: --only: unknown section(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    report = run_benchmarks(args.sizes, args.repeat, args.quick, only, args.timeout)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        sys.stdout.write(text_report(report))
    if args.write:
        command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        RESULTS.write_text(markdown_report(report, command.strip()) + engine_section())
        print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
