"""``convcost check``: validate specs (every problem at once) and hold them to budgets, for CI."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from ..budget import budget_from_options, option_name
from ..check import check_file, exit_code
from ..errors import ConvcostError, UsageError
from ..render.check import CHECK_RENDERERS
from ..render.common import View
from .app import app, fail, one_line
from .options import FigureOptions, OutputOptions, RunOptions, with_option_groups
from .output import check_output, emit


def expand_directories(paths: list[str]) -> list[str]:
    """Each directory replaced by the ``*.yaml``/``*.yml`` files below it (sorted; hidden entries skipped)."""
    expanded: list[str] = []
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            expanded.append(path)
            continue
        found = []
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            found += [os.path.join(folder, name) for name in files
                      if name.lower().endswith((".yaml", ".yml")) and not name.startswith(".")]
        if not found:
            raise UsageError(f"no *.yaml or *.yml spec in the directory {path}")
        expanded += sorted(found)
    return expanded


_BUDGET = "Budget (overrides the spec's budget: section)"
_QUANTITY = "SI (K M G T = 10^3..) or binary (Ki Mi Gi) suffixes, exact: 1.5G, 7M"


def _limit(key: str, metavar: str, help: str) -> Optional[str]:
    return typer.Option(None, option_name(key), metavar=metavar, rich_help_panel=_BUDGET, help=help,
                        show_default=False)


@app.command()
@with_option_groups
def check(
    specs: list[str] = typer.Argument(..., metavar="SPEC...", show_default=False,
                                      help="Spec files (YAML), ONNX models (.onnx) or directories (searched for "
                                           "*.yaml and *.yml, hidden ones skipped); - for stdin."),
    max_macs: Optional[str] = _limit("max_macs", "N", f"Most MACs (bias excluded). {_QUANTITY}."),
    max_flops: Optional[str] = _limit("max_flops", "N", "Most FLOPs."),
    max_params: Optional[str] = _limit("max_params", "N", "Most trainable parameters."),
    max_weight_bytes: Optional[str] = _limit("max_weight_bytes", "BYTES", "Most parameter bytes at --dtype: 25MB, "
                                             "16MiB."),
    max_peak_memory: Optional[str] = _limit("max_peak_memory", "BYTES", "Most activation bytes alive at once "
                                            "(inference): 8MiB."),
    max_train_memory: Optional[str] = _limit("max_train_memory", "BYTES", "Most bytes of a training step: saved "
                                             "activations, params, gradients, optimizer state: 24GiB."),
    max_training_macs: Optional[str] = _limit("max_training_macs", "N", "Most MACs of a training step."),
    max_macs_nonpadding: Optional[str] = _limit("max_macs_nonpadding", "N", "Most MACs that read real input "
                                                "(not zero padding)."),
    max_latency: Optional[str] = _limit("max_latency", "TIME", "Most roofline time (a lower bound on latency) on "
                                        "--hardware: 5ms, 250us."),
    min_receptive_field: Optional[str] = _limit("min_receptive_field", "PIXELS", "Fewest input pixels every "
                                                "output sees along each spatial axis."),
    run: RunOptions = RunOptions(),
    beyond: FigureOptions = FigureOptions(),
    target: OutputOptions = OutputOptions(),
) -> None:
    """Validate specs and check their budgets; every problem is listed as file:line:col: layer 'name': message.

    Exit codes: 0 every spec valid and within budget, 1 a budget exceeded,
    2 a spec invalid or a usage error (2 wins), 74 the summary could not be
    written. Problems go to stderr, one per line (at most 100 per spec); the
    summary (a line per spec) to stdout or --output.

    \b
    convcost check drafts/ --max-macs 1.5G --max-params 7M
    convcost check draft.yaml --batch 64 --max-train-memory 24GiB --max-latency 5ms --hardware a100-40gb
    """
    given = {"max_macs": max_macs, "max_flops": max_flops, "max_params": max_params,
             "max_weight_bytes": max_weight_bytes, "max_peak_memory": max_peak_memory,
             "max_train_memory": max_train_memory, "max_training_macs": max_training_macs,
             "max_macs_nonpadding": max_macs_nonpadding, "max_latency": max_latency,
             "min_receptive_field": min_receptive_field}
    try:
        limits = budget_from_options(given)
        if max_latency is not None and beyond.hardware is None:
            raise UsageError("--max-latency bounds the roofline time on a device: give --hardware NAME too "
                             "(convcost hardware lists them)")
        settings = beyond.settings(run.dtype)
        if specs.count("-") > 1:
            raise UsageError("standard input (-) can be given once")
        specs = expand_directories(specs)
        if target.output is not None and target.output != "-":
            check_output(target.output, specs)
        results = [check_file(path, limits, batch=run.batch, dtype=run.dtype, settings=settings) for path in specs]
        for result in results:
            for problem in result.problems:
                sys.stderr.write(one_line(problem.format()) + "\n")
            for warning in result.warnings:
                sys.stderr.write("warning: " + one_line(warning.format()) + "\n")
            if result.unlisted:
                sys.stderr.write(f"{one_line(result.source)}: and {result.unlisted:,} more problem"
                                 f"{'' if result.unlisted == 1 else 's'} (the first {len(result.problems)} are "
                                 "listed)\n")
        emit(target.format, CHECK_RENDERERS[target.format](results, View()), output=target.output, protect=specs)
    except ConvcostError as error:
        fail(error)
    raise typer.Exit(exit_code(results))
