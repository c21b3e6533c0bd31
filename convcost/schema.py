"""JSON Schemas: the spec format (for editors) and the JSON report (docs/report.schema.json).

The spec schema is generated, not written by hand: each leaf kind's keys come
from its declaration in ``kinds.LAYER_KINDS``, so a new kind or option appears
in the schema by itself; tests check that every option also has a type here
(``OPTION_SCHEMAS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .attributes import OPTION_KEYS
from .budget import BUDGET_KEYS
from .costs import FLOP_CATEGORIES
from .kinds import COMMON_KEYS, LAYER_KINDS
from .layers import ACTIVATIONS, Upsample
from .spec import SHAPE_AXES, TOP_LEVEL_KEYS
from .structures import STRUCTURES
from .training_memory import OPTIMIZERS

__all__ = ["OPTION_SCHEMAS", "kind_options", "report_schema", "spec_schema"]

SPEC_SCHEMA_ID = "https://convcost.invalid/spec.schema.json"
REPORT_SCHEMA_ID = "https://convcost.invalid/report.schema.json"

_PARAM_REF = {"type": "string", "pattern": r"^\$", "description": "a block parameter: $name or ${expression}"}
_AXES_STRING = r"^\s*\d+(\s*[xX]\s*\d+)*\s*$"


def _axes(minimum: int, extra: tuple[Any, ...] = ()) -> dict[str, Any]:
    item = {"anyOf": [{"type": "integer", "minimum": minimum}, _PARAM_REF]}
    return {"anyOf": [{"type": "integer", "minimum": minimum},
                      {"type": "array", "minItems": 1, "maxItems": 3, "items": item},
                      {"type": "string", "pattern": _AXES_STRING}, *extra]}


_POSITIVE = {"type": "integer", "minimum": 1}
_BOOLEAN = {"type": "boolean"}
_TENSOR = {"type": "string", "pattern": r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"}
_LIST = {"$ref": "#/definitions/layer_list"}

#: Option key -> JSON Schema of its value (a ``$param`` reference is always allowed too).
OPTION_SCHEMAS: Mapping[str, dict[str, Any] | None] = MappingProxyType({
    "name": {"type": "string", "pattern": r"^[A-Za-z0-9_\-]+$", "description": "unique within its level"},
    "repeat": {"type": "integer", "minimum": 0, "description": "stands for N copies in sequence (0: none)"},
    "from": {"anyOf": [_TENSOR, {"type": "array", "minItems": 1, "items": _TENSOR}],
             "description": "the earlier tensor(s) this entry reads, by name; a join lists its inputs"},
    "if": {"anyOf": [_BOOLEAN, {"type": "string", "pattern": r"^\$"}],
           "description": "leave the entry out when false, e.g. \"${stride == 1}\""},
    "out": {**_POSITIVE, "description": "output channels (features for linear)"},
    "groups": _POSITIVE,
    "multiplier": _POSITIVE,
    "dim": {"type": "integer", "description": "PyTorch's axis, the batch being axis 0"},
    "kernel": _axes(1),
    "stride": _axes(1),
    "dilation": _axes(1),
    "output_size": _axes(1),
    "padding": _axes(0, ({"enum": ["same", "valid"]},)),
    "output_padding": _axes(0),
    "bias": _BOOLEAN,
    "inplace": _BOOLEAN,
    "affine": _BOOLEAN,
    "track_running_stats": _BOOLEAN,
    "ceil_mode": _BOOLEAN,
    "reduction": {**_BOOLEAN, "description": "this 1x1 conv is a channel reduction"},
    "p": {"type": "number", "minimum": 0, "maximum": 1},
    "negative_slope": {"type": "number"},
    "scale": {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                        {"type": "array", "minItems": 1, "maxItems": 3,
                         "items": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, _PARAM_REF]}}]},
    "mode": None,  # filled from layers.Upsample.MODES below
    "bottleneck": {"anyOf": [{"type": "integer", "minimum": 1},
                             {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}],
                   "description": "width (or fraction of the input channels) of a 1x1 reduction before this conv"},
    "axis": {"enum": ["channels", "last", "length", "depth", "height", "width"]},
    "crop": {"enum": ["none", "center"], "description": "center: cut inputs to the smallest size first (U-Net)"},
    "size": _axes(1),
    "like": {**_TENSOR, "description": "crop to this tensor's spatial size"},
    "over": {"enum": ["channels", "last"]},
    "factor": _POSITIVE,
    "parameters": {"enum": [1, "channels"]},
    "alpha": {"type": "number"},
    "beta": {"type": "number"},
    "threshold": {"type": "number"},
    "layers": {"$ref": "#/definitions/layers"},
    "branches": {"type": "array", "minItems": 1, "items": _LIST},
    "body": _LIST,
    "shortcut": _LIST,
    "parts": _POSITIVE,
    "sizes": {"type": "array", "minItems": 1, "items": {"anyOf": [_POSITIVE, _PARAM_REF]}},
    "names": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": r"^[A-Za-z0-9_\-]+$"}},
    "reduce": {**_POSITIVE, "description": "squeeze width in channels"},
    "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
              "description": "squeeze width as a fraction of the input channels"},
    "activation": {"enum": list(ACTIVATIONS)},
    "gate": {"enum": ["sigmoid", "hardsigmoid"]},
    "op": {"type": "string", "minLength": 1, "description": "the operation an opaque layer stands for (zero cost)"},
    "shape": {"anyOf": [{"type": "integer", "minimum": 1},
                        {"type": "string", "pattern": r"^\s*\d+(\s*[xX×]\s*\d+)*\s*$"},
                        {"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "integer", "minimum": 1}}],
              "description": "an opaque layer's output shape, channels first, batch excluded"},
})


def _option_schema(key: str) -> dict[str, Any]:
    schema = {"enum": list(Upsample.MODES)} if key == "mode" else OPTION_SCHEMAS.get(key)
    if schema is None:
        return {}
    return {"anyOf": [schema, _PARAM_REF]}


def kind_options(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(allowed keys, required keys) of a kind, from its declaration; ``concat`` is a join (``from:``) or a
    structure (``branches:``), so it allows both sets and requires neither."""
    leaf, structure = LAYER_KINDS.get(kind), STRUCTURES.get(kind)
    keys = (*(leaf.keys if leaf else ()), *(structure.keys if structure else ()))
    required = leaf.required if leaf and not structure else structure.required if structure and not leaf else ()
    return (*COMMON_KEYS, *dict.fromkeys(keys)), required


