"""Roofline bound: every figure recomputed here from first principles (docs/conventions.md, "Memory traffic and the roofline bound").

Traffic: a layer reads each input tensor and its params + buffers once and writes its
output once, at the report's dtype; flatten, dropout and identity move nothing.
Time: max(FLOPs / peak, bytes / bandwidth), exact Fractions of a second.
"""

from __future__ import annotations

import typing
from fractions import Fraction
from types import MappingProxyType

import pytest

from convcost import analyze, load, loads
from convcost.errors import UsageError
from convcost.hardware import get_profile, loads_profiles
from convcost.layers import Layer
from convcost.roofline import BOUNDS, TRAFFIC_RULES, peak_precision, roofline, tensor_traffic

from .conftest import EXAMPLES

# A hand-written profile: 10 TFLOP/s float32 (40 TFLOP/s tf32), 100 GB/s. Ridge: 100 FLOPs per byte.
HAND = loads_profiles("""\
id: hand
name: Hand-written test device
sources:
  test: {title: written in tests/test_roofline.py}
peak_ops_per_second:
  float32: {value: 10T, source: test}
  tf32: {value: 40T, source: test}
memory_bytes_per_second: {value: 100G, source: test}
""", "hand.yaml")[0]
PEAK, BANDWIDTH = 10 * 10**12, 100 * 10**9

CLASSIC = "input: 192x28x28\nlayers:\n  - conv: {out: 32, kernel: 5, padding: same}\n"


def classic_figures(batch: int, size: int) -> tuple[int, int, int]:
    """FLOPs, bytes read, bytes written of 32 5x5 filters over 192x28x28, 'same' padding, with bias."""
    macs = 32 * 28 * 28 * (192 * 5 * 5)
    assert macs == 120_422_400  # the README's figure
    flops = batch * (2 * macs + 32 * 28 * 28)  # one multiply and one add per MAC, one bias add per output
    weights = 32 * 192 * 5 * 5 + 32  # 153,600 weights + 32 biases, read once per batch
    bytes_read = batch * 192 * 28 * 28 * size + weights * size
    bytes_written = batch * 32 * 28 * 28 * size
    return flops, bytes_read, bytes_written


def run(text: str, profile=HAND, *, batch: int = 1, dtype: str = "float32", precision=None):
    network = loads(text)
    return roofline(network, analyze(network, batch=batch, dtype=dtype), profile, precision=precision)


def test_classic_layer_on_hand_profile():
    result = run(CLASSIC)
    flops, bytes_read, bytes_written = classic_figures(1, 4)
    assert flops == 240_869_888
    assert (bytes_read, bytes_written) == (602_112 + 614_528, 100_352)
    (layer,) = result.layers
    assert (layer.flops, layer.bytes_read, layer.bytes_written) == (flops, bytes_read, bytes_written)
    intensity = Fraction(flops, bytes_read + bytes_written)
    assert layer.intensity == intensity and 182 < intensity < 183
    assert intensity > Fraction(PEAK, BANDWIDTH) == result.ridge_intensity  # 182.9 > 100: compute bound
    assert layer.bound == "compute"
    assert layer.compute_seconds == Fraction(flops, PEAK)
    assert layer.memory_seconds == Fraction(bytes_read + bytes_written, BANDWIDTH)
    assert layer.seconds == result.seconds == Fraction(flops, PEAK) == Fraction(240_869_888, 10**13)
    assert result.seconds_per_image == result.seconds
    assert result.images_per_second == Fraction(10**13, 240_869_888)
    assert (result.precision, result.peak_ops_per_second, result.memory_bytes_per_second) == ("float32", PEAK,
                                                                                             BANDWIDTH)


def test_classic_layer_memory_bound_when_bandwidth_is_low():
    slow = loads_profiles("""\
id: slow
name: Slow memory
sources: {t: {title: test}}
peak_ops_per_second: {float32: {value: 10T, source: t}}
memory_bytes_per_second: {value: 1G, source: t}
""")[0]
    (layer,) = run(CLASSIC, slow).layers
    flops, bytes_read, bytes_written = classic_figures(1, 4)
    assert Fraction(flops, bytes_read + bytes_written) < Fraction(10**13, 10**9)  # 182.9 < ridge 10,000
    assert layer.bound == "memory"
    assert layer.seconds == Fraction(bytes_read + bytes_written, 10**9)


