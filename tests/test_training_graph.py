"""Training memory of the graph layers and examples against PyTorch 2.13 measurements and closed forms.

The measured figures are literals printed by ``tools/torch_measure.py`` (torch 2.13.0+cpu, its
own venv; torch is never imported here); each table names the command that produced it (the
full command lines are in the tool's docstring). ``cuda_kernels`` figures follow CUDA where a
CPU run differs and CUDA can be emulated (dropout through ``native_dropout``; under autocast,
CUDA's float32 policy for softmax, upsampling, layer norm, group norm and softplus): that is
convcost's convention and is matched exactly. Plain CPU figures differ by the documented amounts
(docs/conventions_training.md), computed here in closed form where one exists.
"""

from __future__ import annotations

import re
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
