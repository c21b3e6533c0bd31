"""The table format at scale (issue 14 item 9): ``analyze --format table`` against ``--json``.

    python benchmarks/bench_table.py [--runs 3]        # about 2-3 minutes on 2 cores
    python benchmarks/run.py --table                   # the same, as a section of the suite

Generated specs (benchmarks/gen_specs.py) of 10,000 and 100,000 layers, plain
stacks and nested residual/concat, each run as the whole CLI process with
stdout to /dev/null (a pipe or a file: what the issue measured, and the table a
terminal gets past 5,000 lines, plain), pinned to one CPU, table and JSON
interleaved. Figures are medians of CPU seconds (user + system) and peak RSS.

Targets: at 100,000 layers the table within 3x JSON's CPU time, and the
table's time linear in the rows: table(100,000) / table(10,000) at most 12x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen_specs  # noqa: E402
import run  # noqa: E402  (benchmarks/run.py: child processes, the figures table)

TABLE_RATIO_TARGET = 3.0  # table / JSON CPU at 100,000 layers
LINEAR_TARGET = 12.0  # table(100,000) / table(10,000)
SIZES = (10_000, 100_000)


def table_section(table: run.Table, env: dict[str, str], cpu: int, tmp: str, runs: int) -> None:
    paths = gen_specs.write_specs(os.path.join(tmp, "table-specs"), sizes=SIZES)
    results: dict[tuple[str, int, str], list[run.Child]] = {}
    for _ in range(runs):
        for (kind, size), path in paths.items():
            for fmt in ("table", "json"):
                argv = [sys.executable, "-m", "convcost", "analyze", path, "--format", fmt]
                results.setdefault((kind, size, fmt), []).append(run.run_child(argv, env, cpu))
    table.section(f"e. table vs JSON (whole process, stdout to /dev/null; CPU on one core, medians of {runs} runs)")
    for kind in gen_specs.KINDS:
        for size in SIZES:
            cpu_s = {fmt: run.median([c.cpu for c in results[(kind, size, fmt)]]) for fmt in ("table", "json")}
            rss = {fmt: run.median([c.rss_mib for c in results[(kind, size, fmt)]]) for fmt in ("table", "json")}
            ratio = cpu_s["table"] / cpu_s["json"]
            measured = (f"table {cpu_s['table']:.2f} s, {rss['table']:.0f} MiB; json {cpu_s['json']:.2f} s, "
                        f"{rss['json']:.0f} MiB; table/json {ratio:.2f}x")
            if size == max(SIZES):
                table.add(f"{kind} {size:>7,} layers", measured, f"table <= {TABLE_RATIO_TARGET:.0f}x json",
                          ratio <= TABLE_RATIO_TARGET)
            else:
                table.add(f"{kind} {size:>7,} layers", measured)
        small, big = (run.median([c.cpu for c in results[(kind, size, "table")]]) for size in SIZES)
        table.add(f"  {kind}: table({SIZES[1]:,}) / table({SIZES[0]:,})", f"{big / small:.1f}x for "
                  f"{SIZES[1] // SIZES[0]}x layers", f"<= {LINEAR_TARGET:.0f}x", big / small <= LINEAR_TARGET)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per point (default 3)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    tmp = tempfile.mkdtemp(prefix="convcost-bench-table-")
    try:
        table = run.Table()
        table_section(table, run.child_env(os.path.join(tmp, "pycache")), cpus[-1], tmp, args.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {run.machine()}")
    print()
    print(table.text())
    verdicts = [row[3] for row in table.rows if row[3]]
    print(f"\n{verdicts.count('PASS')} of {len(verdicts)} targets met; total {time.perf_counter() - started:.0f} s")
    return 0 if all(verdict == "PASS" for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