@pytest.mark.parametrize("batch", [2, 8, 64])
def test_batch_reads_weights_once(batch):
    result = run(CLASSIC, batch=batch)
    flops, bytes_read, bytes_written = classic_figures(batch, 4)
    assert (result.flops, result.bytes_read, result.bytes_written) == (flops, bytes_read, bytes_written)
    seconds = max(Fraction(flops, PEAK), Fraction(bytes_read + bytes_written, BANDWIDTH))
    assert result.seconds == seconds
    assert result.seconds_per_image == seconds / batch
    assert result.images_per_second == batch / seconds
    single = run(CLASSIC)
    assert result.intensity > single.intensity  # the weights are shared by the batch


def test_float32_uses_the_float32_peak_unless_tf32_is_asked():
    flops, _, _ = classic_figures(1, 4)
    assert run(CLASSIC).layers[0].compute_seconds == Fraction(flops, PEAK)
    tf32 = run(CLASSIC, precision="tf32")
    assert tf32.precision == "tf32" and tf32.peak_ops_per_second == 40 * 10**12
    assert tf32.layers[0].compute_seconds == Fraction(flops, 40 * 10**12)
    with pytest.raises(UsageError, match="tf32.*this report is float16"):
        peak_precision("float16", "tf32")
    with pytest.raises(UsageError, match="does not match the report's dtype float32"):
        peak_precision("float32", "int8")


def test_precision_missing_from_profile_is_refused():
    with pytest.raises(UsageError, match=r"hardware profile 'hand' \(Hand-written test device\) publishes no "
                                         r"float16 peak; it has float32, tf32"):
        run(CLASSIC, dtype="float16")
    with pytest.raises(UsageError, match="publishes no bfloat16 peak"):
        run(CLASSIC, get_profile("t4"), dtype="bfloat16")


def test_one_by_one_bottleneck_on_t4_float16():
    """GoogLeNet's 1x1 reduction saves 9.68x the MACs but much less roofline time: the 1x1 is memory bound."""
    t4 = get_profile("t4")
    peak, bandwidth, size = 65 * 10**12, 320 * 10**9, 2  # T4 product page: 65 FP16 TFLOPS, 320 GB/s; float16
    assert (t4.peak("float16").value, t4.memory_bytes_per_second.value) == (peak, bandwidth)

    def layer(c_in: int, c_out: int, k: int) -> tuple[int, int, str]:
        macs = c_out * 28 * 28 * c_in * k * k
        flops = 2 * macs + c_out * 28 * 28
        moved = (c_in * 28 * 28 + c_out * c_in * k * k + c_out + c_out * 28 * 28) * size
        compute, memory = Fraction(flops, peak), Fraction(moved, bandwidth)
        return macs, max(compute, memory), "memory" if memory > compute else "compute"

    naive_macs, naive_time, naive_bound = layer(192, 32, 5)
    reduce_macs, reduce_time, reduce_bound = layer(192, 16, 1)
    conv_macs, conv_time, conv_bound = layer(16, 32, 5)
    assert (naive_macs, reduce_macs + conv_macs) == (120_422_400, 12_443_648)
    mac_saving = Fraction(naive_macs, reduce_macs + conv_macs)
    assert mac_saving == Fraction(300, 31) and round(float(mac_saving), 2) == 9.68

    naive = roofline(load(str(EXAMPLES / "one_by_one_naive.yaml")),
                     analyze(load(str(EXAMPLES / "one_by_one_naive.yaml")), dtype="float16"), t4)
    network = load(str(EXAMPLES / "one_by_one.yaml"))
    reduced = roofline(network, analyze(network, dtype="float16"), t4)
    assert naive.seconds == naive_time == Fraction(470_449, 126_953_125_000)  # 3.7057 us
    assert [row.seconds for row in reduced.layers] == [reduce_time, conv_time]
    assert reduced.seconds == reduce_time + conv_time == Fraction(13_539, 10**10)  # 1.3539 us
    assert [naive_bound, reduce_bound, conv_bound] == ["compute", "memory", "memory"]
    assert [row.bound for row in naive.layers + reduced.layers] == ["compute", "memory", "memory"]
    time_saving = naive.seconds / reduced.seconds
    assert time_saving == naive_time / (reduce_time + conv_time)
    assert time_saving == Fraction(470_449 * 10**10, 126_953_125_000 * 13_539)
    assert 2.73 < float(time_saving) < 2.74 < 9.67 < float(mac_saving)