def spec_schema() -> dict[str, Any]:
    """JSON Schema (draft-07, which yaml-language-server reads) of a spec file."""
    definitions: dict[str, Any] = {}
    one_key: dict[str, Any] = {}
    kind_form: list[dict[str, Any]] = []
    kinds = list(dict.fromkeys((*LAYER_KINDS, *STRUCTURES)))
    for kind in kinds:
        allowed, required_keys = kind_options(kind)
        required = list(required_keys)
        properties = {key: _option_schema(key) for key in allowed}
        definitions[f"options_{kind}"] = {
            "type": "object",
            "properties": properties,
            "required": list(required),
            "additionalProperties": False,
        }
        reference = {"$ref": f"#/definitions/options_{kind}"}
        one_key[kind] = {"anyOf": [{"type": "null"}, reference]} if not required else reference
        kind_form.append({
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"properties": {"kind": {"const": kind}, **properties}, "required": ["kind", *required],
                     "additionalProperties": False},
        })
    identifier = r"^[A-Za-z_][\w\-]*$"
    definitions["layer"] = {
        "description": "a bare kind (relu), {kind: {options}}, or {kind: name, options...}; "
                       "a block from blocks: is used like a kind",
        "anyOf": [
            {"type": "string", "anyOf": [{"enum": kinds}, {"pattern": identifier}]},
            {"type": "object", "minProperties": 1, "maxProperties": 1, "not": {"required": ["kind"]},
             "properties": one_key, "additionalProperties": {"type": ["object", "null"]}},
            {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}},
             "allOf": kind_form},
        ],
    }
    definitions["layer_list"] = {"type": "array", "items": {"$ref": "#/definitions/layer"}}
    definitions["layers"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/layer"}}
    shape_maps = [
        {"type": "object", "properties": {axis: {"type": "integer", "minimum": 1} for axis in axes},
         "required": list(axes), "additionalProperties": False}
        for axes in SHAPE_AXES
    ]
    definitions["shape"] = {
        "description": "channels-first, batch excluded: CxL, CxHxW, CxDxHxW or a feature count",
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": r"^\s*\d+(\s*[xX×]\s*\d+){0,3}\s*$"},
            {"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "integer", "minimum": 1}},
            *shape_maps,
        ],
    }
    quantity = r"^\s*([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9][0-9_]*)([eE][+-]?[0-9]{1,3})?\s*([kKmMgGtTpP][iI]?)?"
    budget = {
        key: {"description": spec.help,
              "anyOf": [{"type": "integer", "minimum": 0},
                        {"type": "string", "pattern": quantity + ("[bB]?" if spec.kind == "bytes" else "") + r"\s*$"}]}
        for key, spec in BUDGET_KEYS.items()
    }
    properties = {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "input": {"$ref": "#/definitions/shape"},
        "inputs": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": r"^[A-Za-z0-9_\-]+$"},
                   "additionalProperties": {"$ref": "#/definitions/shape"}},
        "outputs": {"anyOf": [_TENSOR, {"type": "array", "minItems": 1, "items": _TENSOR}]},
        "layers": {"$ref": "#/definitions/layers"},
        "blocks": {
            "type": "object",
            "propertyNames": {"pattern": identifier, "not": {"enum": kinds}},
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "params": {"anyOf": [{"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z_]\w*$"}},
                                         {"type": "object"}]},
                    "layers": {"$ref": "#/definitions/layers"},
                },
                "required": ["layers"],
                "additionalProperties": False,
            },
        },
        "budget": {"type": "object", "properties": budget, "additionalProperties": False},
    }
    missing = set(TOP_LEVEL_KEYS) ^ set(properties)
    if missing:  # a top-level key added to spec.py needs its schema here
        raise RuntimeError(f"spec schema out of date for top-level keys {sorted(missing)}")
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SPEC_SCHEMA_ID,
        "title": "convcost spec",
        "description": "A convolutional network draft for convcost (docs/spec.md).",
        "type": "object",
        "required": ["layers"],
        "oneOf": [{"required": ["input"]}, {"required": ["inputs"]}],
        "additionalProperties": False,
        "properties": properties,
        "definitions": definitions,
    }


