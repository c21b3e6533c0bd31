"""convcost's benchmark suite: one command, a table of every figure beside its target.

    python benchmarks/run.py            # about 1-2 minutes on 2 cores
    python benchmarks/run.py --stages   # also where the time of a 100,000-layer spec goes

Every child process is pinned to one CPU and timed from outside (wall clock,
and user + system CPU and peak RSS from the kernel's ``wait4`` accounting).
Baselines run in the same session, interleaved with the runs they are compared
against; each figure is the median of several runs. Children get compiled
bytecode as an installed package would (``PYTHONPYCACHEPREFIX`` in a temporary
directory, so nothing is written into the repository).

a. start-up: ``python -m convcost analyze examples/resnet50.yaml --json`` against
   ``python -c "import typer, rich.table, yaml"`` (target ratio <= 1.35). Shown
   for information: a minimal typer command with one argument, which pays for
   what typer itself imports to parse arguments.
b. scale: generated specs (benchmarks/gen_specs.py) of 1,000 / 10,000 / 100,000
   layers, plain stacks and nested residual/concat; 10,000 layers in under 2 s
   of CPU for the whole process, and 10x the layers at most 12x the time of the
   work after start-up (the median over rounds of the ratio within a round).
   100,000 layers are reported without a target.
c. sweep: the rows of benchmarks/bench_sweep.py (>= 1e6 points/s end to end,
   identical to the scalar engine).
d. memory: peak RSS of the start-up run in (a), target < 40 MiB.
e. with ``--table``: the table format against JSON at 10,000 and 100,000 layers
   (benchmarks/bench_table.py; table within 3x JSON, linear in the rows).
f. with ``--completion``: start-up with and without typer's shell completion
   (``--install-completion``/``--show-completion``), target < 10 ms extra.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import gen_specs  # noqa: E402  (benchmarks/gen_specs.py, next to this file)

STARTUP_TARGET = 1.35
SCALE_SECONDS_TARGET = 2.0  # whole process at SCALE_TARGET_LAYERS
SCALE_TARGET_LAYERS = 10_000
SCALE_RATIO_TARGET = 12.0
SWEEP_END_TO_END_TARGET = 1e6
RSS_TARGET_MIB = 40.0
SWEEP_SECONDS = 15.0  # about what section c takes
BUDGET_SECONDS = 240.0  # a 100,000-layer repeat is skipped when it would end the run past this

FLOOR = "import typer, rich.table, yaml"

TYPER_APP = '''\
import typer

app = typer.Typer(add_completion=False)


@app.command()
def analyze(spec: str, as_json: bool = typer.Option(False, "--json")) -> None:
    print(spec)


@app.callback()
def root() -> None:
    pass


app()
'''

# Runs in the child: one warm-up invocation on a one-layer spec (typer imports what it
# needs to parse arguments on first use), then the timed invocation of the real CLI entry.
WORK = '''\
import json, os, sys, time
tiny, spec = sys.argv[1], sys.argv[2]
from convcost.cli import main

def invoke(path):
    sys.argv = ["convcost", "analyze", path, "--json"]
    try:
        main()
    except SystemExit as exit:
        return exit.code
    return 0

invoke(tiny)
cpu, wall = time.process_time(), time.perf_counter()
code = invoke(spec)
sys.stdout.flush()
sys.stderr.write(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                             "code": code}) + "\\n")
'''

STAGES = '''\
import json, os, sys, time
from convcost.spec import load_spec
from convcost.builder import build_network
from convcost.costs import analyze
from convcost.figures import with_figures
from convcost.render.analysis import report_dict
from convcost.render.common import json_chunks
clock = time.process_time
times = {}
start = clock(); spec = load_spec(sys.argv[1]); times["load (YAML -> located tree)"] = clock() - start
start = clock(); network = build_network(spec); times["build (shapes, names)"] = clock() - start
del spec
start = clock(); report = analyze(network); times["analyze (costs, peak schedule)"] = clock() - start
start = clock(); report = with_figures(network, report)
times["figures (training, receptive fields, taps)"] = clock() - start
del network
sink = open(os.devnull, "w")
start = clock()
for chunk in json_chunks(report_dict(report)):
    sink.write(chunk)
times["JSON (block subtotals, text written)"] = clock() - start
sys.stderr.write(json.dumps(times) + "\\n")
'''

CALIBRATE = "import time\nstart = time.process_time()\ntotal = 0\nfor i in range(10_000_000):\n    total += i\n" \
            "import sys; sys.stderr.write(str(time.process_time() - start))\n"


# --------------------------------------------------------------------------- processes


class Child:
    """One finished child process: wall seconds, CPU seconds (user + system), peak RSS, stderr."""

    def __init__(self, wall: float, cpu: float, rss_mib: float, code: int, stderr: str):
        self.wall, self.cpu, self.rss_mib, self.code, self.stderr = wall, cpu, rss_mib, code, stderr


def _pin(cpu: int) -> Any:
    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin if hasattr(os, "sched_setaffinity") else None


def run_child(argv: list[str], env: dict[str, str], cpu: int, cwd: str = ROOT) -> Child:
    """Run ``argv`` pinned to ``cpu``; stdout is discarded (a 100,000-layer report is ~50 MB)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=_pin(cpu))
    assert process.stderr is not None
    stderr = process.stderr.read().decode("utf-8", "replace")
    process.stderr.close()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"benchmark child failed ({code}): {' '.join(argv)}\n{stderr}")
    # ru_maxrss is in KiB on Linux.
    return Child(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code, stderr)


