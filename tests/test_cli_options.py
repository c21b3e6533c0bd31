"""The shared option groups: declared once, every field reachable as a flag, checked when made."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest
from typer.testing import CliRunner

from convcost.budget import BUDGET_KEYS, option_name
from convcost.cli import app
from convcost.cli import check as check_module
from convcost.cli.options import LayerFlags, OutputOptions, RewriteOptions, RunOptions, with_option_groups
from convcost.errors import UsageError

runner = CliRunner()


@pytest.mark.parametrize("command,groups", [
    ("analyze", (LayerFlags, RunOptions, OutputOptions)),
    ("compare", (LayerFlags, RunOptions, OutputOptions, RewriteOptions)),
    ("sweep", (LayerFlags, RunOptions, OutputOptions, RewriteOptions)),
    ("check", (RunOptions, OutputOptions)),
])
def test_every_option_of_a_group_is_in_the_help(command: str, groups: tuple[type, ...]) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for group in groups:
        for field in fields(group):
            flag = field.metadata["option"].param_decls[0].split("/")[0]
            assert flag in result.stdout, (command, flag)


def test_check_has_an_option_per_budget_key() -> None:
    names = set(inspect.signature(check_module.check).parameters)
    assert set(BUDGET_KEYS) <= names
    result = runner.invoke(app, ["check", "--help"], env={"COLUMNS": "200"})
    for key in BUDGET_KEYS:
        assert option_name(key) in result.stdout


@pytest.mark.parametrize("args,words", [
    (["--dtype", "float64"], "--dtype must be one of"),
    (["--batch", "0"], "--batch must be >= 1"),
    (["--format", "yml"], "--format must be one of"),
    (["--json", "--format", "csv"], "--json conflicts"),
])
def test_groups_refuse_bad_values_in_one_line(args: list[str], words: str) -> None:
    for command in (["analyze", "examples/one_by_one.yaml"], ["check", "examples/one_by_one.yaml"]):
        result = runner.invoke(app, [*command, *args])
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and words in result.stderr


def test_rewrite_options_refuse_non_positive_limits() -> None:
    with pytest.raises(UsageError):
        RewriteOptions(min_kernel=0)
    result = runner.invoke(app, ["compare", "examples/one_by_one.yaml", "--bottleneck", "8", "--min-channels", "0"])
    assert result.exit_code == 2 and "--min-kernel and --min-channels must be >= 1" in result.stderr


def test_a_group_field_may_not_shadow_a_parameter() -> None:
    def command(out: int = 1, layer: LayerFlags = LayerFlags()) -> None:  # LayerFlags has a field 'out'
        pass

    with pytest.raises(TypeError, match="shares a name"):
        with_option_groups(command)
