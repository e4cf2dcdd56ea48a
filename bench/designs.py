"""The designs issue 23 weighs, measured on the real engine: the four
operations of bench/engine.py for Pulumi, with the stack as it is but an
engine setting or a program change applied to the copy the benchmark runs
(never to the checkout).

    python bench/designs.py [--sizes 50,200] [--designs checkpoints,...] [--json FILE]

Designs (`as-is` measures the stack as the project runs it, in the same
run: since issue 23 that skips intermediate checkpoints, as tests/engine.py's
environment and the README's setup do):

- `checkpoints`: PULUMI_SKIP_CHECKPOINTS=false, the engine saves the whole
  snapshot after every step (Pulumi's default; prod's updates keep it);
- `skip-checkpoints`: PULUMI_SKIP_CHECKPOINTS=true, the engine writes the
  snapshot once, at the end, instead of after every step (what `as-is` is);
- `no-backups`: with checkpoints, PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS=true:
  the file backend stops copying the previous checkpoint before each write;
- `one-frame`: with checkpoints, the program sends each resource's source
  position only, not the whole Python stack the SDK records (about half of
  every resource's bytes in the snapshot), by wrapping
  `pulumi.runtime.resource._get_stack_trace` in the copy's `__main__.py`;
- `skip-checkpoints+one-frame`: both.

docs/bench.md records what they gave and the choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder is first on sys.path (see bench/run.py).
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import exit_on_sigterm  # noqa: E402
from bench.engine import OPERATIONS, measure_pulumi, serve  # noqa: E402
from bench.variants import DESIGNS, apply_design  # noqa: E402
from tests.engine import make_project, missing_engine_reason  # noqa: E402
from tests.pgserver import cluster_factory  # noqa: E402


def run(sizes: Sequence[int], designs: Sequence[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with cluster_factory() as factory, tempfile.TemporaryDirectory() as scratch:
        for plugins in sizes:
            for design in designs:
                server = serve(factory, plugins)
                base = Path(scratch) / f"{design}-{plugins}"
                project = make_project(base, server, ROOT / "venv")
                apply_design(project, design)
                row = {"plugins": plugins, "design": design, **measure_pulumi(project, plugins)}
                server.stop()
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/designs.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="50,200", help="plugin counts (default 50,200)")
    parser.add_argument("--designs", default=",".join(DESIGNS), help="which (default all)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    designs = [design for design in args.designs.split(",") if design]
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown:
        print(f"error: --designs: unknown {', '.join(unknown)}", file=sys.stderr)
        return 2
    reason = missing_engine_reason()
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    exit_on_sigterm()
    rows = run([int(size) for size in args.sizes.split(",") if size], designs)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print("| plugins | design | up | add one | no-op preview | preview --refresh |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        cells = [f"{row[op]:.1f} ({row[op + ' cpu']:.1f} CPU)" for op in OPERATIONS]
        print(f"| {row['plugins']} | {row['design']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