def child_env(pycache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("NO_COLOR", "1")
    return env


def median(values: list[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------- figures


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, figure: str, measured: str, target: str = "", passed: bool | None = None) -> None:
        verdict = "" if passed is None else ("PASS" if passed else "FAIL")
        self.rows.append((figure, measured, target, verdict))

    def section(self, title: str) -> None:
        self.rows.append((title, "", "", ""))

    def text(self) -> str:
        header = ("figure", "measured", "target", "")
        widths = [max(len(row[i]) for row in [header, *self.rows] if any(row[1:])) for i in range(4)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths)).rstrip(),
                 "  ".join("-" * width for width in widths)]
        for row in self.rows:
            if not any(row[1:]):
                lines.append(row[0])
            else:
                lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        return "\n".join(lines)


def startup(table: Table, env: dict[str, str], cpu: int, tmp: str, runs: int, spec: str) -> None:
    app = os.path.join(tmp, "typer_floor.py")
    with open(app, "w", encoding="utf-8") as handle:
        handle.write(TYPER_APP)
    commands = {
        "floor": [sys.executable, "-c", FLOOR],
        "typer": [sys.executable, app, "analyze", spec, "--json"],
        "ours": [sys.executable, "-m", "convcost", "analyze", spec, "--json"],
    }
    for argv in commands.values():  # warm-up: compile bytecode, fill the page cache
        run_child(argv, env, cpu)
    results: dict[str, list[Child]] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(runs):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:  # rotate the order
            results[name].append(run_child(commands[name], env, cpu))
    wall = {name: median([c.wall for c in children]) for name, children in results.items()}
    cpu_time = {name: median([c.cpu for c in children]) for name, children in results.items()}
    rss = {name: median([c.rss_mib for c in children]) for name, children in results.items()}
    ratio = wall["ours"] / wall["floor"]
    spec_name = os.path.relpath(spec, ROOT) if spec.startswith(ROOT) else os.path.basename(spec)
    table.section(f"a. start-up ({runs} interleaved runs each, medians, one core)")
    table.add(f'floor: python -c "{FLOOR}"', f"{wall['floor'] * 1e3:.0f} ms wall, {cpu_time['floor'] * 1e3:.0f} ms CPU")
    table.add(f"convcost analyze {spec_name} --json", f"{wall['ours'] * 1e3:.0f} ms wall, {cpu_time['ours'] * 1e3:.0f} ms CPU")
    table.add("  ratio to floor (wall)", f"{ratio:.2f}x", f"<= {STARTUP_TARGET}x", ratio <= STARTUP_TARGET)
    table.add("  info: minimal typer command, one argument", f"{wall['typer'] * 1e3:.0f} ms wall "
              f"({wall['typer'] / wall['floor']:.2f}x floor: typer's own argument parsing)")
    table.add("  info: ratio to that typer command (wall)", f"{wall['ours'] / wall['typer']:.2f}x")
    table.section("d. memory (peak RSS of the start-up run, from wait4)")
    table.add(f"convcost analyze {spec_name} --json", f"{rss['ours']:.1f} MiB (max {max(c.rss_mib for c in results['ours']):.1f})",
              f"< {RSS_TARGET_MIB:.0f} MiB", max(c.rss_mib for c in results["ours"]) < RSS_TARGET_MIB)
    table.add("  info: floor / typer command", f"{rss['floor']:.1f} / {rss['typer']:.1f} MiB")


