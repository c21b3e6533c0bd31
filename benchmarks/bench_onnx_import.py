"""How long `convcost import` takes on a 300-node ONNX model (target: under 1 s), and where the time goes.

    python benchmarks/bench_onnx_import.py

The model is convcost's own export (zero weights) of a 100-block conv / batch norm / ReLU stack at
64x56x56: 301 ONNX nodes, 3.7 M parameters, written to a temporary file. Timed in this process, the
median of 7 runs of the whole import (read the file, shape inference, mapping, writing the spec, and
building and checking it): the figure with the target. Shown beside it: EfficientNet-B0's export (290
nodes, SE blocks and SiLU patterns), and the end-to-end command in a fresh process, which also pays for
Python's start-up and `import onnx` (timed alone too: most of it is the onnx package's own import).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from convcost import loads  # noqa: E402
from convcost.bridges.export_onnx import export_onnx  # noqa: E402
from convcost.bridges.onnx_import import import_onnx  # noqa: E402
from convcost.builder import build_network  # noqa: E402
from convcost.spec import load_spec  # noqa: E402

TARGET_SECONDS = 1.0
RUNS = 7

STACK = "input: 64x56x56\nlayers:\n" + "".join(
    f"  - conv: {{name: conv{k}, out: 64, kernel: 3, padding: 1, bias: false}}\n"
    f"  - batch_norm: {{name: bn{k}}}\n  - relu: {{name: relu{k}}}\n" for k in range(100)) + "  - global_avg_pool\n"


def timed(path: str) -> tuple[float, int]:
    times, nodes = [], 0
    for _ in range(RUNS):
        start = time.perf_counter()
        imported = import_onnx(path)
        times.append(time.perf_counter() - start)
        nodes = imported.onnx_nodes
    return statistics.median(times), nodes


def wall(argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=ROOT)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        stack = os.path.join(tmp, "stack300.onnx")
        with open(stack, "wb") as handle:
            handle.write(export_onnx(loads(STACK, "stack300.yaml")))
        effnet = os.path.join(tmp, "efficientnet_b0.onnx")
        with open(effnet, "wb") as handle:
            handle.write(export_onnx(build_network(load_spec(os.path.join(ROOT, "examples", "efficientnet_b0.yaml")))))
        import_onnx(stack)  # warm: the first call imports onnx's shape inference
        seconds, nodes = timed(stack)
        verdict = "PASS" if seconds < TARGET_SECONDS else "FAIL"
        print(f"import of a {nodes}-node model (in process, median of {RUNS}): {seconds * 1000:.0f} ms "
              f"(target < {TARGET_SECONDS:.0f} s) {verdict}")
        seconds_b0, nodes_b0 = timed(effnet)
        print(f"import of EfficientNet-B0 ({nodes_b0} nodes): {seconds_b0 * 1000:.0f} ms")
        command = wall([sys.executable, "-m", "convcost", "analyze", stack, "--json"])
        onnx_alone = wall([sys.executable, "-c", "import onnx"])
        print(f"`convcost analyze stack300.onnx --json`, fresh process: {command * 1000:.0f} ms, of which "
              f"`python -c 'import onnx'` alone takes {onnx_alone * 1000:.0f} ms")
        return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
