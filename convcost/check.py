"""``convcost check`` as data: validate specs, collecting every problem, and hold them to budgets.

Pure: reads spec files, returns :class:`FileCheck` values; rendering and exit
codes are the CLI's job. A file is ``invalid`` when it has any problem (all of
them are listed, each with its file, line and layer), ``over_budget`` when it
is valid but a total exceeds a limit, else ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from .bridges import is_onnx_path
from .budget import BUDGET_KEYS, Limit, budget_from_spec, merge_budgets
from .builder import build_network
from .costs import NetworkCost, analyze
from .errors import Location, SpecError
from .figures import Settings, with_figures
from .network import Network
from .spec import Spec, load_spec, loads_spec

__all__ = ["MAX_LISTED", "STATUS_EXIT", "BudgetResult", "FileCheck", "check_file", "check_text", "exit_code"]

#: Status -> exit code; the worst file decides the command's exit code.
STATUS_EXIT = {"ok": 0, "over_budget": 1, "invalid": 2}
#: Most problems listed for one spec (the first, by line); the rest are counted in ``FileCheck.unlisted``.
MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class BudgetResult:
    """One limit held against one report."""

    limit: Limit
    actual: int | Fraction  # exact; seconds for max_latency

    @property
    def key(self) -> str:
        return self.limit.key

    @property
    def within(self) -> bool:
        return BUDGET_KEYS[self.key].within(self.actual, self.limit.value)


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The outcome for one spec: its problems, or its report and budget results."""

    source: str
    problems: tuple[SpecError, ...] = ()  # in line order: at most MAX_LISTED located ones, then notes on the file
    report: NetworkCost | None = None  # when the spec is valid
    budget: tuple[BudgetResult, ...] = ()
    warnings: tuple[SpecError, ...] = ()  # likely mistakes that do not make the spec invalid
    unlisted: int = 0  # problems found beyond MAX_LISTED

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.unlisted

    @property
    def status(self) -> str:
        if self.problems:
            return "invalid"
        return "over_budget" if any(not result.within for result in self.budget) else "ok"

    @property
    def exit_code(self) -> int:
        return STATUS_EXIT[self.status]

    @property
    def exceeded(self) -> tuple[BudgetResult, ...]:
        return tuple(result for result in self.budget if not result.within)


def _order(error: SpecError) -> tuple[int, int]:
    where = error.where
    if where is None or where.line <= 0:
        return (1 << 62, 0)
    return (where.line, where.column)


def _finish(source: str, load: Callable[[list[SpecError]], Spec], limits: tuple[Limit, ...], batch: int,
            dtype: str, settings: Settings) -> FileCheck:
    problems: list[SpecError] = []
    try:
        spec = load(problems)
        spec_limits = budget_from_spec(spec, problems)
        network = build_network(spec, errors=problems)
    except SpecError as error:
        if error not in problems:
            problems.append(error)
    if problems:
        ordered = sorted(problems, key=_order)
        if len(ordered) <= MAX_LISTED:
            return FileCheck(source, tuple(ordered))
        # Notes on the whole file (no line: the builder's "stopped after 100 problems") follow the located ones.
        whole = [error for error in ordered if _order(error)[0] == 1 << 62][:10]
        listed = [error for error in ordered if _order(error)[0] != 1 << 62][:MAX_LISTED] + whole
        return FileCheck(source, tuple(listed), unlisted=len(ordered) - len(listed))
    report = with_figures(network, analyze(network, batch=batch, dtype=dtype), settings)
    results = []
    for limit in merge_budgets(spec_limits, limits):
        key = BUDGET_KEYS[limit.key]
        actual = key.measure(report)
        if actual is None:  # a figure this report cannot give: the budget cannot be held
            problems.append(SpecError(f"budget '{limit.key}' needs {key.needs}", limit.where or Location(source)))
        else:
            results.append(BudgetResult(limit, actual))
    if problems:
        return FileCheck(source, tuple(problems))
    return FileCheck(source, (), report, tuple(results), unread_layers(network))


def unread_layers(network: Network) -> tuple[SpecError, ...]:
    """A warning for every layer whose output no layer reads and that is not an output: probably a
    ``from:`` that names the wrong tensor, or a forgotten entry in ``outputs:``."""
    read = {ref for node in network.nodes for ref in node.inputs} | set(network.output_refs)
    return tuple(SpecError("computed but never read, and not an output (name it in 'outputs:' if it is one)",
                           node.where, node.name)
                 for node in network.nodes if node.index not in read)


def check_file(path: str, limits: tuple[Limit, ...] = (), *, batch: int = 1, dtype: str = "float32",
               settings: Settings = Settings()) -> FileCheck:
    """Check one spec file (``-`` for standard input); ``limits`` override the spec's budget."""
    source = "<stdin>" if path == "-" else path
    if is_onnx_path(path):
        from .bridges.onnx_import import onnx_spec  # imports onnx: only for .onnx files

        return _finish(source, lambda problems: onnx_spec(path), limits, batch, dtype, settings)
    return _finish(source, lambda problems: load_spec(path, errors=problems), limits, batch, dtype, settings)


def check_text(text: str, source: str = "<string>", limits: tuple[Limit, ...] = (), *, batch: int = 1,
               dtype: str = "float32", settings: Settings = Settings()) -> FileCheck:
    """Check spec text."""
    return _finish(source, lambda problems: loads_spec(text, source, errors=problems), limits, batch, dtype,
                   settings)


def exit_code(results: Iterable[FileCheck]) -> int:
    """0 all ok, 1 a budget exceeded, 2 any spec invalid (2 wins over 1)."""
    return max((result.exit_code for result in results), default=0)