def scale(table: Table, env: dict[str, str], cpu: int, tmp: str, runs: int, started: float) -> dict[str, Any]:
    paths = gen_specs.write_specs(os.path.join(tmp, "specs"))
    tiny = os.path.join(tmp, "tiny.yaml")
    with open(tiny, "w", encoding="utf-8") as handle:
        handle.write("input: 3x8x8\nlayers:\n  - conv: {out: 4, kernel: 3}\n")
    results: dict[tuple[str, int], list[tuple[Child, dict[str, float]]]] = {key: [] for key in paths}
    calibration: list[float] = []
    for round_ in range(runs):
        calibration.append(float(run_child([sys.executable, "-c", CALIBRATE], env, cpu).stderr))
        for key in paths:
            kind, size = key
            done = results[key]
            if done and size == max(gen_specs.SIZES) and \
                    time.perf_counter() - started + done[-1][0].wall + SWEEP_SECONDS > BUDGET_SECONDS:
                continue  # keep the whole benchmark under two minutes
            child = run_child([sys.executable, "-c", WORK, tiny, paths[key]], env, cpu)
            results[key].append((child, json.loads(child.stderr.strip().splitlines()[-1])))
    table.section(f"b. scale (generated specs; whole process and work after start-up, CPU on one core; "
                  f"medians of up to {runs} runs)")
    for kind in gen_specs.KINDS:
        work: dict[int, float] = {}
        for size in gen_specs.SIZES:
            runs_here = results[(kind, size)]
            process = median([child.cpu for child, _ in runs_here])
            work[size] = median([inner["cpu"] for _, inner in runs_here])
            wall = median([child.wall for child, _ in runs_here])
            rss = median([child.rss_mib for child, _ in runs_here])
            label = f"{kind} {size:>7,} layers (n={len(runs_here)})"
            measured = (f"{process:.2f} s process, {work[size]:.2f} s work, {wall:.2f} s wall, "
                        f"{size / work[size]:,.0f} layers/s, {rss:.0f} MiB")
            if size == SCALE_TARGET_LAYERS:
                table.add(label, measured, f"< {SCALE_SECONDS_TARGET:.0f} s process", process < SCALE_SECONDS_TARGET)
            else:
                table.add(label, measured)
        sizes = sorted(work)
        for small, big in zip(sizes, sizes[1:]):
            # Each round runs every size one after another, so a round's two runs saw about the
            # same machine load: the median of the per-round ratios is steadier on a shared machine
            # than the ratio of the medians (shown too), whose small runs last only tens of ms.
            ratios = [big_run["cpu"] / small_run["cpu"]
                      for (_, small_run), (_, big_run) in zip(results[(kind, small)], results[(kind, big)])]
            ratio = median(ratios)
            table.add(f"  {kind}: work({big:,}) / work({small:,})",
                      f"{ratio:.1f}x for {big // small}x layers (median of {len(ratios)} same-round ratios; "
                      f"ratio of medians {work[big] / work[small]:.1f}x)",
                      f"<= {SCALE_RATIO_TARGET:.0f}x", ratio <= SCALE_RATIO_TARGET)
    table.add("  info: machine speed, 10M-iteration Python loop", f"{median(calibration):.2f} s CPU")
    return paths


def stages(table: Table, env: dict[str, str], cpu: int, paths: dict[tuple[str, int], str]) -> None:
    largest = max(gen_specs.SIZES)
    table.section(f"stages of a {largest:,}-layer spec (CPU s, one run, library calls as the CLI makes them)")
    for kind in gen_specs.KINDS:
        child = run_child([sys.executable, "-c", STAGES, paths[(kind, largest)]], env, cpu)
        times = json.loads(child.stderr.strip().splitlines()[-1])
        for name, seconds in times.items():
            table.add(f"  {kind}: {name}", f"{seconds:.2f} s CPU")


SWEEP_CHILD = '''\
import json, sys
sys.path.insert(0, sys.argv[1])
import bench_sweep
sys.stderr.write(json.dumps(bench_sweep.run()) + "\\n")
'''


