"""Non-padding MACs (convcost.taps) against real padded convolutions that count their multiplies.

``padded_conv`` and ``scatter_conv_transpose`` below compute actual
convolutions (checked against tests/bruteforce.py's loop references on random
values) and count, multiply by multiply, how many read a real input element
(convolution) or land inside the cropped output (transposed convolution).
"""

from __future__ import annotations

import itertools
import random
import typing

import numpy as np
import pytest

import convcost.layers as layers
from convcost import analyze, loads
from convcost.errors import SpecError
from convcost.layers import Conv, ConvTranspose
from convcost.network import Node
from convcost.taps import RULES, layer_macs_nonpadding, macs_nonpadding
from tests import bruteforce


def padded_conv(x: np.ndarray, w: np.ndarray, stride: tuple[int, ...], pads: tuple[tuple[int, int], ...],
                dilation: tuple[int, ...], groups: int) -> tuple[np.ndarray, int, int]:
    """Convolution of x (C_in, *L) by w (C_out, C_in/g, *k): (output, multiplies, multiplies of real input)."""
    c_in, spatial = x.shape[0], x.shape[1:]
    c_out, per_group, kernel = w.shape[0], w.shape[1], w.shape[2:]
    xp = np.zeros((c_in, *(n + a + b for n, (a, b) in zip(spatial, pads))))
    real = np.zeros(xp.shape, dtype=np.int64)
    inner = (slice(None), *(slice(a, a + n) for n, (a, _) in zip(spatial, pads)))
    xp[inner] = x
    real[inner] = 1
    out_len = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(xp.shape[1:], kernel, stride, dilation)]
    out = np.zeros((c_out, *out_len))
    outs_per_group = c_out // groups
    multiplies = real_multiplies = 0
    for taps in itertools.product(*(range(k) for k in kernel)):
        window = (slice(None), *(slice(t * d, t * d + (n - 1) * s + 1, s)
                                 for t, d, n, s in zip(taps, dilation, out_len, stride)))
        for g in range(groups):
            channels = slice(g * per_group, (g + 1) * per_group)
            filters = slice(g * outs_per_group, (g + 1) * outs_per_group)
            xs = xp[window][channels]  # (C_in/g, *out)
            out[filters] += np.tensordot(w[(filters, slice(None), *taps)], xs, axes=(1, 0))
            multiplies += outs_per_group * xs.size  # one multiply per (filter, channel, output position)
            real_multiplies += outs_per_group * int(real[window][channels].sum())
    return out, multiplies, real_multiplies


def scatter_conv_transpose(x: np.ndarray, w: np.ndarray, stride: tuple[int, ...], padding: tuple[int, ...],
                           output_padding: tuple[int, ...], dilation: tuple[int, ...],
                           groups: int) -> tuple[np.ndarray, int, int]:
    """Transposed convolution of x (C_in, *L) by w (C_in, C_out/g, *k), scattered into an uncropped
    buffer and cropped by ``padding``: (output, multiplies, multiplies landing inside the output)."""
    c_in, spatial = x.shape[0], x.shape[1:]
    per_group, kernel = w.shape[1], w.shape[2:]
    out_len = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1
               for n, s, p, op, d, k in zip(spatial, stride, padding, output_padding, dilation, kernel)]
    full_len = [max((n - 1) * s + d * (k - 1) + 1, p + m) for n, s, d, k, p, m in
                zip(spatial, stride, dilation, kernel, padding, out_len)]
    full = np.zeros((per_group * groups, *full_len))
    inside = np.zeros(full_len, dtype=np.int64)
    inside[tuple(slice(p, p + m) for p, m in zip(padding, out_len))] = 1
    ins_per_group = c_in // groups
    multiplies = landing = 0
    for taps in itertools.product(*(range(k) for k in kernel)):
        target = tuple(slice(t * d, t * d + (n - 1) * s + 1, s) for t, d, n, s in zip(taps, dilation, spatial, stride))
        for g in range(groups):
            channels = slice(g * ins_per_group, (g + 1) * ins_per_group)
            filters = slice(g * per_group, (g + 1) * per_group)
            contribution = np.tensordot(w[(channels, slice(None), *taps)], x[channels], axes=(0, 0))
            full[(filters, *target)] += contribution
            multiplies += contribution.size * ins_per_group
            landing += per_group * ins_per_group * int(inside[target].sum())
    out = full[(slice(None), *(slice(p, p + m) for p, m in zip(padding, out_len)))]
    return out, multiplies, landing


