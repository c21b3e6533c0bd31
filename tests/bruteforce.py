"""A naive reference for convolution, transposed convolution and pooling.

Written independently of ``convcost``: nothing here uses a closed-form cost or
shape formula. The convolutions really compute their outputs with explicit
Python loops over output positions, channels and kernel taps, and count every
multiply-accumulate they perform; the pooling reference enumerates windows one
by one. The test suite compares convcost's closed forms against these counts.

Counting conventions (those of convcost, fvcore and ptflops):

* convolution: one MAC per (output element, input channel of its group,
  kernel tap), multiplications against padded zeros included, bias excluded,
  so ``macs == C_out * prod(out) * (C_in / groups) * prod(kernel)``;
* transposed convolution: every input element is scattered through the whole
  kernel into an uncropped buffer, which is then cropped by ``padding`` and
  extended by ``output_padding``, so
  ``macs == C_in * prod(in) * (C_out / groups) * prod(kernel)``.

Array layouts follow PyTorch with the batch left out: inputs are
``(C, *spatial)``; convolution weights ``(C_out, C_in // groups, *kernel)``;
transposed convolution weights ``(C_in, C_out // groups, *kernel)``.

The functions raise ``ValueError`` for configurations that have no output
(an empty output, or channels that groups do not divide). Framework rules
that are conventions rather than arithmetic (``same`` only with stride 1,
``output_padding < max(stride, dilation)``) are left to the callers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = [
    "conv",
    "conv_transpose",
    "pool_output_shape",
    "resolve_conv_padding",
]

IntOrSeq = int | Sequence[int]
Padding = int | str | Sequence[int] | Sequence[tuple[int, int]]


def _per_axis(value: IntOrSeq, rank: int, what: str) -> tuple[int, ...]:
    """One int per spatial axis from an int or a sequence of length ``rank``."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * rank
    values = tuple(int(v) for v in value)
    if len(values) != rank:
        raise ValueError(f"{what}: expected {rank} values, got {values}")
    return values


def resolve_conv_padding(
    padding: Padding,
    kernel: Sequence[int],
    dilation: Sequence[int],
) -> tuple[tuple[int, int], ...]:
    """(left, right) zero padding per axis.

    ``padding`` is an int, one int per axis, one (left, right) pair per axis,
    ``"valid"`` (no padding) or ``"same"`` (PyTorch's rule: a total of
    ``dilation * (kernel - 1)``, ``total // 2`` on the left and the odd extra
    element on the right).
    """
    rank = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * rank
        if padding == "same":
            pairs = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * rank
    items = list(padding)
    if len(items) != rank:
        raise ValueError(f"padding: expected {rank} values, got {items}")
    pairs = []
    for item in items:
        if isinstance(item, (int, np.integer)):
            pairs.append((int(item), int(item)))
        else:
            left, right = item
            pairs.append((int(left), int(right)))
    return tuple(pairs)


def _zero_pad(x: np.ndarray, pads: Sequence[tuple[int, int]]) -> np.ndarray:
    """Copy ``x`` (C, *spatial) into a zero array with the given padding."""
    shape = (x.shape[0],) + tuple(
        n + left + right for n, (left, right) in zip(x.shape[1:], pads)
    )
    out = np.zeros(shape, dtype=x.dtype)
    inner = (slice(None),) + tuple(
        slice(left, left + n) for n, (left, _) in zip(x.shape[1:], pads)
    )
    out[inner] = x
    return out


