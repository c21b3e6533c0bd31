"""Every formula in docs/conventions.md, checked against closed forms written here.

Each case builds a one- or two-layer spec, and the expected numbers are
computed in the test from the documented formula, never copied from output.
"""

from __future__ import annotations

import math

import pytest

from convcost import analyze, loads
from convcost.costs import COST_FUNCTIONS, FLOP_CATEGORIES, adaptive_window_total
from convcost.layers import ACTIVATIONS
from convcost.kinds import LAYER_KINDS
from convcost.units import DTYPE_BYTES, FLOPS_PER_MAC


def one(input_shape: str, layer: str, *, batch: int = 1, dtype: str = "float32"):
    report = analyze(loads(f"input: {input_shape}\nlayers:\n  - {layer}\n"), batch=batch, dtype=dtype)
    return report, report.layers[-1]


def category(row, name):
    return dict(row.flops_by_category).get(name, 0)


@pytest.mark.parametrize("c_in,h,w,c_out,k,stride,pad,dil,groups,bias", [
    (192, 28, 28, 32, 5, 1, 2, 1, 1, True),
    (3, 224, 224, 64, 7, 2, 3, 1, 1, False),
    (64, 56, 56, 64, 3, 1, 1, 1, 32, True),
    (16, 17, 13, 8, 3, 2, 0, 2, 4, True),
])
def test_conv2d(c_in, h, w, c_out, k, stride, pad, dil, groups, bias):
    report, row = one(f"{c_in}x{h}x{w}", f"conv: {{out: {c_out}, kernel: {k}, stride: {stride}, padding: {pad}, "
                      f"dilation: {dil}, groups: {groups}, bias: {str(bias).lower()}}}")
    oh = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    macs = c_out * oh * ow * (c_in // groups) * k * k
    assert row.output_shape == (c_out, oh, ow)
    assert row.macs == macs
    assert category(row, "mac") == FLOPS_PER_MAC * macs
    assert category(row, "bias") == (c_out * oh * ow if bias else 0)
    assert row.flops == 2 * macs + (c_out * oh * ow if bias else 0)
    assert row.params == c_out * (c_in // groups) * k * k + (c_out if bias else 0)


@pytest.mark.parametrize("shape,dims,kernel", [("4x20", 1, [3]), ("4x6x7x8", 3, [3, 1, 2])])
def test_conv_1d_3d(shape, dims, kernel):
    dims_in = [int(x) for x in shape.split("x")]
    _, row = one(shape, f"conv{dims}d: {{out: 5, kernel: {kernel}, bias: false}}")
    out = [d - k + 1 for d, k in zip(dims_in[1:], kernel)]
    assert row.output_shape == (5, *out)
    assert row.macs == 5 * math.prod(out) * dims_in[0] * math.prod(kernel)


def test_depthwise_and_pointwise():
    _, dw = one("32x14x14", "depthwise: {kernel: 3, padding: 1, multiplier: 2, bias: false}")
    assert dw.output_shape == (64, 14, 14)
    assert dw.macs == 64 * 14 * 14 * 1 * 9  # C_in/groups = 1
    assert dw.params == 64 * 9
    _, pw = one("32x14x14", "pointwise: {out: 16}")
    assert pw.macs == 16 * 14 * 14 * 32
    assert pw.params == 16 * 32 + 16


@pytest.mark.parametrize("c_in,l_in,c_out,k,stride,pad,out_pad,dil,groups", [
    (8, 7, 4, 4, 2, 1, 0, 1, 1),
    (6, 5, 9, 3, 3, 0, 2, 1, 3),
    (4, 9, 4, 3, 1, 2, 0, 2, 2),
])
def test_conv_transpose(c_in, l_in, c_out, k, stride, pad, out_pad, dil, groups):
    report, row = one(f"{c_in}x{l_in}x{l_in}", f"conv_transpose: {{out: {c_out}, kernel: {k}, stride: {stride}, "
                      f"padding: {pad}, output_padding: {out_pad}, dilation: {dil}, groups: {groups}}}")
    length = (l_in - 1) * stride - 2 * pad + dil * (k - 1) + out_pad + 1
    assert row.output_shape == (c_out, length, length)
    assert row.macs == c_in * l_in * l_in * (c_out // groups) * k * k
    assert row.params == c_in * (c_out // groups) * k * k + c_out
    assert category(row, "bias") == c_out * length * length


def test_linear_on_flattened_and_last_axis():
    _, row = one("4096", "linear: {out: 1000}")
    assert row.macs == 4096 * 1000
    assert row.params == 4096 * 1000 + 1000
    assert row.flops == 2 * 4096 * 1000 + 1000
    _, row = one("3x5x8", "linear: {out: 2, bias: false, axis: last}")  # the last axis, as nn.Linear
    assert row.output_shape == (3, 5, 2)
    assert row.macs == 3 * 5 * 8 * 2


def test_batch_norm():
    _, row = one("64x10x10", "batch_norm")
    assert row.params == 2 * 64 and row.buffers == 2 * 64
    assert category(row, "batch_norm") == 2 * 64 * 100 and row.macs == 0
    _, row = one("64x10x10", "batch_norm: {affine: false, track_running_stats: false}")
    assert row.params == 0 and row.buffers == 0


DOCUMENTED_ACTIVATION_FLOPS = {"relu": 1, "relu6": 2, "leaky_relu": 2, "sigmoid": 3, "tanh": 1, "gelu": 5,
                               "silu": 4, "hardswish": 5, "hardsigmoid": 4, "mish": 5, "elu": 4, "softplus": 3}


@pytest.mark.parametrize("name", sorted(DOCUMENTED_ACTIVATION_FLOPS))
def test_activation(name):
    _, row = one("3x4x5", name)
    assert category(row, "activation") == DOCUMENTED_ACTIVATION_FLOPS[name] * 60
    assert row.flops == row.flops_by_category[0][1] and row.params == 0


def test_every_activation_is_documented():
    assert set(ACTIVATIONS) == set(DOCUMENTED_ACTIVATION_FLOPS)


@pytest.mark.parametrize("op,k,s,p,ceil", [("max", 3, 2, 1, False), ("avg", 2, 2, 0, False), ("max", 3, 2, 0, True)])
def test_pooling(op, k, s, p, ceil):
    h = 15
    _, row = one(f"8x{h}x{h}", f"{op}_pool: {{kernel: {k}, stride: {s}, padding: {p}, ceil_mode: {str(ceil).lower()}}}")
    span = h + 2 * p - k
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= h + p:
        out -= 1
    assert row.output_shape == (8, out, out)
    per = k * k - 1 if op == "max" else k * k
    assert category(row, "pooling") == per * 8 * out * out


@pytest.mark.parametrize("length,out", [(7, 3), (10, 4), (5, 5), (6, 1), (13, 7)])
def test_adaptive_window_total_brute_force(length, out):
    total = 0
    for i in range(out):
        start = math.floor(i * length / out)
        end = math.ceil((i + 1) * length / out)
        total += end - start
    assert adaptive_window_total(length, out) == total


def test_adaptive_and_global_pool():
    _, row = one("16x7x7", "global_avg_pool")
    assert row.output_shape == (16, 1, 1)
    assert category(row, "pooling") == 16 * 49
    _, row = one("16x7x7", "global_max_pool")
    assert category(row, "pooling") == 16 * 49 - 16
    _, row = one("2x10x7", "adaptive_avg_pool: {output_size: [4, 3]}")
    assert row.output_shape == (2, 4, 3)
    # windows along 10 -> 4: [0,3) [2,5) [5,8) [7,10): 3+3+3+3; along 7 -> 3: [0,3) [2,5) [4,7): 9
    assert category(row, "pooling") == 2 * 12 * 9


def test_add_and_concat():
    report = analyze(loads("input: 8x5x5\nlayers:\n  - residual: {name: r, body: [relu]}\n"
                           "  - concat: {name: c, branches: [[], [pointwise: {out: 3}]]}\n"))
    rows = {row.name: row for row in report.layers}
    assert category(rows["r.add"], "add") == 8 * 25
    assert rows["c.concat"].output_shape == (11, 5, 5) and rows["c.concat"].flops == 0


@pytest.mark.parametrize("mode,d,shape,scale", [("nearest", None, "3x4x5", 2), ("bilinear", 2, "3x4x5", 2),
                                                 ("linear", 1, "3x9", 3), ("trilinear", 3, "2x2x3x4", 2)])
def test_upsample(mode, d, shape, scale):
    dims = [int(x) for x in shape.split("x")]
    _, row = one(shape, f"upsample: {{scale: {scale}, mode: {mode}}}")
    out = (dims[0], *(x * scale for x in dims[1:]))
    assert row.output_shape == out
    assert category(row, "upsample") == (0 if d is None else (2 ** (d + 1) - 1) * math.prod(out))


def test_upsample_fractional_scale_is_exact():
    _, row = one("1x10x10", "upsample: {scale: 1.1}")
    assert row.output_shape == (1, 11, 11)  # floor(10 * 1.1) = 11, no binary-float 10.999...


def test_softmax():
    _, row = one("1000", "softmax")
    assert category(row, "softmax") == 3 * 1000 - 1
    _, row = one("10x4x4", "softmax: {dim: 1}")  # over the 10 channels, 16 rows
    assert category(row, "softmax") == 16 * (3 * 10 - 1)


@pytest.mark.parametrize("layer", ["flatten", "dropout", "identity"])
def test_free_layers(layer):
    _, row = one("4x3x3", layer)
    assert row.macs == row.flops == row.params == 0


@pytest.mark.parametrize("dtype", sorted(DTYPE_BYTES))
@pytest.mark.parametrize("batch", [1, 3])
def test_memory_and_batch(dtype, batch):
    size = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}[dtype]
    report, row = one("192x28x28", "conv: {out: 32, kernel: 5, padding: same}", batch=batch, dtype=dtype)
    assert row.macs == batch * 120_422_400
    assert row.params == 153_632  # params do not scale with the batch
    assert row.weight_bytes == 153_632 * size
    assert row.activation_bytes == batch * 32 * 28 * 28 * size
    t = report.totals
    assert t.input_bytes == batch * 192 * 28 * 28 * size
    # one layer: input and output alive together
    assert t.peak_activation_bytes == batch * (192 + 32) * 28 * 28 * size


def test_totals_are_sums_of_rows():
    report = analyze(loads("input: 3x32x32\nlayers:\n  - conv: {out: 8, kernel: 3, padding: 1}\n  - batch_norm\n"
                           "  - relu\n  - max_pool: {kernel: 2}\n  - flatten\n  - linear: {out: 10}\n"))
    t = report.totals
    for field in ("macs", "flops", "params", "buffers", "weight_bytes", "activation_bytes"):
        assert getattr(t, field) == sum(getattr(row, field) for row in report.layers), field
    assert t.flops == sum(count for _, count in t.flops_by_category)
    assert dict(t.flops_by_category)["mac"] == FLOPS_PER_MAC * t.macs
    assert set(dict(t.flops_by_category)) == set(FLOP_CATEGORIES)


def test_cost_table_is_exhaustive():
    """Every layer type the builder can produce has a cost function (pip-audit's exhaustiveness check)."""
    import convcost.layers as layers

    layer_types = {getattr(layers, name) for name in layers.__all__
                   if isinstance(getattr(layers, name), type) and hasattr(getattr(layers, name), "output_shape")}
    assert layer_types == set(COST_FUNCTIONS)


def test_every_kind_builds_and_costs():
    samples = {"linear": ("64", "linear: {out: 3}"), "softmax": ("64", "softmax"),
               "group_norm": ("8x8x8", "group_norm: {groups: 2}"), "channel_shuffle": ("8x8x8", "channel_shuffle: {groups: 2}"),
               "pixel_shuffle": ("8x8x8", "pixel_shuffle: {factor: 2}"),
               "pixel_unshuffle": ("8x8x8", "pixel_unshuffle: {factor: 2}"), "crop": ("8x8x8", "crop: {size: 4}"),
               "opaque": ("8x8x8", "opaque: {op: Foo, shape: 4x2x2}"),
               **{join: ("8x8x8", f"{join}: {{from: input}}") for join in ("add", "sub", "mul", "max", "concat")}}
    for kind in LAYER_KINDS:
        shape, text = samples.get(kind, ("8x8x8", kind))
        if kind.endswith("1d"):
            shape = "8x8"
        elif kind.endswith("3d"):
            shape = "8x4x8x8"
        if kind.startswith(("conv", "depthwise")):
            text = f"{kind}: {{out: 8, kernel: 3}}" if kind != "depthwise" else "depthwise: {kernel: 3}"
        elif kind == "pointwise":
            text = "pointwise: {out: 4}"
        elif "pool" in kind and not kind.startswith(("global", "adaptive")):
            text = f"{kind}: {{kernel: 2}}"
        elif kind.startswith("adaptive"):
            text = f"{kind}: {{output_size: 2}}"
        elif kind == "upsample":
            text = "upsample: {scale: 2}"
        report, row = one(shape, text)
        assert row.kind and row.output_shape, kind
