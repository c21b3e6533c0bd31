"""Training MACs (convcost.backward) against a counted numpy backward pass and closed forms."""

from __future__ import annotations

import itertools
import math
import random
import typing
from pathlib import Path

import numpy as np
import pytest

import convcost.layers as layers
from convcost import analyze, load, loads
from convcost.errors import SpecError
from convcost.layers import Conv, ConvTranspose, Linear
from convcost.network import INPUT, Node
from convcost.backward import RULES, training_macs
from tests import bruteforce

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# --------------------------------------------------------------------------- a counted backward pass


def _pairs(node: Node) -> list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Every (weight index, input index, output index) multiply of the forward pass, padding included.

    Convolution: output (co, o) reads input (ci, o*s - left + t*d) with weight (co, ci_local, t);
    an index outside the input is padding (the product is zero, but it is performed).
    Transposed convolution: input (ci, i) scatters through weight (ci, co_local, t) to output
    (co, i*s - p + t*d); an output index outside [0, L_out) is cropped.
    """
    layer = node.layer
    c_in, spatial_in = node.input_shapes[0][0], node.input_shapes[0][1:]
    c_out, spatial_out = node.output_shape[0], node.output_shape[1:]
    pairs = []
    assert isinstance(layer, (Conv, ConvTranspose))
    g = layer.groups
    taps = list(itertools.product(*(range(k) for k in layer.kernel)))
    if isinstance(layer, Conv):
        lefts = [d * (k - 1) // 2 if layer.same else p for k, d, p in zip(layer.kernel, layer.dilation, layer.padding)]
        for co, o in itertools.product(range(c_out), itertools.product(*(range(n) for n in spatial_out))):
            group = co // (c_out // g)
            for ci_local, t in itertools.product(range(c_in // g), taps):
                i = tuple(oo * s - left + tt * d
                          for oo, s, left, tt, d in zip(o, layer.stride, lefts, t, layer.dilation))
                pairs.append(((co, ci_local, *t), (group * (c_in // g) + ci_local, *i), (co, *o)))
    else:
        for ci, i in itertools.product(range(c_in), itertools.product(*(range(n) for n in spatial_in))):
            group = ci // (c_in // g)
            for co_local, t in itertools.product(range(c_out // g), taps):
                o = tuple(ii * s - p + tt * d
                          for ii, s, p, tt, d in zip(i, layer.stride, layer.padding, t, layer.dilation))
                pairs.append(((ci, co_local, *t), (ci, *i), (group * (c_out // g) + co_local, *o)))
    return pairs


def _inside(index: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    return all(0 <= i < n for i, n in zip(index, shape))


def forward(node: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    y = np.zeros(node.output_shape)
    for wi, xi, yi in _pairs(node):
        if _inside(xi, x.shape) and _inside(yi, y.shape):
            y[yi] += w[wi] * x[xi]
    return y


def backward(node: Node, x: np.ndarray, w: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Weight and input gradients by the chain rule over the forward's pairs, and the multiplies of each."""
    dw, dx = np.zeros(w.shape), np.zeros(x.shape)
    weight_multiplies = input_multiplies = 0
    for wi, xi, yi in _pairs(node):
        # A padded input reads 0 and a cropped output has gradient 0: the multiplies are still performed.
        x_value = x[xi] if _inside(xi, x.shape) else 0.0
        dy_value = dy[yi] if _inside(yi, dy.shape) else 0.0
        dw[wi] += x_value * dy_value
        weight_multiplies += 1
        if _inside(xi, x.shape):
            dx[xi] += w[wi] * dy_value
        input_multiplies += 1  # into the padded input's gradient, later cropped
    return dw, dx, weight_multiplies, input_multiplies


