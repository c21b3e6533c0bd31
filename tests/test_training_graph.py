"""Training memory of the graph layers and examples against PyTorch 2.13 measurements and closed forms.

The measured figures are literals printed by ``tools/torch_measure.py`` (torch 2.13.0+cpu, its
own venv; torch is never imported here); each table names the command that produced it (the
full command lines are in the tool's docstring). ``cuda_kernels`` figures follow CUDA where a
CPU run differs and CUDA can be emulated (dropout through ``native_dropout``; under autocast,
CUDA's float32 policy for softmax, upsampling, layer norm, group norm and softplus): that is
convcost's convention and is matched exactly. Plain CPU figures differ by the documented amounts
(docs/conventions.md ("Training memory")), computed here in closed form where one exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from convcost import analyze, load, loads
from convcost.layers import Activation, ChannelSlice, Conv, Crop, Dropout, Elementwise, LayerError, Normalization, numel
from convcost.network import Network
from convcost.spec import SpecError
from convcost.training_memory import (
    HALF_BYTES, SavedTensor, saved_activation_bytes, saved_bytes_per_node, saved_tensors, training_memory,
)

from .peak_schedule import schedule_peak, unmarked

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"
F32 = 4


def spec(input_shape: str, *layers: str) -> Network:
    return loads(f"input: {input_shape}\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers))


def per_node(network: Network, batch: int = 1, mixed: bool = False) -> list[int]:
    return [row.activation_bytes for row in saved_bytes_per_node(network, batch=batch, mixed_precision=mixed)]


# --------------------------------------------------------------------------- closed forms, one rule each

CONV = "conv: {out: 4, kernel: 1}"


@pytest.mark.parametrize("batch", [1, 3])
def test_layer_norm_over_channels_and_last(batch: int) -> None:
    # native_layer_norm saves its input and a mean and an rstd per normalised row of every sample:
    # over the channels of 4x3x5, 15 rows; over the last axis (5), 4 x 3 = 12 rows.
    element = batch * 4 * 15 * F32
    channels = spec("4x3x5", CONV, "layer_norm")
    assert per_node(channels, batch) == [element, element + 2 * batch * 15 * F32]
    last = spec("4x3x5", CONV, "layer_norm: {over: last}")
    assert per_node(last, batch) == [element, element + 2 * batch * 12 * F32]


def test_group_and_instance_norm() -> None:
    # group norm: input + 2 x N x groups; instance norm is batch norm over a 1 x (N*C) view:
    # input + mean and invstd per sample and channel, and the weight repeated N times if affine.
    element = 2 * 4 * 15 * F32
    assert per_node(spec("4x3x5", CONV, "group_norm: {groups: 2}"), 2) == [element, element + 2 * 2 * 2 * F32]
    assert per_node(spec("4x3x5", CONV, "instance_norm"), 2) == [element, element + 2 * 2 * 4 * F32]
    assert per_node(spec("4x3x5", CONV, "instance_norm: {affine: true}"), 2) == [element, element + 3 * 2 * 4 * F32]
    assert training_memory(spec("4x3x5", CONV, "instance_norm: {affine: true}")).parameter_tensors == 4


def test_layer_scale_and_prelu() -> None:
    # layer scale: its input (for gamma's gradient) even when the input needs no gradient; its
    # float32 parameter makes the product float32 under autocast. PReLU: input and weight; under
    # autocast a half copy of each (the input here is already half).
    first = spec("4x3x5", "layer_scale", CONV)
    assert per_node(first) == [4 * 15 * F32, 4 * 15 * F32]
    assert per_node(first, mixed=True) == [4 * 15 * F32, 4 * 15 * HALF_BYTES]  # a half copy of a float32 tensor
    for parameters, weights in (("1", 1), ("channels", 4)):
        prelu = spec("4x3x5", CONV, f"prelu: {{parameters: {parameters}}}")
        assert per_node(prelu) == [4 * 15 * F32, 4 * 15 * F32]
        mixed = saved_bytes_per_node(prelu, mixed_precision=True)
        assert [(row.activation_bytes, row.weight_copy_bytes) for row in mixed] == [
            (4 * 15 * HALF_BYTES, 16 * HALF_BYTES), (4 * 15 * HALF_BYTES, weights * HALF_BYTES)]


@pytest.mark.parametrize("function,inplace,saves", [
    ("hardsigmoid", False, "input"), ("mish", False, "input"), ("elu", False, "input"), ("softplus", False, "input"),
    ("hardsigmoid", True, "new"), ("mish", True, "new"), ("elu", True, "output"),
])
def test_new_activation_rules(function: str, inplace: bool, saves: str) -> None:
    # hardsigmoid_ and mish_ save a copy of their input; elu_ saves its result (the input's storage).
    layer = f"{function}: {{inplace: true}}" if inplace else function
    network = spec("3x5", "conv: {out: 3, kernel: 1}", layer)
    (saved,) = saved_tensors(network.nodes[1])
    assert saved.source == saves
    assert saved.elements == (15 if saves == "new" else 0)


def test_softplus_has_no_in_place_form() -> None:
    with pytest.raises(SpecError, match="unknown key 'inplace' for softplus"):
        spec("3x5", "softplus: {inplace: true}")
    with pytest.raises(SpecError, match="softplus has no in-place form"):
        spec("3x5x5", "squeeze_excite: {reduce: 1, activation: softplus, inplace: true}")
    node = spec("3x5", "softplus").nodes[0]
    alien = type(node)(index=0, name="x", layer=Activation("softplus", inplace=True, kind="softplus"),
                       inputs=node.inputs, input_shapes=node.input_shapes, output_shape=node.output_shape,
                       where=node.where)
    with pytest.raises(LayerError, match="no in-place softplus"):
        saved_tensors(alien)


def test_softplus_layer_and_group_norm_run_in_float32_under_autocast() -> None:
    # CUDA autocast's float32 list: a half input is saved as a float32 copy, the output is float32,
    # and the next convolution saves a half copy of it.
    for layer, extra in (("softplus", 0), ("layer_norm", 2 * 15 * F32), ("group_norm: {groups: 2}", 2 * 2 * F32)):
        network = spec("4x3x5", CONV, layer, CONV)
        assert per_node(network, mixed=True) == [4 * 15 * HALF_BYTES, 4 * 15 * F32 + extra, 4 * 15 * HALF_BYTES]


def test_mul_gate_and_mask() -> None:
    # A Cx1x1 gate times a CxHxW tensor: each factor for the other's gradient. A mask that is a
    # network input needs no gradient: the tensor it multiplies is not kept, only the mask.
    gate = loads("""\
