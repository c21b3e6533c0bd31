"""Benchmark: a 1,000,000-point single-layer bottleneck sweep against the scalar engine.

The grid is the classic layer (192x28x28 -> 32 channels, 5x5, ``same``) over
1000 bottleneck widths x 5 kernel sizes (1, 3, 5, 7, 9) x 200 input resolutions
(7..206) = 1,000,000 points. Measured in one run:

* ``sweep_layer_end_to_end``: :func:`convcost.sweep.sweep_layer` (grid setup,
  counts, Pareto front), best of ``REPEATS``; the issue's limit is 1 s on one core;
* ``sweep_layer_core``: the closed-form counts alone (:func:`convcost.sweep._layer_core`);
* ``scalar_engine``: the scalar path (one-layer network -> insert_bottlenecks ->
  analyze) on ``SAMPLE`` random grid points, per point and extrapolated to the
  grid, with the vectorised sweep's speed-up over it;
* ``sweep_equals_scalar``: those sampled points compared metric by metric.

    python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import os
import random
import sys
import time
from typing import Any

try:
    import convcost  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

__all__ = ["run"]

WIDTHS = list(range(1, 1001))
KERNELS = [1, 3, 5, 7, 9]
RESOLUTIONS = list(range(7, 207))
POINTS = len(WIDTHS) * len(KERNELS) * len(RESOLUTIONS)
LIMIT_SECONDS = 1.0
REPEATS = 5
SAMPLE = 300
SEED = 4


def _layer() -> Any:
    from convcost import loads

    return loads("input: 192x28x28\nlayers:\n  - conv: {name: conv5x5, out: 32, kernel: 5, padding: same}\n").nodes[0]


def _best(function: Any, repeats: int = REPEATS) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def _scalar_point(kernel: int, resolution: int, width: int) -> Any:
    from convcost import analyze, loads
    from convcost.bottleneck import BottleneckRule, insert_bottlenecks

    network = loads(f"input: 192x{resolution}x{resolution}\nlayers:\n"
                    f"  - conv: {{name: conv5x5, out: 32, kernel: {kernel}, padding: same}}\n")
    # The layer is the sweep's target, so the rewrite includes it although it is the network's first conv.
    return analyze(insert_bottlenecks(network, BottleneckRule(width=width, include_first=True))).totals


def run() -> list[dict[str, Any]]:
    import numpy as np

    from convcost.sweep import METRICS, _layer_core, sweep_layer

    node = _layer()
    layer = node.layer

    def end_to_end() -> Any:
        return sweep_layer(layer, node.input_shape, WIDTHS, kernels=KERNELS, resolutions=RESOLUTIONS)

    seconds, result = _best(end_to_end)
    assert len(result) == POINTS

    # The core alone: the same closed forms on arrays prepared outside the timer.
    s_in = np.repeat(np.array([r * r for r in RESOLUTIONS], dtype=np.int64), len(KERNELS))[:, None]
    kvol = np.tile(np.array([k * k for k in KERNELS], dtype=np.int64), len(RESOLUTIONS))[:, None]
    widths = np.array(WIDTHS, dtype=np.int64)[None, :]
    core_seconds, _ = _best(lambda: _layer_core(192, 32, 1, False, s_in, s_in, kvol, widths))

    rng = random.Random(SEED)
    sample = [rng.randrange(POINTS) for _ in range(SAMPLE)]
    start = time.perf_counter()
    scalar = [_scalar_point(int(result.point(i)["kernel"]), result.point(i)["resolution"], result.point(i)["width"])
              for i in sample]
    scalar_seconds = time.perf_counter() - start
    per_point = scalar_seconds / SAMPLE
    mismatches = sum(1 for i, totals in zip(sample, scalar)
                     for metric in METRICS if result.point(i)[metric] != getattr(totals, metric))
    return [
        {"name": "sweep_layer_end_to_end", "points": POINTS, "seconds": seconds, "limit_seconds": LIMIT_SECONDS,
         "points_per_second": POINTS / seconds, "passed": seconds < LIMIT_SECONDS},
        {"name": "sweep_layer_core", "points": POINTS, "seconds": core_seconds,
         "points_per_second": POINTS / core_seconds},
        {"name": "scalar_engine", "points": SAMPLE, "seconds": scalar_seconds, "seconds_per_point": per_point,
         "extrapolated_grid_seconds": per_point * POINTS, "speedup_of_sweep": per_point * POINTS / seconds},
        {"name": "sweep_equals_scalar", "points": SAMPLE, "metrics": len(METRICS), "mismatches": mismatches,
         "passed": mismatches == 0},
    ]


def main() -> int:
    results = run()
    for row in results:
        details = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                            for key, value in row.items() if key != "name")
        print(f"{row['name']}: {details}")
    return 0 if all(row.get("passed", True) for row in results) else 1


if __name__ == "__main__":
    sys.exit(main())
