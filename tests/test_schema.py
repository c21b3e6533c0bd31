"""JSON Schemas: the spec schema is generated from the layer table and accepts every example;
docs/report.schema.json is current and every example's report validates against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from convcost.budget import BUDGET_KEYS
from convcost.cli import app
from convcost.builder import STRUCTURE_KINDS
from convcost.kinds import LAYER_KINDS
from convcost.schema import OPTION_SCHEMAS, kind_options, report_schema, spec_schema

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_every_kind_and_option_is_in_the_schema() -> None:
    schema = spec_schema()
    one_key = schema["definitions"]["layer"]["anyOf"][1]["properties"]
    assert set(one_key) == set(LAYER_KINDS) | set(STRUCTURE_KINDS)
    for kind in LAYER_KINDS:
        allowed, required = kind_options(kind)
        assert allowed, kind
        options = schema["definitions"][f"options_{kind}"]
        assert set(options["properties"]) == set(allowed)
        assert set(options["required"]) == set(required)
        for key in allowed:  # a new option needs a type in schema.OPTION_SCHEMAS
            assert key in OPTION_SCHEMAS, f"option '{key}' of {kind} has no schema"
    assert set(schema["properties"]["budget"]["properties"]) == set(BUDGET_KEYS)


def test_required_options_come_from_the_constructors() -> None:
    assert set(kind_options("conv")[1]) == {"out", "kernel"}
    assert kind_options("relu")[1] == ()
    assert set(kind_options("upsample")[1]) == {"scale"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_valid(validator: jsonschema.Draft7Validator, path: Path) -> None:
    errors = [error.message for error in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    "text",
    [
        "input: 3x8x8\nlayers: [{conv: {out: 4, kernal: 3}}]",  # unknown option
        "input: 3x8x8\nlayers: [{conv: {kernel: 3}}]",  # missing 'out'
        "input: 3x8x8\nlayers: [{kind: relu, foo: 1}]",
        "input: 3x8x8\nlayers: [{conv: {out: 4, kernel: 3, bias: maybe}}]",
        "input: 3x8x8\nlayers: [{upsample: {scale: 2, mode: cubic}}]",
        "input: 3x8x8\nlayer: [relu]",
        "layers: [relu]",
        "input: 3x8x8\nlayers: [relu]\nbudget: {max_mac: 1G}",
        "input: 3x8x8\nlayers: [relu]\nbudget: {max_macs: 1.5Q}",
        "input: 3x8x8\nlayers: [relu]\nbudget: {max_params: 8MiB}",  # bytes unit on a count
        "input: -3\nlayers: [relu]",
    ],
)
def test_invalid_specs_are_flagged(validator: jsonschema.Draft7Validator, text: str) -> None:
    assert list(validator.iter_errors(yaml.safe_load(text)))


def test_valid_forms_are_accepted(validator: jsonschema.Draft7Validator) -> None:
    text = """
input: {channels: 3, height: 32, width: 32}
blocks:
  unit:
    params: [w]
    layers: [{conv: {out: $w, kernel: 3, padding: same}}, relu]
layers:
  - {kind: conv, out: 8, kernel: 1x3, stride: [1, 2]}
  - unit: {w: 4, repeat: 2}
  - residual: {body: [pointwise: {out: 4}], shortcut: []}
  - concat: {branches: [[identity], []]}
  - global_avg_pool
  - flatten
  - linear: {out: 10}
budget: {max_macs: 1.5G, max_peak_memory: 8MiB, max_params: 250000}
"""
    assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []


def test_report_schema_document_is_current() -> None:
    assert json.loads((ROOT / "docs" / "report.schema.json").read_text()) == report_schema()
    assert json.loads(runner.invoke(app, ["schema", "--report"]).stdout) == report_schema()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_report_matches_the_report_schema(path: Path) -> None:
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    for extra in ([], ["--batch", "3", "--dtype", "int8"]):
        result = runner.invoke(app, ["analyze", str(path), "--json", *extra])
        assert result.exit_code == 0
        jsonschema.validate(json.loads(result.stdout), schema, cls=jsonschema.Draft7Validator)


def test_schema_can_be_written_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "convcost.schema.json"
    assert runner.invoke(app, ["schema", "--output", str(target)]).exit_code == 0
    assert json.loads(target.read_text()) == spec_schema()