def _integers(*names: str) -> dict[str, Any]:
    return {name: {"type": "integer", "minimum": 0} for name in names}


def _layer_options_schema() -> dict[str, Any]:
    """A report row's ``options`` (convcost.attributes): per-axis lists of ints, ``same`` padding, ints, flags."""
    axes = {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "integer", "minimum": 0}}
    kinds: dict[str, Any] = {"groups": {"type": "integer", "minimum": 1}, "bias": {"type": "boolean"},
                             "ceil_mode": {"type": "boolean"}, "padding": {"anyOf": [axes, {"const": "same"}]}}
    return {"type": "object", "description": "what the layer was built with; empty for layers without such options",
            "properties": {key: kinds.get(key, axes) for key in OPTION_KEYS}, "additionalProperties": False}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


_NUMBER = {"type": "number"}
_FIELD = {"type": "array", "items": _closed({"size": {"type": "integer", "minimum": 0}, "jump": _nullable(_NUMBER),
                                             "offset": _nullable(_NUMBER), "whole": {"type": "boolean"}})}


def _layer_figures_schema() -> dict[str, Any]:
    """The figures beyond MACs of one layer row (docs/conventions.md, "Beyond MACs")."""
    return {
        **_integers("macs_nonpadding", "weight_grad_macs", "input_grad_macs", "training_macs"),
        "saved_activation_bytes": _nullable({"type": "integer", "minimum": 0}),
        "receptive_field": _nullable(_FIELD),
        "roofline": _nullable(_closed({
            **_integers("bytes_read", "bytes_written"), "arithmetic_intensity": _nullable(_NUMBER),
            "roofline_seconds": _NUMBER, "bound": {"enum": ["compute", "memory", "none"]}})),
    }