def sweep(table: Table, env: dict[str, str], cpu: int) -> None:
    table.section("c. sweep (benchmarks/bench_sweep.py, its own repeats: best of several)")
    if not os.path.exists(os.path.join(HERE, "bench_sweep.py")):
        table.add("sweep: not available", "benchmarks/bench_sweep.py is missing", "", False)
        return
    try:
        child = run_child([sys.executable, "-c", SWEEP_CHILD, HERE], env, cpu)
        rows = json.loads(child.stderr.strip().splitlines()[-1])
    except (SystemExit, ValueError, IndexError) as exc:
        table.add("sweep: not available", f"bench_sweep.run() failed: {str(exc).splitlines()[0]}", "", False)
        return
    for row in rows:
        name = row.get("name", "?")
        if name == "sweep_layer_end_to_end":
            rate = row["points_per_second"]
            table.add(f"  end to end, {row['points']:,} points", f"{rate:,.0f} points/s ({row['seconds']:.3f} s)",
                      f">= {SWEEP_END_TO_END_TARGET:,.0f}/s", rate >= SWEEP_END_TO_END_TARGET)
        elif name == "sweep_layer_core":
            rate = row["points_per_second"]
            table.add("  info: vectorised core", f"{rate:,.0f} points/s ({row['seconds']:.4f} s)")
        elif name == "sweep_equals_scalar":
            table.add(f"  identical to the scalar engine ({row['points']} sampled points x {row['metrics']} metrics)",
                      f"{row['mismatches']} mismatches", "0", row["mismatches"] == 0)
        elif name == "scalar_engine":
            table.add("  info: scalar engine", f"{row['seconds_per_point'] * 1e3:.2f} ms/point; the sweep is "
                      f"{row['speedup_of_sweep']:,.0f}x faster")
        else:
            table.add(f"  info: {name}", ", ".join(f"{k}={v}" for k, v in row.items() if k != "name"))


# Runs in the child: the CLI on one spec with typer's completion options on (as shipped) or off.
COMPLETION_CHILD = '''\
import sys
from convcost.cli import app
if sys.argv[1] == "off":
    app._add_completion = False
sys.argv = ["convcost", "analyze", sys.argv[2], "--json"]
from convcost.cli import main
try:
    main()
except SystemExit:
    pass
'''
COMPLETION_TARGET_MS = 10.0


def completion(table: Table, env: dict[str, str], cpu: int, tmp: str, runs: int, spec: str) -> None:
    """Whole-process CPU of analyze --json with completion on and off, interleaved; the median difference."""
    on: list[float] = []
    off: list[float] = []
    for _ in range(runs):
        on.append(run_child([sys.executable, "-c", COMPLETION_CHILD, "on", spec], env, cpu).cpu)
        off.append(run_child([sys.executable, "-c", COMPLETION_CHILD, "off", spec], env, cpu).cpu)
    extra = (median(on) - median(off)) * 1000
    differences = sorted((a - b) * 1000 for a, b in zip(on, off))
    table.section(f"f. shell completion (analyze --json, whole process CPU, {runs} interleaved pairs)")
    table.add("  completion on - off", f"{extra:+.1f} ms (on {median(on) * 1000:.0f} ms, off {median(off) * 1000:.0f} "
              f"ms; pairwise median {median(differences):+.1f} ms)", f"< {COMPLETION_TARGET_MS:.0f} ms",
              extra < COMPLETION_TARGET_MS)


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} "
            f"usable), {model}; Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="interleaved start-up runs (default 9)")
    parser.add_argument("--scale-runs", type=int, default=5,
                        help="runs per scale point (default 5; fewer at 100,000 layers when time runs short)")
    parser.add_argument("--stages", action="store_true", help="also time the stages of the largest specs")
    parser.add_argument("--table", action="store_true", help="also the table format vs JSON at scale (section e)")
    parser.add_argument("--completion", action="store_true",
                        help="also the start-up cost of shell completion (section f)")
    parser.add_argument("--spec", default=os.path.join(ROOT, "examples", "resnet50.yaml"),
                        help="spec for the start-up figure (default examples/resnet50.yaml)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    cpu = cpus[-1]
    tmp = tempfile.mkdtemp(prefix="convcost-bench-")
    try:
        env = child_env(os.path.join(tmp, "pycache"))
        spec = args.spec
        if not os.path.exists(spec):  # stand-in until the example exists
            spec = os.path.join(tmp, "standin.yaml")
            with open(spec, "w", encoding="utf-8") as handle:
                handle.write(gen_specs.branched_spec(170, depth=2))
        table = Table()
        startup(table, env, cpu, tmp, args.runs, spec)
        paths = scale(table, env, cpu, tmp, args.scale_runs, started)
        sweep(table, env, cpu)
        if args.stages:
            stages(table, env, cpu, paths)
        if args.table:
            import bench_table  # benchmarks/bench_table.py

            bench_table.table_section(table, env, cpu, tmp, 3)
        if args.completion:
            completion(table, env, cpu, tmp, args.runs * 3, spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"command: python benchmarks/run.py{' ' + ' '.join(argv if argv is not None else sys.argv[1:]) if (argv if argv is not None else sys.argv[1:]) else ''}")
    print()
    print(table.text())
    print()
    verdicts = [row[3] for row in table.rows if row[3]]
    print(f"{verdicts.count('PASS')} of {len(verdicts)} targets met; total {time.perf_counter() - started:.0f} s")
    return 0 if all(verdict == "PASS" for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
