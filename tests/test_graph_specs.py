"""Graph specs (issue 12): named tensors, joins, the layers modern CNNs are drafted with, templates that
leave entries out, and peak memory over a graph. Expected counts are derived here from literal tables
of each architecture (torchvision's configurations), not from convcost."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcost import analyze, load, loads
from convcost.check import check_text
from convcost.cli import app
from convcost.compare import compare
from convcost.costs import peak_activation_elements
from convcost.errors import SpecError

from .conftest import EXAMPLES

runner = CliRunner()


def conv_params(c_in: int, c_out: int, k: int, groups: int = 1, bias: bool = False) -> int:
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


# --------------------------------------------------------------------------- the acceptance examples

def efficientnet_b0_counts() -> tuple[int, int]:
    """torchvision's efficientnet_b0 from its configuration table (expand, kernel, stride, out, layers)."""
    config = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
              (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
    h, c = 112, 32
    params = conv_params(3, 32, 3) + 2 * 32
    macs = 112 * 112 * 32 * 3 * 9
    for expand, k, s, out, layers in config:
        for i in range(layers):
            stride, wide = (s if i == 0 else 1), c * expand
            if expand != 1:
                params += conv_params(c, wide, 1) + 2 * wide
                macs += h * h * c * wide
            h_out = (h + 2 * ((k - 1) // 2) - k) // stride + 1
            params += conv_params(wide, wide, k, groups=wide) + 2 * wide
            macs += h_out * h_out * wide * k * k
            squeeze = max(1, c // 4)  # a quarter of the block's input channels
            params += conv_params(wide, squeeze, 1, bias=True) + conv_params(squeeze, wide, 1, bias=True)
            macs += wide * squeeze * 2
            params += conv_params(wide, out, 1) + 2 * out
            macs += h_out * h_out * wide * out
            h, c = h_out, out
    params += conv_params(320, 1280, 1) + 2 * 1280 + 1280 * 1000 + 1000
    macs += h * h * 320 * 1280 + 1280 * 1000
    return params, macs


def test_efficientnet_b0_matches_torchvision() -> None:
    report = analyze(load(str(EXAMPLES / "efficientnet_b0.yaml")))
    assert efficientnet_b0_counts() == (5_288_548, 385_814_752)  # torchvision's published params, and GMACs 0.39
    assert (report.totals.params, report.totals.macs) == (5_288_548, 385_814_752)
    assert report.output_shape == (1000,)
    kinds = {row.kind for row in report.layers}
    assert {"mul", "sigmoid", "silu", "add", "depthwise"} <= kinds


def convnext_tiny_counts() -> tuple[int, int]:
    dims, depths = [96, 192, 384, 768], [3, 3, 9, 3]
    h = 56
    params = conv_params(3, 96, 4, bias=True) + 2 * 96
    macs = h * h * 96 * 3 * 16
    for stage, (d, n) in enumerate(zip(dims, depths)):
        if stage:
            h //= 2
            params += 2 * dims[stage - 1] + conv_params(dims[stage - 1], d, 2, bias=True)
            macs += h * h * d * dims[stage - 1] * 4
        for _ in range(n):
            params += conv_params(d, d, 7, groups=d, bias=True) + 2 * d  # depthwise 7x7, layer norm
            params += (d * 4 * d + 4 * d) + (4 * d * d + d) + d  # two linears, layer scale
            macs += h * h * (d * 49 + 2 * 4 * d * d)
    params += 2 * 768 + 768 * 1000 + 1000
    macs += 768 * 1000
    return params, macs


def test_convnext_tiny_matches_torchvision() -> None:
    report = analyze(load(str(EXAMPLES / "convnext_tiny.yaml")))
    assert convnext_tiny_counts() == (28_589_128, 4_455_531_264)  # torchvision: 28,589,128 params, 4.46 GFLOPS
    assert (report.totals.params, report.totals.macs) == (28_589_128, 4_455_531_264)
    norms = [row for row in report.layers if row.kind == "layer_norm"]
    assert len(norms) == 1 + 18 + 3 + 1 and all(row.category == "normalization" for row in norms)
    assert any(row.kind == "layer_scale" and row.params == 768 for row in report.layers)


def unet_counts() -> tuple[int, int, int]:
    """Ronneberger et al. 2015, Fig. 1: every conv with its input size, worked out here."""
    params = macs = 0
    size, c = 572, 1
    skips = []
    for width in (64, 128, 256, 512, 1024):
        for _ in range(2):
            size -= 2
            params += conv_params(c, width, 3, bias=True)
            macs += size * size * width * c * 9
            c = width
        if width != 1024:
            skips.append((size, width))
            size //= 2
    for skip_size, width in reversed(skips):
        macs += size * size * width * c * 4  # 2x2 up-conv: every input element through 2x2 taps
        params += conv_params(c, width, 2, bias=True)
        size, c = size * 2, 2 * width  # concat with the cropped skip
        assert skip_size >= size
        for _ in range(2):
            size -= 2
            params += conv_params(c, width, 3, bias=True)
            macs += size * size * width * c * 9
            c = width
    params += conv_params(64, 2, 1, bias=True)
    macs += size * size * 2 * 64
    return params, macs, size


def test_unet_2015_valid_convs_and_centre_crops() -> None:
    report = analyze(load(str(EXAMPLES / "unet.yaml")))
    params, macs, size = unet_counts()
    assert size == 388
    assert report.output_shape == (2, 388, 388)
    assert (report.totals.params, report.totals.macs) == (params, macs)
    concats = [row for row in report.layers if row.kind == "concat"]
    assert [row.input_shapes for row in concats][0] == ((512, 56, 56), (512, 64, 64))  # up4 and enc4, cropped
    assert concats[0].output_shape == (1024, 56, 56)


def test_fpn_lists_five_outputs_with_their_shapes() -> None:
    result = runner.invoke(app, ["analyze", str(EXAMPLES / "fpn_resnet50.yaml"), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["outputs"] == [{"name": name, "shape": [256, size, size]}
                              for name, size in (("p2", 56), ("p3", 28), ("p4", 14), ("p5", 7), ("p6", 4))]
    resnet50_without_fc = 25_557_032 - (2048 * 1000 + 1000)
    fpn = sum(conv_params(c, 256, 1, bias=True) for c in (256, 512, 1024, 2048)) \
        + 4 * conv_params(256, 256, 3, bias=True)
    assert doc["totals"]["params"] == resnet50_without_fc + fpn
    rows = {row["name"]: row for row in doc["layers"]}
    assert rows["level4.merged"]["inputs"] == ["level4.lateral", "level4.top_down"]
    assert rows["level4.top_down"]["inputs"] == ["inner5"]
    assert rows["p6"]["inputs"] == ["p5"]


def test_two_stream_fusion_reads_two_named_inputs() -> None:
    report = analyze(load(str(EXAMPLES / "two_stream_fusion.yaml")))
    assert report.inputs == (("rgb", (3, 128, 128)), ("depth", (1, 128, 128)))
    first = {row.name: row for row in report.layers}
    assert first["rgb_stream.conv_1"].inputs == ("rgb",) and first["depth_stream.conv_1"].inputs == ("depth",)
    assert first["fuse"].output_shape == (128, 32, 32)
    streams = sum(conv_params(c, 32, 3) + 2 * 32 + conv_params(32, 64, 3) + 2 * 64 for c in (3, 1))
    assert report.totals.params == streams + conv_params(128, 64, 1) + 2 * 64 + 64 * 10 + 10
    assert report.totals.input_bytes == (3 + 1) * 128 * 128 * 4


# --------------------------------------------------------------------------- memory over a graph

TWO_OUTPUTS = """\
input: 4x8x8
outputs: [head_a, head_b]
layers:
  - conv: {name: a, out: 4, kernel: 1}
  - conv: {name: b, out: 8, kernel: 1}
  - conv: {name: head_a, out: 2, kernel: 1}
  - conv: {name: c, from: b, out: 4, kernel: 1}
  - add: {name: head_b, from: [c, a]}
"""


def test_peak_with_two_outputs_and_a_long_lived_skip_by_hand() -> None:
    # Elements per sample (8x8 = 64 positions): input 256, a 256, b 512, head_a 128, c 256, head_b 256.
    # step a:      input + a                       = 512, then the input is freed (a reads it last)
    # step b:      a + b                           = 768 (a is the skip, alive until head_b)
    # step head_a: a + b + head_a                  = 896 (an output: kept to the end)
    # step c:      a + b + head_a + c              = 1152, then b is freed
    # step head_b: a + head_a + c + head_b         = 896
    network = loads(TWO_OUTPUTS)
    assert peak_activation_elements(network) == 1152
    assert analyze(network, batch=2).totals.peak_activation_bytes == 1152 * 2 * 4
    # If head_a were not an output it would be freed at once: a + b + c = 1024 at step c.
    single = loads(TWO_OUTPUTS.replace("outputs: [head_a, head_b]", "outputs: [head_b]"))
    assert peak_activation_elements(single) == 1024
    report = analyze(network)
    assert report.outputs == (("head_a", (2, 8, 8)), ("head_b", (4, 8, 8)))


# --------------------------------------------------------------------------- names and joins

def test_names_resolve_in_the_enclosing_scope_first_then_outward() -> None:
    network = loads("""\
input: 8x8x8
blocks:
  unit:
    layers:
      - conv: {name: x, out: 8, kernel: 1}
      - conv: {name: y, from: x, out: 8, kernel: 1}      # the unit's own x
      - add: {from: top}                                 # no 'top' here: the one outside
layers:
  - conv: {name: x, out: 8, kernel: 3, padding: 1}
  - conv: {name: top, out: 8, kernel: 1}
  - unit: {name: u}
  - conv: {name: last, from: u.x, out: 2, kernel: 1}    # a dotted path into the block
""")
    by_name = {node.name: node for node in network.nodes}
    assert by_name["u.y"].inputs == (by_name["u.x"].index,)
    assert by_name["u.add_1"].inputs == (by_name["u.y"].index, by_name["top"].index)
    assert by_name["last"].inputs == (by_name["u.x"].index,)


@pytest.mark.parametrize("text,words", [
    ("  - conv: {name: a, out: 4, kernel: 1}\n  - conv: {from: aa, out: 4, kernel: 1}\n",
     ["unknown tensor 'aa'", "did you mean 'a'"]),
    ("  - conv: {from: later, out: 4, kernel: 1}\n  - conv: {name: later, out: 4, kernel: 1}\n",
     ["'later' is not an earlier tensor", "no cycles"]),
    ("  - conv: {name: me, from: me, out: 4, kernel: 1}\n", ["'me' is not an earlier tensor"]),
    ("  - conv: {name: a, out: 5, kernel: 1}\n  - add: {from: input}\n",
     ["cannot add tensors of shapes 5x8x8 and 4x8x8", "'a' (5x8x8)", "'input' (4x8x8)"]),
    ("  - split: {parts: 3}\n", ["split into 3 parts does not divide the 4 input channels"]),
    ("  - split: {sizes: [1, 2]}\n", ["add up to 3, not the 4 input channels"]),
    ("  - relu: {if: 3}\n", ["'if' must be true or false"]),
    ("  - linear: {out: 3}\n", ["linear on a CxHxW tensor (4x8x8)", "axis: channels"]),
    ("  - add\n", ["add needs 'from'"]),
    ("  - concat: {from: [input, input], axis: width}\n", []),
    ("  - conv: {from: [input, input], out: 4, kernel: 1}\n", ["'from' of a conv names one tensor"]),
])
def test_graph_errors_are_one_located_line(text: str, words: list[str]) -> None:
    spec = "input: 4x8x8\nlayers:\n" + text
    if not words:
        assert loads(spec).nodes[-1].output_shape == (4, 8, 16)
        return
    with pytest.raises(SpecError) as caught:
        loads(spec, "g.yaml")
    message = caught.value.format()
    assert message.startswith("g.yaml:") and "\n" not in message
    for word in words:
        assert word in message, message


def test_broadcasting_joins_follow_pytorch() -> None:
    gate = loads("input: 16x8x8\nlayers:\n  - global_avg_pool\n  - sigmoid\n  - mul: {from: input}\n")
    assert gate.output_shape == (16, 8, 8)
    mask = loads("input: 16x8x8\nlayers:\n  - conv: {out: 1, kernel: 1}\n  - mul: {from: input}\n")
    row = analyze(mask).layers[-1]
    assert row.output_shape == (16, 8, 8) and dict(row.flops_by_category) == {"elementwise": 16 * 64}
    with pytest.raises(SpecError, match="each axis must be equal or 1"):
        loads("input: 16x8x8\nlayers:\n  - conv: {out: 4, kernel: 1}\n  - mul: {from: input}\n")
    with pytest.raises(SpecError, match="different ranks"):
        loads("input: 16x8x8\nlayers:\n  - global_avg_pool\n  - flatten\n  - mul: {from: input}\n")


def test_squeeze_excite_costs_what_its_layers_cost() -> None:
    compact = analyze(loads("input: 32x14x14\nlayers:\n  - squeeze_excite: {reduce: 8, activation: silu}\n"))
    spelled = analyze(loads("""\
input: 32x14x14
layers:
  - global_avg_pool: {name: pool}
  - conv: {out: 8, kernel: 1}
  - silu
  - conv: {out: 32, kernel: 1}
  - sigmoid
  - mul: {from: input}
"""))
    assert compact.totals == spelled.totals
    assert compact.totals.params == (32 * 8 + 8) + (8 * 32 + 32)
    assert compact.totals.macs == 32 * 8 * 2


def test_split_parts_are_views_read_by_name() -> None:
    network = loads("""\
input: 116x28x28
layers:
  - split: {name: half, parts: 2, names: [left, right]}
  - conv: {from: half.right, out: 58, kernel: 1}
  - concat: {from: [half.left, conv_1]}
  - channel_shuffle: {groups: 2}
""")
    report = analyze(network)
    rows = {row.name: row for row in report.layers}
    assert rows["half.left"].output_shape == (58, 28, 28) and rows["half.left"].flops == 0
    assert rows["concat_1"].inputs == ("half.left", "conv_1")
    assert report.output_shape == (116, 28, 28)
    # the split parts are views of the input: the peak holds input + conv output + concat output at most
    assert report.totals.peak_activation_bytes == (116 + 58 + 116) * 28 * 28 * 4


def test_normalization_and_layer_scale_conventions() -> None:
    layer_norm = analyze(loads("input: 96x56x56\nlayers:\n  - layer_norm\n")).layers[0]
    n = 96 * 56 * 56
    assert layer_norm.params == 2 * 96 and dict(layer_norm.flops_by_category) == {"normalization": 8 * n + 3 * 56 * 56}
    group = analyze(loads("input: 64x8x8\nlayers:\n  - group_norm: {groups: 8}\n")).layers[0]
    assert group.params == 128 and dict(group.flops_by_category) == {"normalization": 8 * 64 * 64 + 3 * 8}
    instance = analyze(loads("input: 64x8x8\nlayers:\n  - instance_norm\n")).layers[0]
    assert instance.params == 0 and dict(instance.flops_by_category) == {"normalization": 6 * 64 * 64 + 3 * 64}
    scale = analyze(loads("input: 64x8x8\nlayers:\n  - layer_scale\n")).layers[0]
    assert scale.params == 64 and dict(scale.flops_by_category) == {"elementwise": 64 * 64}
    over_last = analyze(loads("input: 7x7x96\nlayers:\n  - layer_norm: {over: last}\n")).layers[0]
    assert over_last.params == 2 * 96


def test_linear_over_channels_is_a_pointwise_conv() -> None:
    linear = analyze(loads("input: 96x56x56\nlayers:\n  - linear: {out: 384, axis: channels}\n"))
    conv = analyze(loads("input: 96x56x56\nlayers:\n  - conv: {out: 384, kernel: 1}\n"))
    assert linear.output_shape == conv.output_shape == (384, 56, 56)
    assert linear.totals.macs == conv.totals.macs == 56 * 56 * 96 * 384 == 115_605_504
    assert linear.totals.params == conv.totals.params


def test_pixel_shuffle_and_crop_shapes() -> None:
    network = loads("input: 16x8x8\nlayers:\n  - pixel_shuffle: {factor: 2}\n  - pixel_unshuffle: {factor: 2}\n"
                    "  - crop: {size: 6x4}\n")
    assert [node.output_shape for node in network.nodes] == [(4, 16, 16), (16, 8, 8), (16, 6, 4)]
    like = loads("input: 8x9x9\nlayers:\n  - conv: {name: small, out: 8, kernel: 3}\n"
                 "  - crop: {from: input, like: small}\n")
    assert like.output_shape == (8, 7, 7)


# --------------------------------------------------------------------------- templates

def test_if_and_repeat_zero_leave_entries_out() -> None:
    text = """\
input: 16x8x8
blocks:
  block:
    params: {out: null, stride: 1}
    layers:
      - residual:
          body:
            - conv: {out: $out, kernel: 3, stride: $stride, padding: 1, bias: false}
          shortcut:
            - conv: {if: "${stride != 1 or in_channels != out}", out: $out, kernel: 1, stride: $stride,
                     bias: false}
  sized:
    layers:
      - conv: {out: "${in_height * in_width}", kernel: 1}
layers:
  - block: {name: same, out: 16}
  - block: {name: down, out: 32, stride: 2}
  - relu: {repeat: 0}
  - sized
"""
    network = loads(text)
    names = [node.name for node in network.nodes]
    assert "same.shortcut.conv_1" not in names and "down.shortcut.conv_1" in names
    assert not any(name.startswith("relu") for name in names)
    assert network.output_shape == (16, 4, 4)  # in_height * in_width = 4 * 4 channels


def test_a_missing_template_parameter_is_reported_where_the_template_is_used() -> None:
    text = "input: 3x8x8\nblocks:\n  b:\n    params: {out: null, k: 3}\n    layers:\n" \
           "      - conv: {out: $out, kernel: $k}\nlayers:\n  - b: {k: 1}\n"
    with pytest.raises(SpecError) as caught:
        loads(text, "t.yaml")
    assert caught.value.where is not None and caught.value.where.line == 8
    assert "block 'b' needs parameter 'out'" in caught.value.message


def test_if_takes_comparisons_and_logic_and_refuses_numbers() -> None:
    base = "input: 3x8x8\nblocks:\n  b:\n    params: {n: 2}\n    layers:\n      - relu: {if: \"COND\"}\n" \
           "      - identity\nlayers:\n  - b\n"
    assert len(loads(base.replace("COND", "${n > 1 and not (n == 3)}")).nodes) == 2
    assert len(loads(base.replace("COND", "${n >= 3 or false}")).nodes) == 1
    with pytest.raises(SpecError, match="is a number where true or false is needed"):
        loads(base.replace("COND", "${n and true}"))
    with pytest.raises(SpecError, match="'if' must be true or false"):
        loads(base.replace("COND", "${n + 1}"))


# --------------------------------------------------------------------------- commands on graphs

def test_check_warns_about_a_layer_nobody_reads(tmp_path: Path) -> None:
    text = "input: 4x8x8\nlayers:\n  - conv: {name: lost, out: 4, kernel: 1}\n  - conv: {from: input, out: 2, kernel: 1}\n"
    result = check_text(text, "w.yaml")
    assert result.status == "ok" and [w.layer for w in result.warnings] == ["lost"]
    spec = tmp_path / "w.yaml"
    spec.write_text(text)
    cli = runner.invoke(app, ["check", str(spec)])
    assert cli.exit_code == 0 and cli.stderr.startswith("warning: ") and "'lost'" in cli.stderr


def test_compare_bottleneck_and_sweep_work_on_graphs() -> None:
    path = str(EXAMPLES / "fpn_resnet50.yaml")
    same = compare(analyze(load(path)), analyze(load(path)))
    assert all(value == 0 for value in same.deltas().values())
    result = runner.invoke(app, ["compare", path, "--reduce", "0.25", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [o["name"] for o in doc["candidate"]["outputs"]] == ["p2", "p3", "p4", "p5", "p6"]
    assert doc["candidate"]["outputs"] == doc["baseline"]["outputs"]
    assert doc["delta"]["macs"] < 0
    swept = runner.invoke(app, ["sweep", path, "--fractions", "0.25,0.5", "--json"])
    assert swept.exit_code == 0, swept.stderr
    assert json.loads(swept.stdout)["count"] == 2


def test_spec_schema_accepts_the_graph_keys() -> None:
    import jsonschema
    import yaml

    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    validator = jsonschema.Draft7Validator(schema)
    for name in ("fpn_resnet50", "unet", "efficientnet_b0", "convnext_tiny", "two_stream_fusion"):
        document = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
        assert [e.message for e in validator.iter_errors(document)] == [], name
    bad = {"input": "3x8x8", "layers": [{"add": {"from": ["a"], "bogus": 1}}]}
    assert list(validator.iter_errors(bad))


def test_graph_example_costs_are_exact_integers_end_to_end() -> None:
    for name in ("efficientnet_b0", "convnext_tiny", "unet", "fpn_resnet50", "two_stream_fusion"):
        report = analyze(load(str(EXAMPLES / f"{name}.yaml")), batch=3)
        t = report.totals
        assert t.macs == sum(row.macs for row in report.layers)
        assert t.flops == sum(count for _, count in t.flops_by_category)
        assert math.gcd(t.macs, 3) == 3  # batch scales every count