def _weights(node: Node, rng: np.random.Generator) -> np.ndarray:
    layer = node.layer
    assert isinstance(layer, (Conv, ConvTranspose))
    if isinstance(layer, Conv):
        return rng.standard_normal((layer.out_channels, layer.in_channels // layer.groups, *layer.kernel))
    return rng.standard_normal((layer.in_channels, layer.out_channels // layer.groups, *layer.kernel))


def _random_conv(rng: random.Random) -> str:
    dims = rng.choice([1, 2])
    spatial = "x".join(str(rng.randint(2, 6)) for _ in range(dims))
    g = rng.choice([1, 1, 2])
    c_in, c_out = g * rng.randint(1, 2), g * rng.randint(1, 2)
    k, s, d = rng.randint(1, 3), rng.randint(1, 2), rng.randint(1, 2)
    common = f"out: {c_out}, kernel: {k}, dilation: {d}, groups: {g}"
    if rng.random() < 0.3:
        text = f"conv_transpose: {{{common}, stride: {s}, padding: {rng.randint(0, 1)}}}"
    elif rng.random() < 0.3:
        text = f"conv: {{{common}, padding: same}}"
    else:
        text = f"conv: {{{common}, stride: {s}, padding: {rng.randint(0, 2)}}}"
    return f"input: {c_in}x{spatial}\nlayers:\n  - {text}\n"


def test_counted_backward_of_random_convolutions() -> None:
    rng, values = random.Random(3), np.random.default_rng(3)
    checked = 0
    while checked < 40:
        try:
            network = loads(_random_conv(rng))
        except SpecError:
            continue
        (node,) = network.nodes
        x = values.standard_normal(node.input_shapes[0])
        w = _weights(node, values)
        dy = values.standard_normal(node.output_shape)
        # The forward is a real (transposed) convolution ...
        layer = node.layer
        if isinstance(layer, Conv):
            pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) if layer.same else (p, p)
                    for k, d, p in zip(layer.kernel, layer.dilation, layer.padding)]
            reference, _ = bruteforce.conv(x, w, stride=layer.stride, padding=pads, dilation=layer.dilation,
                                           groups=layer.groups)
        else:
            assert isinstance(layer, ConvTranspose)
            reference, _ = bruteforce.conv_transpose(x, w, stride=layer.stride, padding=layer.padding,
                                                     dilation=layer.dilation, groups=layer.groups)
        assert np.allclose(forward(node, x, w), reference)
        # ... its gradients of L = sum(dy * y) match central differences (exact: L is linear in x and in w),
        # along a few coordinates and along random directions (which weigh every entry at once) ...
        dw, dx, weight_multiplies, input_multiplies = backward(node, x, w, dy)
        for array, gradient, moved in ((w, dw, lambda d: forward(node, x, w + d)),
                                       (x, dx, lambda d: forward(node, x + d, w))):
            coordinates = [np.eye(array.size)[values.integers(array.size)].reshape(array.shape) for _ in range(3)]
            for step in [*coordinates, *values.standard_normal((2, *array.shape))]:
                numeric = (np.sum(dy * moved(step)) - np.sum(dy * moved(-step))) / 2
                assert numeric == pytest.approx(np.sum(gradient * step), rel=1e-9, abs=1e-9)
        # ... and each gradient takes exactly the forward's MACs.
        macs = analyze(network).totals.macs
        assert weight_multiplies == input_multiplies == macs
        row = training_macs(network).nodes[0]
        assert (row.forward_macs, row.weight_grad_macs, row.input_grad_macs) == (macs, weight_multiplies, 0)
        checked += 1


def test_counted_backward_of_linear() -> None:
    # y = x W^T over the last axis of a (3, 5) input: dW = dy^T x and dx = dy W, 3*5*4 multiplies each.
    network = loads("input: 2x3x5\nlayers:\n  - conv: {out: 3, kernel: 1}\n  - linear: {out: 4, axis: last}\n")
    rows = 3 * 3
    row = training_macs(network).nodes[1]
    assert (row.forward_macs, row.weight_grad_macs, row.input_grad_macs) == (rows * 5 * 4,) * 3


# --------------------------------------------------------------------------- which inputs need a gradient


def _conv_macs(node: Node) -> int:
    layer = node.layer
    if isinstance(layer, Conv):
        return math.prod(node.output_shape) * (layer.in_channels // layer.groups) * math.prod(layer.kernel)
    if isinstance(layer, ConvTranspose):
        return math.prod(node.input_shapes[0]) * (layer.out_channels // layer.groups) * math.prod(layer.kernel)
    if isinstance(layer, Linear):
        return math.prod(node.output_shape) // layer.out_features * layer.in_features * layer.out_features
    return 0


def test_chain_first_layer_has_no_input_gradient() -> None:
    network = loads("input: 3x16x16\nlayers:\n  - conv: {out: 8, kernel: 3, padding: 1}\n  - relu\n"
                    "  - conv: {out: 4, kernel: 3, stride: 2}\n  - flatten\n  - linear: {out: 10}\n")
    a = 8 * 16 * 16 * 3 * 9  # conv 1
    b = 4 * 7 * 7 * 8 * 9  # conv 2: (16 - 3) // 2 + 1 = 7
    c = 4 * 7 * 7 * 10  # linear
    result = training_macs(network, batch=2)
    assert [(r.forward_macs, r.weight_grad_macs, r.input_grad_macs) for r in result.nodes] == [
        (2 * a, 2 * a, 0), (0, 0, 0), (2 * b, 2 * b, 2 * b), (0, 0, 0), (2 * c, 2 * c, 2 * c)]
    assert [r.input_requires_grad for r in result.nodes] == [False, True, True, True, True]
    assert (result.forward_macs, result.weight_grad_macs, result.input_grad_macs) == (
        2 * (a + b + c), 2 * (a + b + c), 2 * (b + c))
    assert result.training_macs == 2 * (3 * (a + b + c) - a)
    assert result.training_macs == sum(r.training_macs for r in result.nodes)


def test_pool_before_the_first_conv_in_a_branch() -> None:
    network = loads("input: 4x8x8\nlayers:\n"
                    "  - concat: {branches: [[conv: {name: a, out: 2, kernel: 1}],\n"
                    "      [max_pool: {name: p, kernel: 3, stride: 1, padding: 1},\n"
                    "       conv: {name: b, out: 2, kernel: 1}],\n"
                    "      []]}\n"
                    "  - conv: {name: c, out: 2, kernel: 3, padding: 1}\n")
    rows = {r.name: r for r in training_macs(network).nodes}
    a = b = 2 * 64 * 4
    c = 2 * 64 * 8 * 9  # reads 2 + 2 + 4 channels
    assert [rows[n].input_grad_macs for n in ("concat_1.branch1.a", "concat_1.branch2.b", "c")] == [0, 0, c]
    assert not rows["concat_1.branch2.p"].input_requires_grad
    assert rows["concat_1.concat"].input_requires_grad  # two of its three inputs do
    assert training_macs(network).training_macs == 2 * (a + b) + 3 * c


@pytest.mark.parametrize("affine, expected", [("true", True), ("false", False)])
def test_batch_norm_parameters_make_the_first_conv_need_its_input_gradient(affine: str, expected: bool) -> None:
    network = loads(f"input: 3x8x8\nlayers:\n  - batch_norm: {{affine: {affine}}}\n  - conv: {{out: 4, kernel: 3}}\n")
    row = training_macs(network).nodes[1]
    assert row.input_requires_grad is expected
    assert row.forward_macs > 0 and row.input_grad_macs == (row.forward_macs if expected else 0)


@pytest.mark.parametrize("example", ["resnet18", "vgg16", "resnet50"])
def test_deep_nets_train_at_about_three_forwards(example: str) -> None:
    network = load(str(EXAMPLES / f"{example}.yaml"))
    forward = sum(_conv_macs(node) for node in network.nodes)
    (first,) = [node for node in network.nodes if node.inputs == (INPUT,)]
    result = training_macs(network)
    # Every MAC layer costs 3x its forward, but the stem conv (reading the input) skips its input gradient.
    assert result.forward_macs == forward
    assert result.training_macs == 3 * forward - _conv_macs(first)
    assert 2.9 < result.training_macs / forward < 3.0
    if example == "resnet18":
        assert first.name == "conv1" and _conv_macs(first) == 118_013_952 and forward == 1_814_073_344


def test_rule_table_covers_every_layer_type() -> None:
    assert set(typing.get_args(layers.Layer)) == set(RULES)
    with pytest.raises(TypeError, match="no backward rule"):
        training_macs(loads("input: 3x8x8\nlayers:\n  - relu\n"), rules={})