input: 4x3x5
layers:
  - conv: {name: x, out: 4, kernel: 1}
  - global_avg_pool
  - conv: {out: 4, kernel: 1}
  - sigmoid
  - mul: {from: x}
""")
    rows = per_node(gate)
    assert rows[-1] == 4 * 15 * F32  # the gate (4 elements) was saved by sigmoid already: x only
    masked = loads("""\
inputs: {image: 4x3x5, mask: 1x3x5}
layers:
  - conv: {from: image, out: 4, kernel: 1}
  - mul: {from: mask}
  - conv: {out: 2, kernel: 1}
""")
    assert per_node(masked, 2) == [2 * 4 * 15 * F32, 2 * 15 * F32, 2 * 4 * 15 * F32]


def test_max_sub_and_joins_of_three() -> None:
    # torch.maximum keeps both inputs; sub and add nothing; a third input is taken into the running
    # result, whose copy is kept (a mul keeps it only if the third input needs a gradient).
    base = "inputs: {a: 2x3, b: 2x3, c: 2x3}\nlayers:\n  - conv1d: {name: x, from: a, out: 2, kernel: 1}\n" \
           "  - conv1d: {name: y, from: b, out: 2, kernel: 1}\n"
    element = 6 * F32
    assert per_node(loads(base + "  - max: {from: [x, y]}\n"))[-1] == 2 * element
    assert per_node(loads(base + "  - sub: {from: [x, y, c]}\n"))[-1] == 0
    assert per_node(loads(base + "  - max: {from: [x, y, c]}\n"))[-1] == 4 * element  # x, y, copy, c
    assert per_node(loads(base + "  - mul: {from: [x, y, c]}\n"))[-1] == 3 * element  # x, y, c; no copy
    assert per_node(loads(base + "  - mul: {from: [c, x, y]}\n"))[-1] == 3 * element  # x, y, copy; c needs none
    (first, second, copy, third) = saved_tensors(loads(base + "  - mul: {from: [x, y, c]}\n").nodes[-1])
    assert (first.needs, second.needs, copy.needs, third.needs) == ((1,), (0,), (2,), (0, 1))


def test_in_place_joins() -> None:
    # add_ / sub_ keep nothing and write into the first input; mul_ and clamp_min_ (max) keep a
    # copy of the first input made before it is overwritten, and the second input (x here, which
    # y's conv saved already). The last conv saves the join's output: y's storage, saved by nobody yet.
    base = "input: 2x3\nlayers:\n  - conv1d: {name: x, out: 2, kernel: 1}\n  - conv1d: {name: y, out: 2, kernel: 1}\n"
    element = 6 * F32
    for op, kept in (("add", 0), ("sub", 0), ("mul", element), ("max", element)):
        network = loads(base + f"  - {op}: {{from: [y, x], inplace: true}}\n  - conv1d: {{out: 2, kernel: 1}}\n")
        assert per_node(network) == [element, element, kept, element]


def test_views_share_their_storage() -> None:
    # crop and a split's parts are views: a conv reading one saves the whole storage underneath.
    crop = spec("4x6x6", CONV, "crop: {size: 2x2}", CONV)
    assert per_node(crop) == [4 * 36 * F32, 0, 4 * 36 * F32]
    split = loads("input: 4x6x6\nlayers:\n  - conv: {out: 4, kernel: 1}\n  - split: {name: s, parts: 2}\n"
                  "  - conv: {from: s.0, out: 2, kernel: 1}\n  - conv: {from: s.1, out: 2, kernel: 1}\n")
    assert per_node(split) == [4 * 36 * F32, 0, 0, 4 * 36 * F32, 0]
    assert isinstance(crop.nodes[1].layer, Crop) and isinstance(split.nodes[1].layer, ChannelSlice)


def test_copies_save_nothing() -> None:
    # concat, channel shuffle and pixel (un)shuffle copy; their backward needs only sizes.
    for layer in ("channel_shuffle: {groups: 2}", "pixel_shuffle: {factor: 2}", "pixel_unshuffle: {factor: 3}"):
        network = spec("4x6x6", CONV, layer)
        assert per_node(network) == [4 * 36 * F32, 0]


def test_saved_tensor_needs_is_a_tuple_of_inputs() -> None:
    assert SavedTensor("input").needs == ()
    assert SavedTensor("weight", "compute", needs=(0,)).needs == (0,)


# --------------------------------------------------------------------------- the examples' in-place marks

#: Where torchvision (or, for U-Net and the two-stream head, the convention chosen) computes in
#: place, read from its source (tools/torch_measure.py TORCHVISION_INPLACE quotes it): the
#: activation functions run in place, and a regex of the join nodes that add in place.
MARKS: dict[str, tuple[frozenset[str], str | None]] = {
    "resnet18": (frozenset({"relu"}), r"\.add$"),  # nn.ReLU(inplace=True); out += identity
    "resnet50": (frozenset({"relu"}), r"\.add$"),
    "vgg16": (frozenset({"relu"}), None),  # nn.ReLU(inplace=True)
    "mobilenet_v2": (frozenset({"relu6"}), None),  # Conv2dNormActivation's inplace=True; x + self.conv(x)
    "googlenet": (frozenset({"relu"}), None),  # F.relu(x, inplace=True)
    "nin_cifar10": (frozenset({"relu"}), None),  # Caffe: top == bottom
    # SiLU in place everywhere (Conv2dNormActivation, and the squeeze-excite's partial(nn.SiLU,
    # inplace=True)); the sigmoid gate and `scale * input` are not; result += input
    "efficientnet_b0": (frozenset({"silu"}), r"\.add_\d+$"),
    "convnext_tiny": (frozenset(), r"\.add_\d+$"),  # nn.GELU(); layer_scale * block(x); result += input
    # the ResNet body as above; the FPN's `inner_lateral + inner_top_down` is not in place
    "fpn_resnet50": (frozenset({"relu"}), r"\.residual_\d+\.add$"),
    "unet": (frozenset({"relu"}), None),  # Caffe's in-place ReLU; milesial/Pytorch-UNet nn.ReLU(inplace=True)
    "two_stream_fusion": (frozenset({"relu"}), None),  # Conv2dNormActivation's convention
    "one_filter": (frozenset(), None), "one_by_one": (frozenset(), None), "one_by_one_naive": (frozenset(), None),
    "reduce_192_to_32": (frozenset(), None),
}


def example(name: str) -> Network:
    return load(str(EXAMPLES / f"{name}.yaml"))


def test_every_example_is_listed() -> None:
    assert sorted(MARKS) == sorted(path.stem for path in EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(MARKS))
def test_examples_carry_torchvision_marks(name: str) -> None:
    functions, joins = MARKS[name]
    network = example(name)
    marked = 0
    for node in network.nodes:
        layer = node.layer
        if isinstance(layer, Activation):
            assert layer.inplace == (layer.function in functions), node.name
            marked += layer.inplace
        elif isinstance(layer, Elementwise):
            assert layer.inplace == (joins is not None and re.search(joins, node.name) is not None), node.name
            marked += layer.inplace
    assert (marked > 0) == bool(functions or joins)


# --------------------------------------------------------------------------- measured: the graph zoo specs

# Produced by:
#   /work/venv-torch-train/bin/python tools/torch_measure.py tests/data/training_zoo_<graph|graph_nd>.yaml \
#       --batch <2|5> --variants as_written
# training.cuda_kernels.per_node (float32) and mixed_precision.cuda_kernels.per_node: bytes each
# node saves first (nodes saving nothing new are absent).
ZOO_GRAPH_PER_NODE: dict[tuple[str, int, bool], dict[str, int]] = {
    ('graph', 2, False): {
        'stem': 4608, 'layer_norm_1': 11520, 'linear_1': 9216, 'gelu_1': 18432, 'linear_2': 18432,
        'layer_scale_1': 9216, 'group_norm_1': 9248, 'mish_1': 9216, 'conv_1': 9216, 'elu_1': 9216,
        'instance_norm_1': 9408, 'hardsigmoid_1': 9216, 'masked': 1152, 'prelu_1': 9216, 'se.reduce': 64,
        'se.relu': 16, 'se.hardsigmoid': 64, 'se.scale': 9280, 'mish_2': 9216, 'branch_a': 9216, 'gated_a': 4608,
        'soft': 4608, 'larger': 9216, 'product': 9216, 'conv_3': 4608, 'batch_norm_1': 9280, 'mul_1': 9216,
        'conv_4': 9216, 'small': 4608, 'small_relu': 3072, 'gate': 5120, 'clipped': 5120, 'triple': 15360,
        'layer_norm_2': 6400, 'tanh_1': 5120, 'aux': 64
    },
    ('graph', 2, True): {
        'stem': 2304, 'layer_norm_1': 11520, 'linear_1': 4608, 'gelu_1': 9216, 'linear_2': 9216,
        'layer_scale_1': 4608, 'group_norm_1': 9248, 'mish_1': 9216, 'conv_1': 4608, 'elu_1': 4608,
        'instance_norm_1': 4800, 'hardsigmoid_1': 4608, 'masked': 1152, 'prelu_1': 4608, 'se.reduce': 32,
        'se.relu': 8, 'se.hardsigmoid': 32, 'se.scale': 4640, 'mish_2': 4608, 'branch_a': 4608, 'gated_a': 2304,
        'soft': 4608, 'larger': 6912, 'product': 11520, 'conv_3': 2304, 'batch_norm_1': 4672, 'mul_1': 13824,
        'conv_4': 4608, 'small': 2304, 'small_relu': 1536, 'gate': 2560, 'clipped': 10240, 'triple': 12800,
        'layer_norm_2': 6400, 'tanh_1': 5120, 'head': 2560, 'aux': 32
    },
    ('graph', 5, False): {
        'stem': 11520, 'layer_norm_1': 28800, 'linear_1': 23040, 'gelu_1': 46080, 'linear_2': 46080,
        'layer_scale_1': 23040, 'group_norm_1': 23120, 'mish_1': 23040, 'conv_1': 23040, 'elu_1': 23040,
        'instance_norm_1': 23520, 'hardsigmoid_1': 23040, 'masked': 2880, 'prelu_1': 23040, 'se.reduce': 160,
        'se.relu': 40, 'se.hardsigmoid': 160, 'se.scale': 23200, 'mish_2': 23040, 'branch_a': 23040,
        'gated_a': 11520, 'soft': 11520, 'larger': 23040, 'product': 23040, 'conv_3': 11520, 'batch_norm_1': 23104,
        'mul_1': 23040, 'conv_4': 23040, 'small': 11520, 'small_relu': 7680, 'gate': 12800, 'clipped': 12800,
        'triple': 38400, 'layer_norm_2': 16000, 'tanh_1': 12800, 'aux': 160
    },
    ('graph', 5, True): {
        'stem': 5760, 'layer_norm_1': 28800, 'linear_1': 11520, 'gelu_1': 23040, 'linear_2': 23040,
        'layer_scale_1': 11520, 'group_norm_1': 23120, 'mish_1': 23040, 'conv_1': 11520, 'elu_1': 11520,
        'instance_norm_1': 12000, 'hardsigmoid_1': 11520, 'masked': 2880, 'prelu_1': 11520, 'se.reduce': 80,
        'se.relu': 20, 'se.hardsigmoid': 80, 'se.scale': 11600, 'mish_2': 11520, 'branch_a': 11520,
        'gated_a': 5760, 'soft': 11520, 'larger': 17280, 'product': 28800, 'conv_3': 5760, 'batch_norm_1': 11584,
        'mul_1': 34560, 'conv_4': 11520, 'small': 5760, 'small_relu': 3840, 'gate': 6400, 'clipped': 25600,
        'triple': 32000, 'layer_norm_2': 16000, 'tanh_1': 12800, 'head': 6400, 'aux': 80
    },
    ('graph_nd', 2, False): {
        's_stem': 960, 'layer_norm_1': 1600, 'linear_1': 1280, 'elu_1': 1920, 'linear_2': 1920,
        'layer_scale_1': 1280, 'group_norm_1': 1344, 'prelu_1': 1280, 'instance_norm_1': 1408, 'conv1d_1': 1280,
        'signal_out': 2048, 'v_stem': 4608, 'group_norm_2': 6960, 'softplus_1': 6912, 'conv3d_1': 6912,
        'instance_norm_2': 7056, 'layer_norm_2': 9216, 'hardsigmoid_1': 6912, 'se.reduce': 48, 'se.mish': 24,
        'se.expand': 24, 'se.sigmoid': 48, 'se.scale': 6912, 'mul_1': 6912, 'max_1': 6912, 'volume_out': 6912
    },
    ('graph_nd', 2, True): {
        's_stem': 480, 'layer_norm_1': 1600, 'linear_1': 640, 'elu_1': 960, 'linear_2': 960, 'layer_scale_1': 640,
        'group_norm_1': 1344, 'prelu_1': 640, 'instance_norm_1': 704, 'conv1d_1': 640, 'signal_out': 1024,
        'v_stem': 2304, 'group_norm_2': 6960, 'softplus_1': 6912, 'conv3d_1': 3456, 'instance_norm_2': 3600,
        'layer_norm_2': 9216, 'hardsigmoid_1': 6912, 'se.reduce': 24, 'se.mish': 12, 'se.expand': 12,
        'se.sigmoid': 24, 'se.scale': 6912, 'mul_1': 6912, 'max_1': 10368, 'volume_out': 3456
    },
    ('graph_nd', 5, False): {
        's_stem': 2400, 'layer_norm_1': 4000, 'linear_1': 3200, 'elu_1': 4800, 'linear_2': 4800,
        'layer_scale_1': 3200, 'group_norm_1': 3360, 'prelu_1': 3200, 'instance_norm_1': 3520, 'conv1d_1': 3200,
        'signal_out': 5120, 'v_stem': 11520, 'group_norm_2': 17400, 'softplus_1': 17280, 'conv3d_1': 17280,
        'instance_norm_2': 17640, 'layer_norm_2': 23040, 'hardsigmoid_1': 17280, 'se.reduce': 120, 'se.mish': 60,
        'se.expand': 60, 'se.sigmoid': 120, 'se.scale': 17280, 'mul_1': 17280, 'max_1': 17280, 'volume_out': 17280
    },
    ('graph_nd', 5, True): {
        's_stem': 1200, 'layer_norm_1': 4000, 'linear_1': 1600, 'elu_1': 2400, 'linear_2': 2400,
        'layer_scale_1': 1600, 'group_norm_1': 3360, 'prelu_1': 1600, 'instance_norm_1': 1760, 'conv1d_1': 1600,
        'signal_out': 2560, 'v_stem': 5760, 'group_norm_2': 17400, 'softplus_1': 17280, 'conv3d_1': 8640,
        'instance_norm_2': 9000, 'layer_norm_2': 23040, 'hardsigmoid_1': 17280, 'se.reduce': 60, 'se.mish': 30,
        'se.expand': 30, 'se.sigmoid': 60, 'se.scale': 17280, 'mul_1': 17280, 'max_1': 25920, 'volume_out': 8640
    },
}

# Same runs: (training.cpu.saved_activation_bytes, mixed_precision.cpu.saved_activation_bytes,
# mixed_precision.cuda_kernels.weight_copy_bytes, optimizers.parameter_tensors,
# inference.schedule_peak_bytes, inference.schedule_peak_without_scratch_bytes).
ZOO_GRAPH_TOTALS = {
    ("graph", 2): (270_000, 155_944, 4_628, 42, 47_232, 47_232),
    ("graph", 5): (674_904, 389_764, 4_628, 42, 118_080, 118_080),
    ("graph_nd", 2): (92_688, 48_424, 2_330, 32, 23_296, 21_040),
    ("graph_nd", 5): (231_720, 121_060, 2_330, 32, 58_240, 52_600),
}


def plain_instance_norms(network: Network) -> dict[str, int]:
    """Instance norms without affine -> their statistics' elements per sample (mean and invstd, C
    each). Under CPU autocast (the measurement) these are half precision when the input is half,
    as it is for each of them in the zoo (a PReLU's output); CUDA and convcost: float32."""
    return {node.name: 2 * node.input_shapes[0][0] for node in network.nodes
            if isinstance(node.layer, Normalization) and node.layer.kind == "instance_norm" and not node.layer.affine}


@pytest.mark.parametrize("zoo,batch,mixed", sorted(ZOO_GRAPH_PER_NODE))
def test_graph_zoo_per_node_equals_pytorch(zoo: str, batch: int, mixed: bool) -> None:
    network = load(str(DATA / f"training_zoo_{zoo}.yaml"))
    expected = dict(ZOO_GRAPH_PER_NODE[zoo, batch, mixed])
    if mixed:  # half-precision statistics on CPU, float32 on CUDA: 2 bytes more an element
        for name, statistics in plain_instance_norms(network).items():
            expected[name] += (F32 - HALF_BYTES) * statistics * batch
    rows = saved_bytes_per_node(network, batch=batch, mixed_precision=mixed)
    assert {row.name: row.activation_bytes for row in rows if row.activation_bytes} == expected


@pytest.mark.parametrize("zoo,batch", sorted(ZOO_GRAPH_TOTALS))
def test_graph_zoo_totals_equal_pytorch(zoo: str, batch: int) -> None:
    network = load(str(DATA / f"training_zoo_{zoo}.yaml"))
    cpu, _, copies, tensors, schedule, bare = ZOO_GRAPH_TOTALS[zoo, batch]
    assert saved_activation_bytes(network, batch=batch) == cpu  # no dropout: CPU = CUDA in float32
    memory = training_memory(network, batch=batch, mixed_precision=True)
    assert memory.weight_copy_bytes == copies
    assert memory.parameter_tensors == tensors
    plain = sum(plain_instance_norms(network).values()) * batch
    measured_mixed = sum(ZOO_GRAPH_PER_NODE[zoo, batch, True].values())
    assert memory.saved_activation_bytes - (F32 - HALF_BYTES) * plain == measured_mixed
    # Inference: convcost's schedule is PyTorch's without the scratch normalisation layers return
    # (layer norm's mean and rstd, alive while it runs; in graph_nd the peak is at a layer norm).
    assert analyze(network, batch=batch).totals.peak_activation_bytes == bare == schedule_peak(network, batch)
    assert schedule >= bare


# Produced by:
#   /work/venv-torch-train/bin/python tools/torch_measure.py tests/data/training_zoo_layout.yaml \
#       --batch <2|5> --variants as_written
# training.cuda_kernels.saved_activation_bytes, mixed_precision.cuda_kernels.saved_activation_bytes
# (equal to the cpu ones), inference.schedule_peak_bytes.
ZOO_LAYOUT = {2: (5_824, 2_944, 6_336), 5: (14_464, 7_264, 15_840)}


@pytest.mark.parametrize("batch", sorted(ZOO_LAYOUT))
def test_linear_over_channels_first_input_copies(batch: int) -> None:
    # permute + nn.Linear on a conv's (channels-first) output copies it into channels-last order
    # and saves the copy; the batch norm saves the original: PyTorch keeps numel(in) x N x D more
    # than convcost, which counts the linear's input as the conv's storage (documented).
    network = load(str(DATA / "training_zoo_layout.yaml"))
    fp32, mixed, schedule = ZOO_LAYOUT[batch]
    features = numel(network.nodes[0].output_shape) * batch
    assert fp32 - saved_activation_bytes(network, batch=batch) == features * F32
    assert mixed - saved_activation_bytes(network, batch=batch, mixed_precision=True) == features * HALF_BYTES
    assert analyze(network, batch=batch).totals.peak_activation_bytes == schedule  # the copy is not at the peak


# Produced by:
#   /work/venv-torch-train/bin/python tools/torch_measure.py cnblock --batch 2
# One ConvNeXt block (96x56x56) built as convcost's spec does it and as torchvision's CNBlock writes
# it: the same figures for both, {spec, torchvision}.{training, mixed_cpu_autocast,
# inference.schedule_peak_bytes}.
CNBLOCK = (28_951_552, 14_500_864, 21_676_032)
CNBLOCK_SPEC = """\
input: 96x56x56
layers:
  - depthwise: {kernel: 7, padding: 3}
  - layer_norm
  - linear: {out: 384, axis: channels}
  - gelu
  - linear: {out: 96, axis: channels}
  - layer_scale
  - add: {from: input, inplace: true}
"""


def test_convnext_block_in_both_forms() -> None:
    network = loads(CNBLOCK_SPEC)
    fp32, cpu_autocast, schedule = CNBLOCK
    assert saved_activation_bytes(network, batch=2) == fp32
    assert analyze(network, batch=2).totals.peak_activation_bytes == schedule
    # CPU autocast runs the layer norm in half precision: it saves its half input, not a float32
    # copy (2 bytes an element less than CUDA's float32 policy, convcost's convention).
    layer_norm_input = 96 * 56 * 56 * 2
    assert saved_activation_bytes(network, batch=2, mixed_precision=True) - cpu_autocast == 2 * layer_norm_input


# --------------------------------------------------------------------------- measured: the graph examples

# Produced by (one run per example and batch):
#   /work/venv-torch-train/bin/python tools/torch_measure.py examples/<name>.yaml --batch <1|32> \
#       [--variants as_written,torchvision,out_of_place at batch 1]
# and for U-Net at batch 32, whose record (23 GB) does not fit in RAM:
#   ... examples/unet.yaml --batch 32 --device meta --variants as_written,torchvision,out_of_place
#   ... examples/unet.yaml --batch 32 --variants as_written --skip training,optimizers,inference,allocator
# (float32 and the schedule on the meta device, which records what the CPU does: checked for every
# example at batch 1; mixed precision on CPU).
# Columns: variants.as_written.training.{cuda_kernels, cpu}.saved_activation_bytes,
# mixed_precision.{cuda_kernels, cpu}.saved_activation_bytes, mixed_precision.cuda_kernels.
# weight_copy_bytes; variants.torchvision.training.cuda_kernels and .mixed_precision.cuda_kernels
# saved_activation_bytes (None: not measured).
GRAPH_SAVED: dict[tuple[str, int], tuple[int | None, ...]] = {
    ('convnext_tiny', 1): (109_155_808, 109_155_808, 60_608_992, 55_716_832, 57_048_000, 109_155_808, 60_608_992),
    ('convnext_tiny', 32): (3_492_985_856, 3_492_985_856, 1_939_487_744, 1_782_938_624,
        57_048_000, 3_492_985_856, 1_939_487_744),
    ('efficientnet_b0', 1): (88_358_240, 88_362_080, 44_263_792, 44_265_072, 10_472_384, 88_362_080, 44_265_072),
    ('efficientnet_b0', 32): (2_822_253_696, 2_822_376_576, 1_411_231_360, 1_411_272_320,
        10_472_384, 2_822_376_576, 1_411_272_320),
    ('fpn_resnet50', 1): (90_461_696, 90_461_696, 46_156_288, 46_156_288, 53_594_496, 90_461_696, 46_156_288),
    ('fpn_resnet50', 32): (2_888_187_392, 2_888_187_392, 1_470_414_336, 1_470_414_336,
        53_594_496, 2_888_187_392, 1_470_414_336),
    ('two_stream_fusion', 1): (4_458_752, 4_458_752, 2_230_400, 2_230_400, 93_696, 4_458_752, 2_230_400),
    ('two_stream_fusion', 32): (142_616_576, 142_616_576, 71_309_312, 71_309_312, 93_696, 142_616_576, 71_309_312),
    ('unet', 1): (727_380_032, 727_380_032, 401_205_280, 401_205_280, 62_047_616, 727_380_032, 401_205_280),
    ('unet', 32): (23_276_161_024, 23_276_161_024, 12_838_568_960, 12_838_568_960, 62_047_616, 23_276_161_024, None),
}

# Same runs (batch 1), variants.as_written.optimizers after one optimizer.step() and
# mixed_precision.cpu.gradient_bytes. Columns as OPTIMIZER in tests/test_training_memory.py:
# parameter tensors, parameter bytes, gradient bytes, state bytes of SGD, momentum, Adam, AdamW,
# Adam's step tensors, their bytes, mixed-precision gradient bytes.
GRAPH_OPTIMIZER: dict[str, tuple[int, ...]] = {
    'convnext_tiny': (182, 114_356_512, 114_356_512, 0, 114_356_512, 228_713_024, 228_713_024, 182, 728, 114_356_512),
    'efficientnet_b0': (213, 21_154_192, 21_154_192, 0, 21_154_192, 42_308_384, 42_308_384, 213, 852, 21_154_192),
    'fpn_resnet50': (175, 107_409_664, 107_409_664, 0, 107_409_664, 214_819_328, 214_819_328, 175, 700, 107_409_664),
    'two_stream_fusion': (17, 189_480, 189_480, 0, 189_480, 378_960, 378_960, 17, 68, 189_480),
    'unet': (46, 124_122_632, 124_122_632, 0, 124_122_632, 248_245_264, 248_245_264, 46, 184, 124_122_632),
}

# Same runs: inference.schedule_peak_without_pool_indices_bytes and schedule_peak_bytes of the
# as_written variant, schedule_peak_bytes of the torchvision variant, and the two of the
# out_of_place variant (every mark ignored: the example before it carried torchvision's marks;
# at batch 32 from a separate run, `--variants out_of_place --skip training,mixed,optimizers`).
# U-Net at batch 8 and 16 (for the allocator rows below), on the meta device:
#   ... examples/unet.yaml --batch <8|16> --device meta --variants as_written,torchvision,out_of_place --skip training
GRAPH_INFERENCE: dict[tuple[str, int], tuple[int, ...]] = {
    ('convnext_tiny', 1): (10_838_016, 10_838_016, 10_838_016, 10_838_016, 10_838_016),
    ('convnext_tiny', 32): (346_816_512, 346_816_512, 346_816_512, 346_816_512, 346_816_512),
    ('efficientnet_b0', 1): (9_633_792, 9_633_792, 9_633_792, 9_633_792, 9_633_792),
    ('efficientnet_b0', 32): (308_281_344, 308_281_344, 308_281_344, 308_281_344, 308_281_344),
    ('fpn_resnet50', 1): (10_687_488, 10_687_488, 10_687_488, 10_687_488, 10_687_488),
    ('fpn_resnet50', 32): (341_999_616, 341_999_616, 341_999_616, 341_999_616, 341_999_616),
    ('two_stream_fusion', 1): (1_310_720, 1_310_720, 1_310_720, 1_310_720, 1_310_720),
    ('two_stream_fusion', 32): (41_943_040, 41_943_040, 41_943_040, 41_943_040, 41_943_040),
    ('unet', 1): (200_605_696, 200_605_696, 200_605_696, 200_605_696, 200_605_696),
    ('unet', 32): (6_419_382_272, 6_419_382_272, 6_419_382_272, 6_419_382_272, 6_419_382_272),
    ('unet', 8): (1_604_845_568, 1_604_845_568, 1_604_845_568, 1_604_845_568, 1_604_845_568),
    ('unet', 16): (3_209_691_136, 3_209_691_136, 3_209_691_136, 3_209_691_136, 3_209_691_136),
}

# Same runs: allocator.allocator_peak_bytes of as_written and of out_of_place (None: not
# measured). U-Net at batch 32 could not be measured: its CPU forward outgrew the machine's 23 GB
# (killed by the OOM killer at 24.3 GB resident). At batch 8 and 16 instead:
#   ... examples/unet.yaml --batch 8 --variants as_written --skip training,mixed,optimizers
#   ... examples/unet.yaml --batch 16 --variants as_written --skip training,mixed,optimizers,inference
GRAPH_ALLOCATOR: dict[tuple[str, int], tuple[int, int | None]] = {
    ('convnext_tiny', 1): (10_838_016, 10_838_016),
    ('convnext_tiny', 32): (346_816_512, 346_816_512),
    ('efficientnet_b0', 1): (10_841_472, 10_841_472),
    ('efficientnet_b0', 32): (346_819_968, 346_819_968),
    ('fpn_resnet50', 1): (16_015_488, 16_015_488),
    ('fpn_resnet50', 32): (393_379_840, 393_379_840),
    ('two_stream_fusion', 1): (1_646_592, 1_646_592),
    ('two_stream_fusion', 32): (50_405_376, 50_405_376),
    ('unet', 1): (249_088_000, 249_088_000),
    ('unet', 8): (1_991_671_808, None),
    ('unet', 16): (3_983_196_160, None),
}

GRAPH_CASES = sorted(GRAPH_SAVED)


def dropout_elements(network: Network, batch: int) -> int:
    return sum(numel(node.input_shapes[0]) * batch for node in network.nodes
               if isinstance(node.layer, Dropout) and 0 < node.layer.p < 1)


def half_layer_norm_inputs(network: Network, batch: int) -> int:
    """Elements of the layer-norm inputs that are half precision under autocast (a convolution's
    output): CPU autocast saves them as they are, CUDA's float32 policy (convcost) as float32."""
    return sum(numel(node.input_shapes[0]) * batch for node in network.nodes
               if isinstance(node.layer, Normalization) and node.layer.kind == "layer_norm"
               and node.inputs[0] >= 0 and isinstance(network.nodes[node.inputs[0]].layer, Conv))


@pytest.mark.parametrize("name,batch", GRAPH_CASES)
def test_graph_example_saved_activations_equal_pytorch(name: str, batch: int) -> None:
    network = example(name)
    fp32, cpu, mixed, mixed_cpu, copies, torchvision, torchvision_mixed = GRAPH_SAVED[name, batch]
    assert saved_activation_bytes(network, batch=batch) == fp32
    # CPU F.dropout keeps a float32 mask, not a bool one
    assert cpu == fp32 + dropout_elements(network, batch) * (F32 - 1)
    # torchvision's only other difference in training: EfficientNet's nn.Dropout(inplace=True),
    # whose dropout_ keeps a mask in the activation's dtype on CUDA too
    in_place_dropout = dropout_elements(network, batch) if name == "efficientnet_b0" else 0
    assert torchvision == fp32 + in_place_dropout * (F32 - 1)
    if mixed is None:
        return
    memory = training_memory(network, batch=batch, mixed_precision=True)
    assert (memory.saved_activation_bytes, memory.weight_copy_bytes) == (mixed, copies)
    assert mixed_cpu == mixed + dropout_elements(network, batch) * (HALF_BYTES - 1) \
        - (F32 - HALF_BYTES) * half_layer_norm_inputs(network, batch)
    if torchvision_mixed is not None:
        assert torchvision_mixed == mixed + in_place_dropout * (HALF_BYTES - 1)


@pytest.mark.parametrize("name", sorted(GRAPH_OPTIMIZER))
def test_graph_example_optimizer_state_equals_pytorch(name: str) -> None:
    tensors, params, grads, sgd, momentum, adam, adamw, steps, step_bytes, mixed_grads = GRAPH_OPTIMIZER[name]
    for optimizer, state in (("sgd", sgd), ("momentum", momentum), ("adam", adam), ("adamw", adamw)):
        memory = training_memory(example(name), optimizer=optimizer)
        assert (memory.param_bytes, memory.gradient_bytes, memory.optimizer_state_bytes) == (params, grads, state)
        assert memory.parameter_tensors == tensors == steps and step_bytes == F32 * steps
        assert training_memory(example(name), optimizer=optimizer, mixed_precision=True).gradient_bytes == mixed_grads


@pytest.mark.parametrize("name,batch", sorted(GRAPH_INFERENCE))
def test_graph_example_peak_equals_pytorch_schedule(name: str, batch: int) -> None:
    # With torchvision's in-place marks convcost's peak is the last-use schedule of the ops
    # PyTorch runs; none of these examples has its peak at a max pool, so the CPU indices do not
    # show. The marks move none of these peaks (each is where nothing runs in place: a batch
    # norm beside its convolution's output, a GELU, the FPN's out-of-place add, U-Net's concat).
    written, with_indices, torchvision, unmarked_plain, unmarked_indices = GRAPH_INFERENCE[name, batch]
    network = example(name)
    assert analyze(network, batch=batch).totals.peak_activation_bytes == written == schedule_peak(network, batch)
    assert schedule_peak(network, batch, pool_indices=True) == with_indices == torchvision
    before = unmarked(EXAMPLES / f"{name}.yaml")
    assert analyze(before, batch=batch).totals.peak_activation_bytes == unmarked_plain
    assert schedule_peak(before, batch, pool_indices=True) == unmarked_indices


@pytest.mark.parametrize("name,batch", sorted(GRAPH_ALLOCATOR))
def test_graph_example_allocator_gap_is_documented(name: str, batch: int) -> None:
    allocator, before = GRAPH_ALLOCATOR[name, batch]
    _, schedule, _, _, unmarked_schedule = GRAPH_INFERENCE[name, batch]
    assert allocator >= schedule
    row = f"| {name} | {batch} | {schedule:,} | {allocator:,} | {allocator / schedule:.2f} | {unmarked_schedule:,} | "
    row += "- | - |" if before is None else f"{before:,} | {before / unmarked_schedule:.2f} |"
    assert row in (ROOT / "docs" / "conventions.md").read_text()


def test_in_place_softplus_is_refused_by_the_cli() -> None:
    # a real process: one line naming file, line and layer, exit code 2, no traceback
    text = "input: 3x8x8\nlayers:\n  - conv: {out: 4, kernel: 1}\n  - softplus: {inplace: true}\n"
    proc = subprocess.run([sys.executable, "-m", "convcost", "analyze", "-"], input=text, capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "convcost: error: <stdin>:4:16: layer 'softplus_1': unknown key 'inplace' for softplus; allowed: name, "
        "repeat, from, if, beta, threshold"]