def _flat_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a C-ordered array of ``shape``."""
    strides = []
    step = 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: Padding = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> tuple[np.ndarray, int]:
    """Cross-correlation as in ``torch.nn.functional.conv{1,2,3}d``.

    Returns ``(output, macs)`` where ``output`` is ``(C_out, *out_spatial)``
    and ``macs`` counts the multiply-accumulates of the loops below.
    """
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    rank = x.ndim - 1
    if rank < 1 or weight.ndim != rank + 2:
        raise ValueError(f"input {x.shape} and weight {weight.shape} do not match")
    c_in = x.shape[0]
    c_out, cin_per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    if groups < 1 or c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if cin_per_group * groups != c_in:
        raise ValueError(f"weight expects {cin_per_group * groups} input channels, got {c_in}")
    cout_per_group = c_out // groups
    strides = _per_axis(stride, rank, "stride")
    dilations = _per_axis(dilation, rank, "dilation")
    pads = resolve_conv_padding(padding, kernel, dilations)

    xp = _zero_pad(x, pads)

    # Output positions by enumeration: the window of output index o covers
    # padded indices o*s + j*d for j in range(k); keep every window that fits.
    out_sizes = []
    for n, k, s, d in zip(xp.shape[1:], kernel, strides, dilations):
        count = 0
        while count * s + (k - 1) * d <= n - 1:
            count += 1
        if count == 0:
            raise ValueError(f"kernel {k} with dilation {d} does not fit {n} padded inputs")
        out_sizes.append(count)

    # Explicit loops over flat indices (fast enough for small tensors).
    x_flat = xp.ravel().tolist()
    w_flat = weight.ravel().tolist()
    x_strides = _flat_strides(xp.shape)
    tap_offsets = [
        sum(j * d * st for j, d, st in zip(taps, dilations, x_strides[1:]))
        for taps in itertools.product(*(range(k) for k in kernel))
    ]
    kvol = len(tap_offsets)
    window_offsets = [
        sum(o * s * st for o, s, st in zip(pos, strides, x_strides[1:]))
        for pos in itertools.product(*(range(n) for n in out_sizes))
    ]

    out = np.zeros((c_out, len(window_offsets)))
    macs = 0
    for co in range(c_out):
        group = co // cout_per_group
        for p, window in enumerate(window_offsets):
            acc = 0.0
            for ci_local in range(cin_per_group):
                ci = group * cin_per_group + ci_local
                base = ci * x_strides[0] + window
                wbase = (co * cin_per_group + ci_local) * kvol
                for t, offset in enumerate(tap_offsets):
                    acc += x_flat[base + offset] * w_flat[wbase + t]
                    macs += 1
            if bias is not None:
                acc += float(bias[co])  # an addition, not a MAC
            out[co, p] = acc
    return out.reshape((c_out, *out_sizes)), macs


def conv_transpose(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: IntOrSeq = 0,
    output_padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> tuple[np.ndarray, int]:
    """Transposed convolution as in ``torch.nn.functional.conv_transpose{1,2,3}d``.

    Scatters every input element through the whole kernel into an uncropped
    buffer, then crops ``padding`` from both ends of every axis and extends the
    high end by ``output_padding`` (those positions read the cropped tail of
    the buffer, or zeros past its end). Returns ``(output, macs)``.
    """
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    rank = x.ndim - 1
    if rank < 1 or weight.ndim != rank + 2:
        raise ValueError(f"input {x.shape} and weight {weight.shape} do not match")
    c_in = x.shape[0]
    if weight.shape[0] != c_in:
        raise ValueError(f"weight expects {weight.shape[0]} input channels, got {c_in}")
    if groups < 1 or c_in % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in}")
    cout_per_group = weight.shape[1]
    c_out = cout_per_group * groups
    cin_per_group = c_in // groups
    kernel = weight.shape[2:]
    strides = _per_axis(stride, rank, "stride")
    pads = _per_axis(padding, rank, "padding")
    out_pads = _per_axis(output_padding, rank, "output_padding")
    dilations = _per_axis(dilation, rank, "dilation")

    in_sizes = x.shape[1:]
    # The buffer reaches one past the largest index any tap writes to.
    full_sizes = tuple(
        (n - 1) * s + (k - 1) * d + 1
        for n, k, s, d in zip(in_sizes, kernel, strides, dilations)
    )
    buffer = np.zeros((c_out, *full_sizes))
    b_flat = buffer.ravel().tolist()
    b_strides = _flat_strides(buffer.shape)
    x_flat = x.ravel().tolist()
    w_flat = weight.ravel().tolist()
    tap_offsets = [
        sum(j * d * st for j, d, st in zip(taps, dilations, b_strides[1:]))
        for taps in itertools.product(*(range(k) for k in kernel))
    ]
    kvol = len(tap_offsets)
    positions = list(itertools.product(*(range(n) for n in in_sizes)))

    macs = 0
    for ci in range(c_in):
        group = ci // cin_per_group
        for p, pos in enumerate(positions):
            value = x_flat[ci * len(positions) + p]
            target = sum(i * s * st for i, s, st in zip(pos, strides, b_strides[1:]))
            for co_local in range(cout_per_group):
                co = group * cout_per_group + co_local
                base = co * b_strides[0] + target
                wbase = (ci * cout_per_group + co_local) * kvol
                for t, offset in enumerate(tap_offsets):
                    b_flat[base + offset] += value * w_flat[wbase + t]
                    macs += 1
    buffer = np.asarray(b_flat).reshape(buffer.shape)

    # Crop by padding on both sides, extend the high side by output_padding.
    out_sizes = []
    for full, p, op in zip(full_sizes, pads, out_pads):
        size = full - p - p + op  # crop p at each end, then append op positions
        if size <= 0:
            raise ValueError(f"transposed output is empty (buffer {full}, padding {p}, output_padding {op})")
        out_sizes.append(size)
    out = np.zeros((c_out, *out_sizes))
    for pos in itertools.product(*(range(n) for n in out_sizes)):
        src = tuple(o + p for o, p in zip(pos, pads))
        if all(i < full for i, full in zip(src, full_sizes)):
            out[(slice(None),) + pos] = buffer[(slice(None),) + src]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64).reshape((c_out,) + (1,) * rank)
    return out, macs


def pool_output_shape(
    in_shape: Sequence[int],
    kernel: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """Output shape ``(C, *out)`` of max/avg pooling, counting windows one by one.

    Window ``i`` of an axis starts at input index ``i * stride - padding`` and
    spans ``dilation * (kernel - 1) + 1`` indices. Without ``ceil_mode`` a
    window is kept when it ends inside the padded input. With ``ceil_mode``
    (PyTorch's rule) a window is kept when the window before it (for the first
    window: a virtual one ``stride`` earlier) ends before the end of the
    padded input, so one partial window may hang over the end, *and* it starts
    inside the input or the left padding, never in the right padding.
    Average pooling is the ``dilation=1`` case.
    """
    channels, *sizes = (int(n) for n in in_shape)
    rank = len(sizes)
    kernels = _per_axis(kernel, rank, "kernel")
    strides = kernels if stride is None else _per_axis(stride, rank, "stride")
    pads = _per_axis(padding, rank, "padding")
    dilations = _per_axis(dilation, rank, "dilation")
    out = []
    for n, k, s, p, d in zip(sizes, kernels, strides, pads, dilations):
        span = d * (k - 1) + 1
        padded_end = n + p  # one past the last index of the right padding
        count = 0
        while True:
            start = count * s - p
            if ceil_mode:
                previous_end = start - s + span  # one past the previous window
                if previous_end >= padded_end or start >= n:
                    break
            elif start + span > padded_end:
                break
            count += 1
        if count == 0:
            raise ValueError(f"pooling window {span} leaves no output for {n} inputs with padding {p}")
        out.append(count)
    return (channels, *out)