STRUCTURES = """\
input: 4x8x8
layers:
  - residual:
      body:
        - conv: {out: 4, kernel: 3, padding: 1}
  - concat:
      branches:
        - [pointwise: {out: 2}]
        - []
  - relu: {inplace: true}
  - batch_norm
  - dropout
  - flatten
  - identity
  - linear: {out: 3}
"""


@pytest.mark.parametrize("dtype,size", [("float32", 4), ("int8", 1)])
def test_traffic_of_every_rule(dtype, size):
    profile = loads_profiles(f"""\
id: any
name: Any
sources: {{t: {{title: test}}}}
peak_ops_per_second: {{{dtype}: {{value: 1T, source: t}}}}
memory_bytes_per_second: {{value: 1G, source: t}}
""")[0]
    result = run(STRUCTURES, profile, batch=3, dtype=dtype)
    n = 3
    t = 4 * 8 * 8  # one 4x8x8 tensor
    expected = {  # (activation elements read per sample, weights read once, elements written per sample)
        "residual_1.body.conv_1": (t, 4 * 4 * 9 + 4, t),
        "residual_1.add": (2 * t, 0, t),  # reads both summands
        "concat_1.branch1.pointwise_1": (t, 2 * 4 + 2, 2 * 64),
        "concat_1.concat": (2 * 64 + t, 0, 6 * 64),  # a copy: reads every input, writes the result
        "relu_1": (6 * 64, 0, 6 * 64),  # in place still reads and writes its tensor
        "batch_norm_1": (6 * 64, 2 * 6 + 2 * 6, 6 * 64),  # scale, shift, running mean and variance
        "dropout_1": (0, 0, 0),
        "flatten_1": (0, 0, 0),
        "identity_1": (0, 0, 0),
        "linear_1": (384, 384 * 3 + 3, 3),
    }
    assert [row.name for row in result.layers] == list(expected)
    for row in result.layers:
        read, weights, written = expected[row.name]
        assert row.bytes_read == (n * read + weights) * size, row.name
        assert row.bytes_written == n * written * size, row.name
    for name in ("dropout_1", "flatten_1", "identity_1"):
        row = next(r for r in result.layers if r.name == name)
        assert (row.flops, row.seconds, row.bound, row.intensity) == (0, 0, "none", None)
    assert {row.bound for row in result.layers} <= set(BOUNDS)
    assert result.flops == sum(row.flops for row in result.layers)
    assert result.bytes_read == sum(row.bytes_read for row in result.layers)
    assert result.bytes_written == sum(row.bytes_written for row in result.layers)
    assert result.seconds == sum((row.seconds for row in result.layers), Fraction(0))


def test_a_network_of_views_takes_no_time():
    result = run("input: 8x4x4\nlayers:\n  - flatten\n  - dropout\n  - identity\n")
    assert (result.flops, result.bytes_moved, result.seconds) == (0, 0, 0)
    assert (result.intensity, result.images_per_second) == (None, None)
    assert [row.bound for row in result.layers] == ["none"] * 3


def test_traffic_table_is_exhaustive_and_read_only():
    assert set(TRAFFIC_RULES) == set(typing.get_args(Layer))
    assert isinstance(TRAFFIC_RULES, MappingProxyType)

    class Unknown:
        pass

    with pytest.raises(TypeError, match="no traffic rule for layer type Unknown"):
        tensor_traffic(Unknown(), ((1,),), (1,))


def test_report_must_belong_to_the_network():
    network = loads(CLASSIC)
    other = loads("input: 192x28x28\nlayers:\n  - conv: {name: other, out: 32, kernel: 5, padding: same}\n")
    with pytest.raises(ValueError, match="does not match"):
        roofline(network, analyze(other), HAND)
    with pytest.raises(ValueError, match="rows"):
        roofline(network, analyze(loads(STRUCTURES)), HAND)
