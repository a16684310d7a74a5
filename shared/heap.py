"""The garbage collector of a long-running service process: collect rarely, never rescan start-up.

CPython's cyclic collector runs a young collection every 700 new container objects and a full one
every ~100 young ones, and a full one walks every tracked object of the process. A service holds
~100,000 of them from start-up alone (modules, pydantic and FastAPI schemas, Jinja templates,
Babel data) that will never be garbage, and handles a few hundred objects per message, so under
load the collector kept rewalking them: 7 % of a service's CPU in the bench (bench/RESULTS.md),
more as a process's heap grows.

`settle()` (shared.service calls it once the app has started) moves what start-up left into the
permanent generation (`gc.freeze`, not scanned again) and raises the young threshold so the
collector runs ~15 times less often. Garbage that is not cyclic is still freed at once by
reference counting; cyclic garbage waits for at most `YOUNG_THRESHOLD` new objects. Once per
process: a test process starting many apps freezes only its first start-up.
"""

from __future__ import annotations

import gc

# New container objects between young collections (CPython's default: 700). The older
# generations keep their default ratios (10 young per middle, 10 middle per full).
YOUNG_THRESHOLD = 10_000

_settled = False


def settle() -> None:
    """Freeze what start-up allocated and collect less often; later calls do nothing."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()  # start-up's own cyclic garbage goes now, not into the permanent generation
    gc.freeze()
    _, middle, full = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, full)