def _totals_figures_schema() -> dict[str, Any]:
    """The figures beyond MACs of the whole report."""
    nullable_bytes = _nullable({"type": "integer", "minimum": 0})
    return {
        **_integers("macs_nonpadding", "training_macs"),
        "training": _closed(_integers("forward_macs", "weight_grad_macs", "input_grad_macs", "training_macs")),
        "saved_activation_bytes": nullable_bytes,
        "training_memory_bytes": nullable_bytes,
        "training_memory": _nullable(_closed({
            "optimizer": {"enum": list(OPTIMIZERS)}, "mixed_precision": {"type": "boolean"},
            **_integers("saved_activation_bytes", "weight_copy_bytes", "param_bytes", "gradient_bytes",
                        "optimizer_state_bytes", "total_bytes")})),
        "receptive_field": _nullable({"type": "array", "items": _closed({"output": {"type": "string"},
                                                                          "axes": _FIELD})}),
        "roofline_seconds": _nullable(_NUMBER),
        "roofline": _nullable(_closed({
            "hardware": {"type": "string"}, "precision": {"type": "string"},
            **_integers("peak_ops_per_second", "memory_bytes_per_second", "bytes_read", "bytes_written"),
            "arithmetic_intensity": _nullable(_NUMBER), "roofline_seconds": _NUMBER,
            "seconds_per_image": _NUMBER, "images_per_second": _nullable(_NUMBER),
            **_integers("compute_bound_layers", "memory_bound_layers")})),
        "notes": {"type": "array", "items": {"type": "string"}},
    }


def report_schema() -> dict[str, Any]:
    """JSON Schema of ``convcost analyze --json`` (docs/report.schema.json is this, written out)."""
    shape = {"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "integer", "minimum": 1}}
    by_category = {"type": "object", "propertyNames": {"enum": list(FLOP_CATEGORIES)},
                   "additionalProperties": {"type": "integer", "minimum": 0}}
    tensors = {"type": "array", "minItems": 1, "items": {
        "type": "object", "properties": {"name": {"type": "string"}, "shape": shape}, "required": ["name", "shape"],
        "additionalProperties": False}}
    layer: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "kind": {"type": "string"}, "category": {"type": "string"},
            "line": {"type": "integer", "minimum": 0},
            "input_shape": shape, "input_shapes": {"type": "array", "minItems": 1, "items": shape},
            "inputs": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "output_shape": shape, "flops_by_category": by_category, "options": _layer_options_schema(),
            **_integers("macs", "flops", "params", "buffers", "weight_bytes", "activation_bytes"),
            **_layer_figures_schema(),
        },
        "additionalProperties": False,
    }
    layer["required"] = list(layer["properties"])
    block: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "kind": {"type": "string"}, "layers": {"type": "integer", "minimum": 0},
            "output_shape": shape,
            **_integers("macs", "flops", "params", "weight_bytes", "activation_bytes"),
        },
        "additionalProperties": False,
    }
    block["required"] = list(block["properties"])
    kind_total = {"type": "object", "properties": _integers("layers", "macs", "flops", "params"),
                  "required": ["layers", "macs", "flops", "params"], "additionalProperties": False}
    totals: dict[str, Any] = {
        "type": "object",
        "properties": {
            "flops_by_category": {**by_category, "required": list(FLOP_CATEGORIES)},
            **_integers("macs", "flops", "params", "buffers", "weight_bytes", "buffer_bytes", "input_bytes",
                        "activation_bytes", "peak_activation_bytes"),
            **_totals_figures_schema(),
        },
        "additionalProperties": False,
    }
    totals["required"] = list(totals["properties"])
    properties = {
        "schema_version": {"const": 1},
        "name": {"type": "string"},
        "source": {"type": "string"},
        "input": {"type": "object", "properties": {"shape": shape, "batch": {"type": "integer", "minimum": 1},
                                                   "dtype": {"type": "string"}},
                  "required": ["shape", "batch", "dtype"], "additionalProperties": False},
        "inputs": tensors,
        "output_shape": shape,
        "outputs": tensors,
        "conventions": {"type": "object", "additionalProperties": {"type": "string"}},
        "layers": {"type": "array", "items": layer},
        "blocks": {"type": "array", "items": block},
        "by_kind": {"type": "object", "additionalProperties": kind_total},
        "totals": totals,
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": REPORT_SCHEMA_ID,
        "title": "convcost report",
        "description": "The JSON report of `convcost analyze --json`: exact integers; shapes channels-first "
                       "without the batch; counts include the batch, params do not.",
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
