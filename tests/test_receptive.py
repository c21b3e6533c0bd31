"""Receptive fields (convcost.receptive) against impulse propagation, published figures and closed forms.

The brute force runs each random network on one impulse per input pixel (all
channels), with every weight one, activations linear and max pools as average
pools, using PyTorch's index rules written out here (zero padding, 'same'
with the odd pixel on the right, transposed convolution as a scatter,
upsampling with align_corners=False, adaptive windows floor(oL/n) ..
ceil((o+1)L/n)). An input pixel influences an output position when some
channel there is nonzero; nothing cancels, since every weight is positive.
"""

from __future__ import annotations

import math
import random
import typing
from fractions import Fraction
from itertools import product

import numpy as np
import pytest

import convcost.layers as layers
from convcost import loads
from convcost.errors import SpecError
from convcost.layers import (
    Activation,
    AdaptivePool,
    Elementwise,
    BatchNorm,
    Concat,
    Conv,
    ConvTranspose,
    Dropout,
    Identity,
    Pool,
    Upsample,
)
from convcost.network import INPUT, Network, Node
from convcost.receptive import RULES, NodeField, receptive_fields

# --------------------------------------------------------------------------- brute force


def _axis_matrix(node: Node, axis: int) -> np.ndarray:
    """Weights (L_out x L_in) of one spatial axis of a layer with all weights one."""
    layer = node.layer
    n_in, n_out = node.input_shapes[0][1 + axis], node.output_shape[1 + axis]
    a = np.zeros((n_out, n_in), dtype=np.float32)
    if isinstance(layer, (Conv, Pool)):
        k, s, d = layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
        left = d * (k - 1) // 2 if isinstance(layer, Conv) and layer.same else layer.padding[axis]
        for o in range(n_out):
            for t in range(k):
                i = o * s - left + t * d
                if 0 <= i < n_in:
                    a[o, i] += 1
    elif isinstance(layer, ConvTranspose):
        k, s, d, p = layer.kernel[axis], layer.stride[axis], layer.dilation[axis], layer.padding[axis]
        for i in range(n_in):
            for t in range(k):
                o = i * s - p + t * d
                if 0 <= o < n_out:
                    a[o, i] += 1
    elif isinstance(layer, Upsample):
        scale = layer.scale[axis]
        for o in range(n_out):
            if layer.mode == "nearest":
                a[o, min(math.floor(o / scale), n_in - 1)] = 1
            else:
                source = max((o + Fraction(1, 2)) / scale - Fraction(1, 2), Fraction(0))
                i0 = math.floor(source)
                i1 = min(i0 + 1, n_in - 1)
                weight = source - i0
                a[o, i0] += float(1 - weight)
                a[o, i1] += float(weight)
    elif isinstance(layer, AdaptivePool):
        for o in range(n_out):
            a[o, o * n_in // n_out: -(-(o + 1) * n_in // n_out)] = 1
    else:
        raise AssertionError(type(layer))
    return a


def _channel_matrix(node: Node) -> np.ndarray:
    layer = node.layer
    c_in, c_out = node.input_shapes[0][0], node.output_shape[0]
    if isinstance(layer, (Conv, ConvTranspose)):
        g = layer.groups
        return np.array([[1.0 if co // (c_out // g) == ci // (c_in // g) else 0.0 for ci in range(c_in)]
                         for co in range(c_out)], dtype=np.float32)
    return np.eye(c_in, dtype=np.float32)


def _along_last(y: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply ``matrix`` (L_out x L_in) to the last axis of ``y``."""
    flat = np.ascontiguousarray(y).reshape(-1, y.shape[-1])
    return (flat @ matrix.T).reshape(*y.shape[:-1], matrix.shape[0])


def impulse_responses(network: Network) -> list[np.ndarray]:
    """Every node's output for a batch of impulses: (input pixels, C, *spatial)."""
    shape = network.input_shape
    pixels = math.prod(shape[1:])
    x = np.zeros((pixels, *shape), dtype=np.float32)
    for b, position in enumerate(product(*(range(n) for n in shape[1:]))):
        x[(b, slice(None), *position)] = 1.0
    outputs: list[np.ndarray] = []
    for node in network.nodes:
        inputs = [x if ref == INPUT else outputs[ref] for ref in node.inputs]
        layer = node.layer
        if isinstance(layer, Elementwise):
            y = sum(inputs[1:], inputs[0])
        elif isinstance(layer, Concat):
            y = np.concatenate(inputs, axis=1)
        elif isinstance(layer, (BatchNorm, Activation, Dropout, Identity)):
            y = inputs[0]
        else:
            y = inputs[0]
            if isinstance(layer, (Conv, ConvTranspose)):  # mix channels within groups
                y = _along_last(y.swapaxes(1, -1), _channel_matrix(node)).swapaxes(1, -1)
            if len(shape) == 3:  # (B, C, H, W): the height, then the width
                y = _along_last(y.swapaxes(-1, -2), _axis_matrix(node, 0)).swapaxes(-1, -2)
            y = _along_last(y, _axis_matrix(node, len(shape) - 2))
        outputs.append(y)
    return outputs


def measured_bounds(response: np.ndarray, input_spatial: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per input axis: first and last input pixel (-1 when none) influencing each output position."""
    influence = (response > 0).any(axis=1).reshape(*input_spatial, *response.shape[2:])
    result = []
    for axis, n in enumerate(input_spatial):
        other = tuple(a for a in range(len(input_spatial)) if a != axis)
        along = influence.any(axis=other) if other else influence  # (n, *out_spatial)
        present = along.any(axis=0)
        first = np.where(present, along.argmax(axis=0), -1)
        last = np.where(present, n - 1 - along[::-1].argmax(axis=0), -1)
        result.append((first, last))
    return result


# --------------------------------------------------------------------------- random networks


def _conv(rng: random.Random, channels: int, out: int | None = None, shape_keeping: bool = False) -> str:
    out = out if out is not None else rng.randint(1, 3)
    groups = rng.choice([g for g in (1, 2, 3) if channels % g == 0 and out % g == 0])
    k, d = rng.randint(1, 4), rng.randint(1, 3)
    if shape_keeping:
        padding = "same" if (k % 2 == 0 or rng.random() < 0.5) else str(d * (k - 1) // 2)
        return f"conv: {{out: {out}, kernel: {k}, padding: {padding}, dilation: {d}, groups: {groups}}}"
    s = rng.randint(1, 3)
    padding = "same" if s == 1 and rng.random() < 0.3 else str(rng.randint(0, 2))
    return f"conv: {{out: {out}, kernel: {k}, stride: {s}, padding: {padding}, dilation: {d}, groups: {groups}}}"


def _leaf(rng: random.Random, channels: int, dims: int) -> str:
    kind = rng.choice(["conv", "conv", "conv_transpose", "max_pool", "avg_pool", "upsample", "adaptive", "relu"])
    if kind == "conv":
        return _conv(rng, channels)
    if kind == "conv_transpose":
        k, s, d = rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 2)
        return (f"conv_transpose: {{out: {rng.randint(1, 3)}, kernel: {k}, stride: {s}, padding: {rng.randint(0, 2)}, "
                f"dilation: {d}, output_padding: {rng.randint(0, max(s, d) - 1)}}}")
    if kind in ("max_pool", "avg_pool"):
        k = rng.randint(1, 3)
        dilation = f", dilation: {rng.randint(1, 2)}" if kind == "max_pool" else ""
        return (f"{kind}: {{kernel: {k}, stride: {rng.randint(1, 3)}, padding: {rng.randint(0, k // 2)}, "
                f"ceil_mode: {rng.choice(['true', 'false'])}{dilation}}}")
    if kind == "upsample":
        mode = rng.choice(["nearest", "linear" if dims == 1 else "bilinear"])
        return f"upsample: {{scale: {rng.choice(['2', '3', '1.5', '2.5', '0.5'])}, mode: {mode}}}"
    if kind == "adaptive":
        return f"adaptive_avg_pool: {{output_size: {rng.randint(2, 12)}}}"
    return rng.choice(["relu", "batch_norm", "identity"])


def _shape_keeping(rng: random.Random, channels: int, dims: int, out: int) -> list[str]:
    """A short branch that keeps the spatial shape (for even lengths) and ends with ``out`` channels."""
    pieces: list[str] = []
    for _ in range(rng.randint(1, 2)):
        kind = rng.choice(["conv", "conv", "pool", "down_up"])
        if kind == "conv":
            pieces.append(_conv(rng, channels, out=out, shape_keeping=True))
            channels = out
        elif kind == "pool":
            pieces.append(f"{rng.choice(['max_pool', 'avg_pool'])}: {{kernel: 3, stride: 1, padding: 1}}")
        else:
            pieces.append(rng.choice([f"conv: {{out: {out}, kernel: 3, stride: 2, padding: 1}}",
                                      "max_pool: {kernel: 2}"]))
            channels = out if pieces[-1].startswith("conv") else channels
            mode = rng.choice(["nearest", "linear" if dims == 1 else "bilinear"])
            pieces.append(rng.choice([f"upsample: {{scale: 2, mode: {mode}}}",
                                      f"conv_transpose: {{out: {out}, kernel: 4, stride: 2, padding: 1}}",
                                      f"conv_transpose: {{out: {out}, kernel: 2, stride: 2}}"]))
            channels = out if pieces[-1].startswith("conv") else channels
    if channels != out:
        pieces.append(f"pointwise: {{out: {out}}}")
    return pieces


def _structure(rng: random.Random, channels: int, dims: int) -> str:
    if rng.random() < 0.5:
        body = ", ".join(_shape_keeping(rng, channels, dims, channels))
        shortcut = ", ".join(_shape_keeping(rng, channels, dims, channels)) if rng.random() < 0.4 else ""
        return f"residual: {{body: [{body}], shortcut: [{shortcut}]}}"
    branches = ", ".join("[" + ", ".join(_shape_keeping(rng, channels, dims, rng.randint(1, 2))) + "]"
                         for _ in range(rng.randint(2, 3)))
    return f"concat: {{branches: [{branches}]}}"


def _spec(input_shape: str, items: list[str]) -> str:
    return f"name: random\ninput: {input_shape}\nlayers:\n" + "".join(f"  - {item}\n" for item in items)


def random_network(rng: random.Random, dims: int) -> tuple[str, Network]:
    """Grow a network item by item, keeping only items that build on the current shape."""
    lengths = [rng.randint(100, 200)] if dims == 1 else [rng.randint(20, 30), rng.randint(20, 30)]
    input_shape = "x".join(map(str, [rng.randint(1, 2), *lengths]))
    items: list[str] = []
    network = loads(_spec(input_shape, ["identity"]))
    for _ in range(rng.randint(2, 5) if dims == 1 else rng.randint(1, 3)):
        channels = network.output_shape[0]
        for _attempt in range(20):
            item = _structure(rng, channels, dims) if rng.random() < 0.4 else _leaf(rng, channels, dims)
            try:
                candidate = loads(_spec(input_shape, [*items, item]))
            except SpecError:
                continue
            if max(math.prod(node.output_shape[1:]) for node in candidate.nodes) <= 1000:
                items.append(item)
                network = candidate
                break
    return _spec(input_shape, items), network


def check_against_brute_force(network: Network) -> tuple[bool, int]:
    """Compare every node with the impulse responses. Returns whether the last node had a full
    period of interior positions along every axis (so its size, jump and offset were measured),
    and how many (node, position) pairs were compared exactly."""
    fields = receptive_fields(network)
    responses = impulse_responses(network)
    input_spatial = network.input_shape[1:]
    margin = max(axis.size for field in fields for axis in field.axes)
    measured_all = True
    compared = 0
    for node, field, response in zip(network.nodes, fields, responses):
        bounds = measured_bounds(response, input_spatial)
        out_spatial = node.output_shape[1:]
        interior = np.ones(out_spatial, dtype=bool)
        for a, axis in enumerate(field.axes):
            largest = 0
            for position in product(*(range(n) for n in out_spatial)):
                first, last = int(bounds[a][0][position]), int(bounds[a][1][position])
                model = axis.bounds(position[a])
                if first >= 0:
                    largest = max(largest, last - first + 1)
                    # Every position: the measured field lies within the theoretical one.
                    assert model is not None and model[0] <= first <= last <= model[1], (node.name, position)
                if model is not None and not margin <= model[0] <= model[1] <= input_spatial[a] - 1 - margin:
                    interior[position] = False  # near a border (positions without a field are exact anywhere)
            assert largest <= axis.size, node.name
        for position in zip(*np.nonzero(interior)):
            models = [axis.bounds(int(position[a])) for a, axis in enumerate(field.axes)]
            measured = [(int(bounds[a][0][position]), int(bounds[a][1][position])) for a in range(len(field.axes))]
            # Far from the borders: exactly the theoretical field (none at all if one axis has none).
            expected = [(-1, -1)] * len(models) if None in models else models
            assert measured == expected, (node.name, position)
            compared += 1
        if node is network.nodes[-1]:
            measured_all = _check_size_jump_offset(field, bounds, interior)
    return measured_all, compared


def _check_size_jump_offset(field: NodeField, bounds: list[tuple[np.ndarray, np.ndarray]],
                            interior: np.ndarray) -> bool:
    """Along one interior line per axis: the largest span, the jump and the offset, measured."""
    for a, axis in enumerate(field.axes):
        assert axis.period is not None and axis.jump is not None
        line = None
        for position in zip(*np.nonzero(interior)):
            if any(other.bounds(int(position[b])) is None for b, other in enumerate(field.axes) if b != a):
                continue
            index = tuple(slice(None) if b == a else int(position[b]) for b in range(interior.ndim))
            run = np.nonzero(interior[index])[0]
            if len(run) > axis.period and (np.diff(run) == 1).all():
                line = index
                break
        if line is None:
            return False
        first, last = bounds[a][0][line], bounds[a][1][line]
        run = np.nonzero(interior[line])[0]
        start = int(run[0])
        cycle = range(start, start + axis.period)
        with_field = [o for o in cycle if first[o] >= 0]
        if not with_field:  # no position depends on the input (transposed-convolution gaps read by a stride)
            assert (axis.size, axis.offset) == (0, None)
            continue
        assert max(int(last[o] - first[o] + 1) for o in with_field) == axis.size
        o = with_field[0]
        jump = Fraction(int(first[o + axis.period] - first[o]), axis.period)
        assert jump == axis.jump
        offset = sum((Fraction(int(first[o] + last[o]), 2) - o * jump for o in with_field), Fraction(0))
        assert offset / len(with_field) == axis.offset
    return True


@pytest.mark.parametrize("dims, seed", [(1, s) for s in range(4)] + [(2, s) for s in range(2)])
def test_random_networks_match_impulse_propagation(dims: int, seed: int) -> None:
    rng = random.Random(1000 * dims + seed)
    count = fully = joins = phased = compared = 0
    while count < 40:
        _, network = random_network(rng, dims)
        if not network.nodes:
            continue
        count += 1
        full, positions = check_against_brute_force(network)
        fully += full
        compared += positions
        joins += any(isinstance(node.layer, (Elementwise, Concat)) for node in network.nodes)
        phased += any(axis.period != 1 for field in receptive_fields(network) for axis in field.axes)
    # 6 x 40 = 240 networks: most measured in full, many joining branches or with phase-dependent fields.
    assert fully >= 15 and joins >= 15 and phased >= 8 and compared >= 2000, (fully, joins, phased, compared)


# --------------------------------------------------------------------------- published figures

VGG16_TO_CONV5_3 = """\
input: 3x224x224
layers:
  - conv: {out: 64, kernel: 3, padding: 1}
  - conv: {out: 64, kernel: 3, padding: 1}
  - max_pool: {kernel: 2, stride: 2}
  - conv: {out: 128, kernel: 3, padding: 1}
  - conv: {out: 128, kernel: 3, padding: 1}
  - max_pool: {kernel: 2, stride: 2}
  - conv: {out: 256, kernel: 3, padding: 1}
  - conv: {out: 256, kernel: 3, padding: 1}
  - conv: {out: 256, kernel: 3, padding: 1}
  - max_pool: {kernel: 2, stride: 2}
  - conv: {out: 512, kernel: 3, padding: 1}
  - conv: {out: 512, kernel: 3, padding: 1}
  - conv: {out: 512, kernel: 3, padding: 1}
  - max_pool: {kernel: 2, stride: 2}
  - conv: {out: 512, kernel: 3, padding: 1}
  - conv: {out: 512, kernel: 3, padding: 1}
  - conv: {name: conv5_3, out: 512, kernel: 3, padding: 1}
"""

# AlexNet (Krizhevsky et al. 2012) on 227x227, as in the Caffe reference model.
ALEXNET_TO_POOL5 = """\
input: 3x227x227
layers:
  - conv: {out: 96, kernel: 11, stride: 4}
  - relu
  - max_pool: {kernel: 3, stride: 2}
  - conv: {out: 256, kernel: 5, padding: 2, groups: 2}
  - relu
  - max_pool: {kernel: 3, stride: 2}
  - conv: {out: 384, kernel: 3, padding: 1}
  - conv: {out: 384, kernel: 3, padding: 1, groups: 2}
  - conv: {out: 256, kernel: 3, padding: 1, groups: 2}
  - relu
  - max_pool: {name: pool5, kernel: 3, stride: 2}
"""


def test_vgg16_conv5_3_field_is_196() -> None:
    # Published: 196 pixels (e.g. Araujo et al., "Computing Receptive Fields of CNNs", Distill 2019).
    last = receptive_fields(loads(VGG16_TO_CONV5_3))[-1]
    assert last.name == "conv5_3"
    assert [(a.size, a.jump) for a in last.axes] == [(196, 16), (196, 16)]


def test_alexnet_pool5_field_is_195() -> None:
    last = receptive_fields(loads(ALEXNET_TO_POOL5))[-1]
    assert last.name == "pool5"
    # 11 + 2*4 (pool1) + 4*8 (conv2) + 2*8 (pool2) + 3 * 2*16 (conv3-5) + 2*16 (pool5) = 195 pixels.
    # Position 0 starts at -(2*8 + 3 * 1*16) = -64 (conv2's and conv3-5's padding): centre -64 + 97 = 33.
    assert [(a.size, a.jump, a.offset) for a in last.axes] == [(195, 32, 33), (195, 32, 33)]


# --------------------------------------------------------------------------- closed forms


def _last(text: str) -> NodeField:
    return receptive_fields(loads("input: 1x64\nlayers:\n" + text))[-1]


@pytest.mark.parametrize("k, s, p, d", [(3, 1, 1, 1), (5, 2, 0, 1), (3, 1, 2, 2), (4, 3, 1, 3), (1, 2, 0, 1)])
def test_one_conv(k: int, s: int, p: int, d: int) -> None:
    axis = _last(f"  - conv: {{out: 1, kernel: {k}, stride: {s}, padding: {p}, dilation: {d}}}\n").axes[0]
    # Position o reads o*s - p + t*d for t < k: a span of d(k-1)+1 pixels centred at d(k-1)/2 - p.
    assert (axis.size, axis.jump, axis.offset, axis.period) == (d * (k - 1) + 1, s, Fraction(d * (k - 1), 2) - p, 1)


def test_same_padding_puts_the_odd_pixel_on_the_right() -> None:
    axis = _last("  - conv: {out: 1, kernel: 4, padding: same}\n").axes[0]
    assert axis.bounds(0) == (-1, 2)  # left pad 1, right pad 2
    assert (axis.size, axis.offset) == (4, Fraction(1, 2))


def test_chain_of_convs_closed_form() -> None:
    layers_ = [(3, 2, 1), (5, 1, 2), (3, 2, 1), (2, 2, 0)]  # (kernel, stride, padding)
    text = "".join(f"  - conv: {{out: 1, kernel: {k}, stride: {s}, padding: {p}}}\n" for k, s, p in layers_)
    size, jump, start = 1, 1, 0
    for k, s, p in layers_:
        size, start, jump = size + (k - 1) * jump, start - p * jump, jump * s
    axis = _last(text).axes[0]
    assert (axis.size, axis.jump, axis.bounds(0)) == (size, jump, (start, start + size - 1))


def test_nearest_upsampling_after_stride_has_two_phases() -> None:
    # conv k3 s2 p1: position o sees [2o-1, 2o+1]; upsample x2 nearest: o sees that of o // 2.
    axis = _last("  - conv: {out: 1, kernel: 3, stride: 2, padding: 1}\n  - upsample: {scale: 2}\n").axes[0]
    assert (axis.size, axis.jump, axis.period) == (3, 1, 2)
    assert [axis.bounds(o) for o in range(4)] == [(-1, 1), (-1, 1), (1, 3), (1, 3)]
    # centre(o) - o * jump over one period: 0 - 0 and 0 - 1; their mean is -1/2.
    assert axis.offset == Fraction(-1, 2)


def test_linear_upsampling_reads_two_neighbours() -> None:
    # x2, align_corners=False: output o reads floor(o/2 - 1/4) and the next pixel; offset -1/4.
    axis = _last("  - upsample: {scale: 2, mode: linear}\n").axes[0]
    assert (axis.size, axis.jump, axis.offset) == (2, Fraction(1, 2), Fraction(-1, 4))
    # x3: source (o - 1)/3 is a whole pixel for o = 1 (mod 3): one neighbour there, two elsewhere.
    axis = _last("  - upsample: {scale: 3, mode: linear}\n").axes[0]
    assert [axis.bounds(o) for o in range(3)] == [(-1, 0), (0, 0), (0, 1)]
    assert (axis.size, axis.jump) == (2, Fraction(1, 3))


def test_transposed_conv_gaps_and_phases() -> None:
    # k=1, s=2: even outputs copy input o/2, odd outputs receive nothing.
    axis = _last("  - conv_transpose: {out: 1, kernel: 1, stride: 2}\n").axes[0]
    assert [axis.bounds(o) for o in range(4)] == [(0, 0), None, (1, 1), None]
    assert (axis.size, axis.jump, axis.offset) == (1, Fraction(1, 2), 0)
    # k=3, s=2, p=1: output o receives i with 2i - 1 + t = o: odd o from one input, even o from two.
    axis = _last("  - conv_transpose: {out: 1, kernel: 3, stride: 2, padding: 1}\n").axes[0]
    assert [axis.bounds(o) for o in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert (axis.size, axis.jump) == (2, Fraction(1, 2))


def test_residual_join_is_the_union() -> None:
    # body: two k=2 'same' convs see [o, o+2]; shortcut conv k=3 p=1 sees [o-1, o+1]; union [o-1, o+2].
    axis = _last("  - residual: {body: [conv: {out: 1, kernel: 2, padding: same}, "
                 "conv: {out: 1, kernel: 2, padding: same}], "
                 "shortcut: [conv: {out: 1, kernel: 3, padding: 1}]}\n").axes[0]
    assert (axis.size, axis.jump, axis.offset) == (4, 1, Fraction(1, 2))


def test_join_of_different_jumps_keeps_both() -> None:
    # 12 pixels: branch 1 conv k7 sees [o, o+6] (jump 1); branch 2 conv k1 s2 sees [2o, 2o] (jump 2).
    # Union over the 6 positions: [min(o, 2o), max(o+6, 2o)], largest 7 pixels; no single jump.
    network = loads("input: 1x12\nlayers:\n  - concat: {branches: [[conv: {out: 1, kernel: 7}], "
                    "[conv: {out: 1, kernel: 1, stride: 2}]]}\n")
    axis = receptive_fields(network)[-1].axes[0]
    spans = [max(o + 6, 2 * o) - min(o, 2 * o) + 1 for o in range(6)]
    assert (axis.size, axis.jump, axis.offset) == (max(spans), None, None)
    assert [axis.bounds(o) for o in range(6)] == [(o, max(o + 6, 2 * o)) for o in range(6)]
    bounds = measured_bounds(impulse_responses(network)[-1], (12,))
    assert [(int(bounds[0][0][o]), int(bounds[0][1][o])) for o in range(6)] == [axis.bounds(o) for o in range(6)]


def test_global_pool_and_linear_see_the_whole_input() -> None:
    fields = receptive_fields(loads("input: 3x20x30\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - global_avg_pool\n"
                                    "  - flatten\n  - linear: {out: 2}\n"))
    conv, pool, flat, linear = fields
    assert [a.size for a in conv.axes] == [3, 3]
    for field in (pool, flat, linear):
        assert [(a.size, a.jump, a.offset, a.whole) for a in field.axes] == [
            (20, 0, Fraction(19, 2), True), (30, 0, Fraction(29, 2), True)]
    # Linear straight after flatten (no pooling): whole input; flatten alone keeps each element's field.
    fields = receptive_fields(loads("input: 3x20x30\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - flatten\n"
                                    "  - linear: {out: 2}\n"))
    assert [a.size for a in fields[1].axes] == [3, 3] and [a.whole for a in fields[2].axes] == [True, True]


def test_linear_and_softmax_over_one_spatial_axis() -> None:
    fields = receptive_fields(loads("input: 2x10x12\nlayers:\n  - conv: {out: 2, kernel: 3, padding: 1}\n"
                                    "  - linear: {out: 5, axis: last}\n  - softmax: {dim: 2}\n  - softmax: {dim: 1}\n"))
    assert [(a.size, a.whole) for a in fields[1].axes] == [(3, False), (12, True)]  # linear acts on the width
    assert [(a.size, a.whole) for a in fields[2].axes] == [(10, True), (12, True)]  # dim 2 is the height
    assert [(a.size, a.whole) for a in fields[3].axes] == [(10, True), (12, True)]  # channels: unchanged


def test_adaptive_pool_windows() -> None:
    # 10 -> 4: windows [0,2], [2,4], [5,7], [7,9] (floor(10o/4) .. ceil(10(o+1)/4) - 1).
    network = loads("input: 1x10\nlayers:\n  - adaptive_avg_pool: {output_size: 4}\n")
    axis = receptive_fields(network)[-1].axes[0]
    assert [axis.bounds(o) for o in range(4)] == [(0, 2), (2, 4), (5, 7), (7, 9)]
    assert (axis.size, axis.jump, axis.period) == (3, Fraction(5, 2), 2)


def test_rule_table_covers_every_layer_type() -> None:
    assert set(typing.get_args(layers.Layer)) == set(RULES)


def test_input_and_elementwise_layers() -> None:
    fields = receptive_fields(loads("input: 2x8x8\nlayers:\n  - batch_norm\n  - relu\n  - dropout\n  - identity\n"))
    for field in fields:
        assert [(a.size, a.jump, a.offset, a.period) for a in field.axes] == [(1, 1, 0, 1)] * 2


def test_a_join_with_a_global_branch_sees_the_whole_input() -> None:
    # Pyramid pooling: the globally pooled branch, upsampled back, joins a local 3x3 branch.
    fields = receptive_fields(loads("input: 2x16x16\nlayers:\n  - concat: {branches: [[conv: {out: 2, kernel: 3, "
                                    "padding: 1}], [global_avg_pool, upsample: {scale: 16}]]}\n"))
    assert [(a.size, a.whole) for a in fields[0].axes] == [(3, False), (3, False)]
    assert [(a.size, a.jump, a.whole) for a in fields[-1].axes] == [(16, 0, True), (16, 0, True)]


def test_a_pattern_that_never_repeats_is_refused() -> None:
    from convcost.receptive import MAX_PERIOD, ReceptiveFieldError

    network = loads("input: 1x8\nlayers:\n  - upsample: {scale: 1.0000001}\n")  # repeats every 10,000,001 outputs
    assert 10_000_001 > MAX_PERIOD
    with pytest.raises(ReceptiveFieldError, match="repeats only every 10,000,001 positions"):
        receptive_fields(network)


def test_unknown_layer_type_is_an_error() -> None:
    with pytest.raises(TypeError, match="no receptive-field rule for layer type Conv"):
        receptive_fields(loads("input: 1x8\nlayers:\n  - conv: {out: 1, kernel: 3}\n"), rules={})