def _pads(layer: Conv) -> tuple[tuple[int, int], ...]:
    """(left, right) padding per axis; 'same' puts PyTorch's odd extra pixel on the right."""
    return tuple(((d * (k - 1)) // 2, d * (k - 1) - (d * (k - 1)) // 2) if layer.same else (p, p)
                 for k, d, p in zip(layer.kernel, layer.dilation, layer.padding))


def _weights(layer: Conv | ConvTranspose, rng: np.random.Generator) -> np.ndarray:
    if isinstance(layer, Conv):
        return rng.standard_normal((layer.out_channels, layer.in_channels // layer.groups, *layer.kernel))
    return rng.standard_normal((layer.in_channels, layer.out_channels // layer.groups, *layer.kernel))


def _simulate(layer: Conv | ConvTranspose, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The layer run for real: (output, multiplies, multiplies reading real input or landing inside)."""
    if isinstance(layer, Conv):
        return padded_conv(x, w, layer.stride, _pads(layer), layer.dilation, layer.groups)
    return scatter_conv_transpose(x, w, layer.stride, layer.padding, layer.output_padding, layer.dilation,
                                  layer.groups)


def _brute_force(node: Node, rng: np.random.Generator) -> tuple[int, int, np.ndarray]:
    layer = node.layer
    assert isinstance(layer, (Conv, ConvTranspose))
    x = rng.standard_normal(node.input_shapes[0])
    out, total, real = _simulate(layer, x, _weights(layer, rng))
    assert out.shape == node.output_shape
    return total, real, out


def _random_layer(rng: random.Random) -> str | None:
    dims = rng.choice([1, 1, 2, 2, 3])
    spatial = [rng.randint(1, 9 if dims < 3 else 5) for _ in range(dims)]
    c_in_groups = rng.choice([1, 1, 2, 3])
    c_in, c_out = c_in_groups * rng.randint(1, 2), c_in_groups * rng.randint(1, 2)
    kernel = [rng.randint(1, 4) for _ in range(dims)]
    stride = [rng.randint(1, 3) for _ in range(dims)]
    dilation = [rng.randint(1, 3) for _ in range(dims)]
    axes = lambda values: "x".join(map(str, values))  # noqa: E731
    shape = axes([c_in, *spatial])
    if rng.random() < 0.35:
        padding = [rng.randint(0, 3) for _ in range(dims)]
        output_padding = [rng.randint(0, max(s, d) - 1) for s, d in zip(stride, dilation)]
        text = (f"conv_transpose: {{out: {c_out}, kernel: {axes(kernel)}, stride: {axes(stride)}, "
                f"padding: {axes(padding)}, output_padding: {axes(output_padding)}, dilation: {axes(dilation)}, "
                f"groups: {c_in_groups}}}")
    elif rng.random() < 0.3:
        text = (f"conv: {{out: {c_out}, kernel: {axes(kernel)}, padding: same, dilation: {axes(dilation)}, "
                f"groups: {c_in_groups}}}")
    else:
        padding = axes([rng.randint(0, 4) for _ in range(dims)])
        text = (f"conv: {{out: {c_out}, kernel: {axes(kernel)}, stride: {axes(stride)}, padding: {padding}, "
                f"dilation: {axes(dilation)}, groups: {c_in_groups}}}")
    return f"input: {shape}\nlayers:\n  - {text}\n"


def test_random_layers_match_counted_multiplies() -> None:
    rng = random.Random(16)
    values = np.random.default_rng(16)
    tested: dict[str, int] = {}
    while sum(tested.values()) < 1200:
        text = _random_layer(rng)
        try:
            network = loads(text)
        except SpecError:  # empty output, output_padding too large, ...
            continue
        (node,) = network.nodes
        total, real, _ = _brute_force(node, values)
        assert total == analyze(network).totals.macs, text  # the brute force is the padded convolution
        assert layer_macs_nonpadding(node.layer, node.input_shapes, node.output_shape) == real, text
        layer = node.layer
        kind = f"{type(layer).__name__}{layer.dims}d"
        if isinstance(layer, Conv):
            kind += "-same" if layer.same else "-padded" if any(layer.padding) else ""
            kind += "-strided" if any(s > 1 for s in layer.stride) else ""
        kind += "-dilated" if any(d > 1 for d in layer.dilation) else ""
        kind += "-grouped" if layer.groups > 1 else ""
        tested[kind] = tested.get(kind, 0) + 1
    kinds = "".join(tested)
    for part in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
                 "-same", "-strided", "-dilated", "-grouped", "-padded"):
        assert part in kinds, part
    assert sum(n for kind, n in tested.items() if kind.startswith("ConvTranspose")) >= 300


@pytest.mark.parametrize("seed", range(6))
def test_the_brute_force_convolutions_compute_real_convolutions(seed: int) -> None:
    """Against tests/bruteforce.py's loop references, on random values."""
    rng = random.Random(seed)
    values = np.random.default_rng(seed)
    checked = 0
    while checked < 10:
        try:
            network = loads(_random_layer(rng) or "")
        except SpecError:
            continue
        (node,) = network.nodes
        layer = node.layer
        assert isinstance(layer, (Conv, ConvTranspose))
        x = values.standard_normal(node.input_shapes[0])
        w = _weights(layer, values)
        mine, total, _ = _simulate(layer, x, w)
        if isinstance(layer, Conv):
            reference, macs = bruteforce.conv(x, w, stride=layer.stride, padding=_pads(layer),
                                              dilation=layer.dilation, groups=layer.groups)
        else:
            reference, macs = bruteforce.conv_transpose(x, w, stride=layer.stride, padding=layer.padding,
                                                        output_padding=layer.output_padding,
                                                        dilation=layer.dilation, groups=layer.groups)
        assert np.allclose(mine, reference) and total == macs
        checked += 1


def test_classic_5x5_same_on_192x28x28() -> None:
    # Per axis, tap t of 5 (left padding 2) is inside for 28 - |t - 2| outputs: 26+27+28+27+26 = 134.
    network = loads("input: 192x28x28\nlayers:\n  - conv: {out: 32, kernel: 5, padding: same}\n")
    result = macs_nonpadding(network)
    assert result.total == 32 * 192 * 134 * 134 == 110_321_664
    assert analyze(network).totals.macs == 120_422_400
    assert macs_nonpadding(network, batch=3).per_node == (3 * 110_321_664,)


@pytest.mark.parametrize("text", [
    "conv: {out: 8, kernel: 3}",  # valid padding: every tap is inside
    "pointwise: {out: 8}",
    "conv: {out: 8, kernel: 3, stride: 2, dilation: 2}",
    "linear: {out: 5, axis: last}",
])
def test_no_padding_means_every_mac(text: str) -> None:
    network = loads(f"input: 4x9x9\nlayers:\n  - {text}\n")
    assert macs_nonpadding(network).total == analyze(network).totals.macs > 0


def test_transposed_stride_2_kernel_4_padding_1() -> None:
    # 1D, 5 -> 10: input i, tap t lands on 2i - 1 + t; only (i=0, t=0) and (i=4, t=3) fall outside [0, 10).
    network = loads("input: 3x5\nlayers:\n  - conv_transpose: {out: 2, kernel: 4, stride: 2, padding: 1}\n")
    assert macs_nonpadding(network).total == 3 * 2 * (5 * 4 - 2)


def test_padding_wider_than_the_kernel_reach() -> None:
    # 1D length 3, kernel 1, padding 2: 7 outputs, only the 3 in the middle read input.
    network = loads("input: 1x3\nlayers:\n  - conv: {out: 1, kernel: 1, padding: 2}\n")
    assert macs_nonpadding(network).per_node == (3,)


def test_network_rows_and_zero_for_free_layers() -> None:
    network = loads("input: 3x8x8\nlayers:\n  - conv: {out: 4, kernel: 3, padding: 1}\n  - relu\n"
                    "  - max_pool: {kernel: 2}\n  - flatten\n  - linear: {out: 10}\n")
    result = macs_nonpadding(network)
    # 3x3 with padding 1 on 8: per axis 7 + 8 + 7 = 22 taps inside.
    assert result.per_node == (4 * 3 * 22 * 22, 0, 0, 0, 64 * 10)
    assert result.total == sum(result.per_node)


def test_rule_table_covers_every_layer_type() -> None:
    assert set(typing.get_args(layers.Layer)) == set(RULES)
    with pytest.raises(TypeError, match="no non-padding MAC rule"):
        layer_macs_nonpadding(object(), ((1,),), (1,))


def test_the_tap_sum_is_closed_form_on_random_axes_and_huge_kernels() -> None:
    """The floor-sum form against the definition on 20,000 random small axes (padding beyond the kernel,
    negative left offsets, empty axes), then kernels no loop could visit."""
    import random

    from convcost.taps import conv_axis_hits, transposed_axis_hits

    rnd = random.Random(7)
    for _ in range(20_000):
        n_in, n_out, k = rnd.randint(0, 25), rnd.randint(0, 25), rnd.randint(1, 12)
        s, d, left = rnd.randint(1, 6), rnd.randint(1, 6), rnd.randint(-8, 40)
        expected = sum(1 for o in range(n_out) for t in range(k) if 0 <= o * s - left + t * d < n_in)
        assert conv_axis_hits(n_in, n_out, k, s, left, d) == expected
        expected = sum(1 for i in range(n_in) for t in range(k) if 0 <= i * s - left + t * d < n_out)
        assert transposed_axis_hits(n_in, n_out, k, s, left, d) == expected
    # 'same' padding with a kernel of 10^29 on 28 pixels: every output reads all 28 inputs, 28 * 28 pairs.
    k = 10**29 - 1
    assert conv_axis_hits(28, 28, k, 1, (k - 1) // 2, 1) == 28 * 28
    # no padding, kernel k on L = k + 9 inputs: 10 outputs, each reading k real inputs.
    assert conv_axis_hits(k + 9, 10, k, 1, 0, 1) == 10 * k
