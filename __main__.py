"""naap-db: settings -> NaapDatabase -> stack outputs."""

import gc

from components.database import NaapDatabase, export_outputs
from components.settings import load_settings

# Every resource holds a dozen Outputs and futures until the program ends, so
# CPython's collector, run every 700 allocations, mostly rescans live objects:
# 40% of a 200-plugin run, and growing faster than the catalogue (see
# docs/bench.md). Young garbage is collected every 100,000 allocations, and
# the full scans of what is still alive become rare.
gc.set_threshold(100_000, 50, 100)

export_outputs(NaapDatabase("naap", load_settings()))
