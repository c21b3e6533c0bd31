"""convcost.training_memory against PyTorch 2.13 measurements and closed forms.

The measured figures below are literals printed by ``tools/torch_measure.py`` (torch 2.13.0+cpu,
its own venv; torch is never imported here). Each table names the command that produced it;
the full command lines are in the tool's docstring. ``cuda_kernels`` figures are measured with
dropout through ``torch.native_dropout`` (the kernel ``F.dropout`` runs on CUDA) and, under
autocast, CUDA's float32 policy for softmax and upsampling: that is convcost's convention, so
those figures are matched exactly. The plain CPU figures differ by the documented amounts
(docs/conventions.md ("Training memory")), which are computed here in closed form and checked too.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from convcost import analyze, load, loads
from convcost.layers import (
    Dropout,
    Flatten,
    Layer,
    Pool,
    Softmax,
    numel,
)
from convcost.network import INPUT, Input, Network, Node
from convcost.training_memory import (
    HALF_BYTES,
    OPTIMIZER_STATE_COPIES,
    OPTIMIZERS,
    SAVED_TENSOR_RULES,
    NodeSaved,
    SavedTensor,
    TrainingMemory,
    TrainingRule,
    saved_activation_bytes,
    saved_bytes_per_node,
    saved_tensors,
    training_memory,
)

from .peak_schedule import schedule_peak, unmarked

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"
F32 = 4

# --------------------------------------------------------------------------- measured tables

# Produced by (one run per example and batch, in the first round, before the examples carried
# torchvision's in-place marks):
#   /work/venv-torch-train/bin/python tools/torch_measure.py examples/<name>.yaml --batch <1|32>
# training.*.saved_activation_bytes of the two variants and mixed_precision.*.{saved_activation,
# weight_copy}_bytes of "as_written" (mixed precision: bfloat16 autocast on CPU, float32 master
# weights). The torchvision variant's mixed-precision figures equal the as-written ones.
# Columns: fp32 cuda_kernels, fp32 cpu, torchvision fp32 cuda_kernels, torchvision fp32 cpu,
# mixed cuda_kernels, mixed cpu, half-precision weight copies.
# The examples now carry torchvision's marks: the "as written" columns are those of the variant
# the tool now calls `out_of_place` (every mark ignored; `unmarked()` below), the torchvision
# columns those of the examples as they are. Re-measured at batch 1 with the current tool
# (`--variants as_written,out_of_place`): every figure of this table identical.
SAVED = {
    ("googlenet", 1): (35_467_872, 35_470_944, 35_467_872, 35_470_944, 23_406_336, 23_405_360, 13_980_544),
    ("googlenet", 32): (1_134_971_904, 1_135_070_208, 1_134_971_904, 1_135_070_208,
        749_002_752, 748_971_520, 13_980_544),
    ("mobilenet_v2", 1): (78_342_144, 78_345_984, 78_342_144, 78_345_984, 39_239_936, 39_241_216, 6_939_520),
    ("mobilenet_v2", 32): (2_502_718_720, 2_502_841_600, 2_502_718_720, 2_502_841_600,
        1_251_448_064, 1_251_489_024, 6_939_520),
    ("nin_cifar10", 1): (2_918_912, 3_029_504, 2_918_912, 3_029_504, 1_576_192, 1_613_056, 1_931_136),
    ("nin_cifar10", 32): (93_405_184, 96_944_128, 93_405_184, 96_944_128, 50_438_144, 51_617_792, 1_931_136),
    ("one_by_one", 1): (652_288, 652_288, 652_288, 652_288, 326_144, 326_144, 31_744),
    ("one_by_one", 32): (20_873_216, 20_873_216, 20_873_216, 20_873_216, 10_436_608, 10_436_608, 31_744),
    ("one_by_one_naive", 1): (602_112, 602_112, 602_112, 602_112, 301_056, 301_056, 307_200),
    ("one_by_one_naive", 32): (19_267_584, 19_267_584, 19_267_584, 19_267_584, 9_633_792, 9_633_792, 307_200),
    ("one_filter", 1): (49_152, 49_152, 49_152, 49_152, 24_576, 24_576, 6),
    ("one_filter", 32): (1_572_864, 1_572_864, 1_572_864, 1_572_864, 786_432, 786_432, 6),
    ("reduce_192_to_32", 1): (602_112, 602_112, 602_112, 602_112, 301_056, 301_056, 12_288),
    ("reduce_192_to_32", 32): (19_267_584, 19_267_584, 19_267_584, 19_267_584, 9_633_792, 9_633_792, 12_288),
    ("resnet18", 1): (22_218_240, 22_218_240, 22_218_240, 22_218_240, 11_931_136, 11_931_136, 23_357_824),
    ("resnet18", 32): (709_793_280, 709_793_280, 709_793_280, 709_793_280, 380_605_952, 380_605_952, 23_357_824),
    ("resnet50", 1): (86_121_984, 86_121_984, 86_121_984, 86_121_984, 43_970_048, 43_970_048, 51_005_824),
    ("resnet50", 32): (2_749_316_608, 2_749_316_608, 2_749_316_608, 2_749_316_608,
        1_400_454_656, 1_400_454_656, 51_005_824),
    ("vgg16", 1): (73_330_688, 73_355_264, 73_330_688, 73_355_264, 42_790_912, 42_799_104, 276_688_256),
    ("vgg16", 32): (2_346_582_016, 2_347_368_448, 2_346_582_016, 2_347_368_448,
        1_369_309_184, 1_369_571_328, 276_688_256),
}

# Same runs, variants.as_written.optimizers after one optimizer.step() (identical at batch 1 and
# 32) and mixed_precision.cpu.gradient_bytes (float32). Columns: parameter tensors, parameter
# bytes, gradient bytes, state bytes of SGD, SGD momentum 0.9, Adam, AdamW, Adam's step tensors
# (0-dim float32 on the host), their bytes, mixed-precision gradient bytes.
OPTIMIZER = {
    "googlenet": (116, 27_994_208, 27_994_208, 0, 27_994_208, 55_988_416, 55_988_416, 116, 464, 27_994_208),
    "mobilenet_v2": (158, 14_019_488, 14_019_488, 0, 14_019_488, 28_038_976, 28_038_976, 158, 632, 14_019_488),
    "nin_cifar10": (18, 3_867_944, 3_867_944, 0, 3_867_944, 7_735_888, 7_735_888, 18, 72, 3_867_944),
    "one_by_one": (4, 63_680, 63_680, 0, 63_680, 127_360, 127_360, 4, 16, 63_680),
    "one_by_one_naive": (2, 614_528, 614_528, 0, 614_528, 1_229_056, 1_229_056, 2, 8, 614_528),
    "one_filter": (1, 12, 12, 0, 12, 24, 24, 1, 4, 12),
    "reduce_192_to_32": (2, 24_704, 24_704, 0, 24_704, 49_408, 49_408, 2, 8, 24_704),
    "resnet18": (62, 46_758_048, 46_758_048, 0, 46_758_048, 93_516_096, 93_516_096, 62, 248, 46_758_048),
    "resnet50": (161, 102_228_128, 102_228_128, 0, 102_228_128, 204_456_256, 204_456_256, 161, 644, 102_228_128),
    "vgg16": (32, 553_430_176, 553_430_176, 0, 553_430_176, 1_106_860_352, 1_106_860_352, 32, 128, 553_430_176),
}

# --------------------------------------------------------------------------- helpers

#: Where torchvision computes in place (tools/torch_measure.py TORCHVISION_INPLACE, read from
#: pytorch/vision's resnet.py, vgg.py, mobilenetv2.py + ops/misc.py, googlenet.py): the examples
#: carry exactly these marks (tests/test_training_graph.py::test_examples_carry_torchvision_marks).
TORCHVISION_ACTIVATIONS = {"resnet18": "relu", "resnet50": "relu", "vgg16": "relu", "mobilenet_v2": "relu6",
                           "googlenet": "relu", "nin_cifar10": "relu"}
TORCHVISION_INPLACE_ADD = {"resnet18", "resnet50"}


def example(name: str) -> Network:
    return load(str(EXAMPLES / f"{name}.yaml"))


def out_of_place(name: str) -> Network:
    """The example as it was written before it carried torchvision's in-place marks."""
    return unmarked(EXAMPLES / f"{name}.yaml")


def dropout_elements(network: Network, batch: int) -> int:
    """Elements of the dropout masks autograd keeps (0 < p < 1)."""
    return sum(numel(node.input_shapes[0]) * batch for node in network.nodes
               if isinstance(node.layer, Dropout) and 0 < node.layer.p < 1)


def softmax_elements(network: Network, batch: int) -> int:
    return sum(numel(node.output_shape) * batch for node in network.nodes if isinstance(node.layer, Softmax))


# --------------------------------------------------------------------------- the rule table


def test_rule_table_is_exhaustive() -> None:
    assert set(typing.get_args(Layer)) == set(SAVED_TENSOR_RULES)
    assert all(isinstance(rule, TrainingRule) for rule in SAVED_TENSOR_RULES.values())


def test_rule_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        SAVED_TENSOR_RULES[int] = SAVED_TENSOR_RULES[Flatten]  # type: ignore[index]


def test_unknown_layer_type_is_an_error() -> None:
    network = loads("input: 3x8x8\nlayers:\n  - conv: {out: 4, kernel: 1}\n")
    node = network.nodes[0]
    alien = Node(index=0, name="alien", layer=object(),  # type: ignore[arg-type]
                 inputs=(INPUT,), input_shapes=node.input_shapes, output_shape=node.output_shape, where=node.where)
    with pytest.raises(TypeError, match="no training rule for layer type object"):
        saved_tensors(alien)
    broken = Network(name="x", source="x", inputs=(Input("input", (3, 8, 8)),), nodes=(alien,))
    with pytest.raises(TypeError, match="no training rule"):
        saved_activation_bytes(broken)
    with pytest.raises(TypeError, match="no training rule"):
        saved_tensors(node, {})


def test_saved_tensor_checks_its_fields() -> None:
    with pytest.raises(ValueError, match="source"):
        SavedTensor("somewhere")
    with pytest.raises(ValueError, match="dtype"):
        SavedTensor("input", "float64")
    with pytest.raises(ValueError, match="autocast_output"):
        TrainingRule(SAVED_TENSOR_RULES[Flatten].saves, "double", SAVED_TENSOR_RULES[Flatten].parameter_tensors)


@pytest.mark.parametrize("kwargs,message", [
    ({"batch": 0}, "batch"), ({"batch": True}, "batch"), ({"batch": 1.0}, "batch"),
    ({"dtype": "int8"}, "training dtype"), ({"dtype": "float64"}, "training dtype"),
    ({"dtype": "float16", "mixed_precision": True}, "master weights"),
])
def test_invalid_arguments(kwargs: dict[str, typing.Any], message: str) -> None:
    network = example("one_filter")
    with pytest.raises(ValueError, match=message):
        saved_activation_bytes(network, **kwargs)
    with pytest.raises(ValueError, match=message):
        training_memory(network, **kwargs)


def test_unknown_optimizer() -> None:
    with pytest.raises(ValueError, match="optimizer must be one of sgd, momentum, adam, adamw"):
        training_memory(example("one_filter"), optimizer="lion")


# --------------------------------------------------------------------------- closed forms


def spec(input_shape: str, *layers: str) -> Network:
    return loads(f"input: {input_shape}\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers))


@pytest.mark.parametrize("batch", [1, 3])
def test_conv_bn_relu_pool_closed_form(batch: int) -> None:
    # conv saves the network input; bn its input (the conv's output) and 2 x C statistics;
    # relu its output; max pool that same output again (counted once) and int64 indices.
    network = spec("3x8x8", "conv: {out: 5, kernel: 3, padding: 1}", "batch_norm", "relu", "max_pool: {kernel: 2}")
    rows = saved_bytes_per_node(network, batch=batch)
    assert rows == (
        NodeSaved("conv_1", batch * 3 * 64 * F32),
        NodeSaved("batch_norm_1", batch * 5 * 64 * F32 + 2 * 5 * F32),
        NodeSaved("relu_1", batch * 5 * 64 * F32),
        NodeSaved("max_pool_1", batch * 5 * 16 * 8),
    )
    assert saved_activation_bytes(network, batch=batch) == sum(row.activation_bytes for row in rows)


def test_inplace_activation_shares_and_relu6_copies() -> None:
    # relu (in place) saves the batch norm's output storage, which the next conv saves again;
    # relu6 in place saves a copy of its input (hardtanh_'s derivative reads the input).
    conv = "conv: {out: 2, kernel: 1}"
    shared = spec("2x4x4", conv, "batch_norm", "relu: {inplace: true}", conv)
    copied = spec("2x4x4", conv, "batch_norm", "relu6: {inplace: true}", conv)
    out_of_place = spec("2x4x4", conv, "batch_norm", "relu6", conv)
    element = 2 * 16 * F32
    assert [row.activation_bytes for row in saved_bytes_per_node(shared)] == [element, element + 16, element, 0]
    assert [row.activation_bytes for row in saved_bytes_per_node(copied)] == [element, element + 16, element, element]
    assert [row.activation_bytes for row in saved_bytes_per_node(out_of_place)] == [element, element + 16, element,
                                                                                   element]


@pytest.mark.parametrize("function,inplace,saves", [
    ("relu", False, "output"), ("sigmoid", False, "output"), ("tanh", False, "output"),
    ("relu6", False, "input"), ("leaky_relu", False, "input"), ("gelu", False, "input"),
    ("silu", False, "input"), ("hardswish", False, "input"),
    ("relu", True, "output"), ("leaky_relu", True, "output"), ("sigmoid", True, "output"), ("tanh", True, "output"),
    ("relu6", True, "new"), ("gelu", True, "new"), ("silu", True, "new"), ("hardswish", True, "new"),
])
def test_activation_rules(function: str, inplace: bool, saves: str) -> None:
    network = spec("3x5", "conv: {out: 3, kernel: 1}", f"{function}: {{inplace: {str(inplace).lower()}}}")
    (saved,) = saved_tensors(network.nodes[1])
    assert saved.source == saves
    assert saved.elements == (15 if saves == "new" else 0)


@pytest.mark.parametrize("p,expected", [(0.0, 0), (0.5, 2 * 6), (1.0, F32)])
def test_dropout(p: float, expected: int) -> None:
    # p = 0 returns its input; 0 < p < 1 keeps a bool mask; p = 1 keeps a 0-dim zero.
    network = spec("6", "linear: {out: 6}", "relu", f"dropout: {{p: {p}}}", "linear: {out: 2}")
    rows = saved_bytes_per_node(network, batch=2)
    assert rows[1].activation_bytes == 2 * 6 * F32  # relu's output
    assert rows[2].activation_bytes == expected
    # the last linear saves the dropout's output: relu's storage again when p = 0, else a new one
    assert rows[3].activation_bytes == (0 if p == 0 else 2 * 6 * F32)


def test_layers_before_the_first_parameter_save_nothing() -> None:
    # Autograd records nothing until a layer has parameters: the input needs no gradient.
    network = spec("2x8", "max_pool: {kernel: 2}", "relu", "linear: {out: 3, axis: last}", "relu",
                   "linear: {out: 2, axis: last}")
    rows = saved_bytes_per_node(network, batch=1)
    # first linear: its input only (its weight serves the input's gradient, which is not needed)
    assert [row.activation_bytes for row in rows] == [0, 0, 2 * 4 * F32, 2 * 3 * F32, 0]
    mixed = saved_bytes_per_node(network, mixed_precision=True)
    # a float32 input is saved as a half copy; the first linear keeps no weight copy, the second does
    assert [(row.activation_bytes, row.weight_copy_bytes) for row in mixed] == [
        (0, 0), (0, 0), (8 * HALF_BYTES, 0), (6 * HALF_BYTES, 0), (0, 6 * HALF_BYTES)]


def test_global_average_pool_saves_nothing_but_adaptive_does() -> None:
    network = spec("4x6x6", "conv: {out: 4, kernel: 1}", "adaptive_avg_pool: {output_size: 2}",
                   "global_avg_pool", "global_max_pool")
    rows = saved_bytes_per_node(network)
    # conv: the input; adaptive 2x2: the conv's output; global average: a mean, nothing;
    # global max: its 4x1x1 input and 4 int64 indices
    assert [row.activation_bytes for row in rows] == [4 * 36 * F32, 4 * 36 * F32, 0, 4 * F32 + 4 * 8]


def test_mixed_precision_dtype_flow() -> None:
    # conv outputs are half; softmax (float32 under CUDA autocast) saves a float32 output;
    # a linear reading it saves a half copy of it; weights are saved as half copies.
    network = spec("3", "linear: {out: 4}", "relu", "softmax", "linear: {out: 2, bias: false}")
    rows = saved_bytes_per_node(network, batch=5, mixed_precision=True)
    assert rows == (
        NodeSaved("linear_1", 5 * 3 * HALF_BYTES, 0),  # the input's gradient is not needed
        NodeSaved("relu_1", 5 * 4 * HALF_BYTES),
        NodeSaved("softmax_1", 5 * 4 * F32),
        NodeSaved("linear_2", 5 * 4 * HALF_BYTES, 8 * HALF_BYTES),
    )


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("mixed", [False, True])
def test_breakdown_closed_form(optimizer: str, mixed: bool) -> None:
    network = example("resnet18")
    memory = training_memory(network, batch=2, optimizer=optimizer, mixed_precision=mixed)
    params = 11_689_512  # torchvision's resnet18
    copies = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]
    assert isinstance(memory, TrainingMemory)
    assert (memory.params, memory.param_bytes, memory.gradient_bytes) == (params, params * F32, params * F32)
    assert memory.optimizer_state_bytes == copies * params * F32 == OPTIMIZER_STATE_COPIES[optimizer] * params * F32
    assert memory.saved_activation_bytes == saved_activation_bytes(network, batch=2, mixed_precision=mixed)
    assert memory.total_bytes == (memory.saved_activation_bytes + memory.weight_copy_bytes + memory.param_bytes
                                  + memory.gradient_bytes + memory.optimizer_state_bytes)
    assert (memory.weight_copy_bytes > 0) == mixed
    assert training_memory(network, batch=2, mixed_precision=mixed).optimizer == "adam"  # the default


def test_half_training_dtype() -> None:
    # Without mixed precision everything is in the training dtype, batch-norm statistics too.
    network = spec("2x4x4", "conv: {out: 2, kernel: 1}", "batch_norm")
    assert saved_activation_bytes(network, dtype="bfloat16") == (2 * 16 + 2 * 16 + 2 * 2) * 2
    memory = training_memory(network, dtype="float16", optimizer="momentum")
    assert (memory.param_bytes, memory.optimizer_state_bytes) == (10 * 2, 10 * 2)


# --------------------------------------------------------------------------- measured: examples

CASES = sorted(SAVED)


@pytest.mark.parametrize("name,batch", CASES)
def test_saved_activations_equal_pytorch(name: str, batch: int) -> None:
    # In-place ReLU saves the storage the next layer saves anyway; in-place ReLU6 saves a copy of
    # its input; an in-place add saves nothing: torchvision's in-place choices do not change what
    # training keeps.
    measured, _, torchvision, _, *_ = SAVED[name, batch]
    assert saved_activation_bytes(example(name), batch=batch) == torchvision == measured
    if name in TORCHVISION_ACTIVATIONS:
        assert saved_activation_bytes(out_of_place(name), batch=batch) == measured


@pytest.mark.parametrize("name,batch", CASES)
def test_saved_activations_cpu_dropout_difference(name: str, batch: int) -> None:
    # On CPU, F.dropout keeps its mask in the activation dtype (4 bytes) instead of bool (1 byte).
    network = example(name)
    _, cpu, torchvision, torchvision_cpu, *_ = SAVED[name, batch]
    assert cpu - saved_activation_bytes(network, batch=batch) == dropout_elements(network, batch) * (F32 - 1)
    assert torchvision_cpu - torchvision == dropout_elements(network, batch) * (F32 - 1)


@pytest.mark.parametrize("name,batch", CASES)
def test_mixed_precision_equals_pytorch(name: str, batch: int) -> None:
    memory = training_memory(example(name), batch=batch, mixed_precision=True)
    _, _, _, _, saved, _, copies = SAVED[name, batch]
    assert (memory.saved_activation_bytes, memory.weight_copy_bytes) == (saved, copies)


@pytest.mark.parametrize("name,batch", CASES)
def test_mixed_precision_cpu_difference(name: str, batch: int) -> None:
    # CPU autocast: dropout masks in half precision (2 bytes, not bool's 1) and softmax in half
    # precision (its saved output 2 bytes, not CUDA autocast's float32 4).
    network = example(name)
    cpu = SAVED[name, batch][5]
    expected = (dropout_elements(network, batch) * (HALF_BYTES - 1)
                - softmax_elements(network, batch) * (F32 - HALF_BYTES))
    assert cpu - saved_activation_bytes(network, batch=batch, mixed_precision=True) == expected


@pytest.mark.parametrize("name", sorted(OPTIMIZER))
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_parameters_gradients_optimizer_state_equal_pytorch(name: str, optimizer: str) -> None:
    tensors, params, grads, sgd, momentum, adam, adamw, steps, step_bytes, mixed_grads = OPTIMIZER[name]
    memory = training_memory(example(name), optimizer=optimizer)
    state = {"sgd": sgd, "momentum": momentum, "adam": adam, "adamw": adamw}[optimizer]
    assert (memory.param_bytes, memory.gradient_bytes, memory.optimizer_state_bytes) == (params, grads, state)
    # Adam's step scalars: one 0-dim float32 tensor per parameter tensor, not in the state bytes.
    assert memory.parameter_tensors == tensors == steps
    assert step_bytes == F32 * steps
    mixed = training_memory(example(name), optimizer=optimizer, mixed_precision=True)
    assert mixed.gradient_bytes == mixed_grads == memory.gradient_bytes  # float32 gradients under autocast


def test_float16_and_bfloat16_autocast_keep_the_same_bytes() -> None:
    # /work/venv-torch-train/bin/python tools/torch_measure.py examples/resnet18.yaml --batch 1 \
    #     --half float16 --skip optimizers,inference,allocator
    # mixed_precision.{cpu,cuda_kernels}: saved 11_931_136, weight copies 23_357_824 (= bfloat16's)
    assert SAVED["resnet18", 1][4:] == (11_931_136, 11_931_136, 23_357_824)
    memory = training_memory(example("resnet18"), mixed_precision=True)
    assert (memory.saved_activation_bytes, memory.weight_copy_bytes) == (11_931_136, 23_357_824)
    # same for the 2-D zoo at batch 2 (--half float16 --variants as_written): cuda_kernels 180_626, cpu 170_698
    zoo = load(str(DATA / "training_zoo_2d.yaml"))
    assert saved_activation_bytes(zoo, batch=2, mixed_precision=True) == 180_626 == ZOO_MIXED_TOTAL["2d", 2]


# --------------------------------------------------------------------------- measured: zoo specs

# Produced by:
#   /work/venv-torch-train/bin/python tools/torch_measure.py tests/data/training_zoo_<2d|1d|3d>.yaml \
#       --batch <2|5> --variants as_written
# training.cuda_kernels.per_node (float32) and mixed_precision.cuda_kernels.per_node: bytes each
# node saves first (nodes saving nothing new are absent).
ZOO_PER_NODE: dict[tuple[str, int, bool], dict[str, int]] = {
    ("2d", 2, False): {
        "conv_1": 6144, "batch_norm_1": 16448, "relu_1": 16384, "batch_norm_2": 16448, "relu6_1": 16384,
        "depthwise_1": 16384, "batch_norm_3": 16448, "relu6_2": 16384, "max_pool_1": 24576, "leaky_relu_1": 4096,
        "conv_3": 4096, "leaky_relu_2": 4096, "gelu_1": 12288, "conv_4": 12288, "gelu_2": 12288,
        "avg_pool_1": 12288, "silu_1": 3072, "conv_5": 3072, "silu_2": 3072, "conv_6": 3072, "hardswish_1": 3072,
        "conv_7": 3072, "hardswish_2": 3072, "residual_1.body.conv_1": 3072, "residual_1.body.sigmoid_1": 3072,
        "conv_8": 3072, "sigmoid_1": 3072, "tanh_1": 3072, "tanh_2": 3072, "concat_1.branch1.relu_1": 2048,
        "concat_1.branch2.max_pool_1": 6144, "conv_11": 45056, "adaptive_avg_pool_1": 16384,
        "dense_1.body.conv_1": 2304, "adaptive_max_pool_1": 5184, "linear_1": 96, "batch_norm_4": 256,
        "relu_2": 128, "dropout_2": 32, "linear_2": 128, "dropout_3": 4, "linear_3": 96, "softmax_1": 80
    },
    ("2d", 2, True): {
        "conv_1": 3072, "batch_norm_1": 8256, "relu_1": 8192, "batch_norm_2": 8256, "relu6_1": 8192,
        "depthwise_1": 8192, "batch_norm_3": 8256, "relu6_2": 8192, "max_pool_1": 16384, "leaky_relu_1": 2048,
        "conv_3": 2048, "leaky_relu_2": 2048, "gelu_1": 6144, "conv_4": 6144, "gelu_2": 6144, "avg_pool_1": 6144,
        "silu_1": 1536, "conv_5": 1536, "silu_2": 1536, "conv_6": 1536, "hardswish_1": 1536, "conv_7": 1536,
        "hardswish_2": 1536, "residual_1.body.conv_1": 1536, "residual_1.body.sigmoid_1": 1536, "conv_8": 1536,
        "sigmoid_1": 1536, "tanh_1": 1536, "tanh_2": 1536, "concat_1.branch1.relu_1": 1024,
        "concat_1.branch2.max_pool_1": 6144, "conv_11": 22528, "adaptive_avg_pool_1": 16384,
        "dense_1.body.conv_1": 1152, "adaptive_max_pool_1": 5184, "linear_1": 48, "batch_norm_4": 192,
        "relu_2": 64, "dropout_2": 32, "linear_2": 64, "dropout_3": 2, "linear_3": 48, "softmax_1": 80
    },
    ("2d", 5, False): {
        "conv_1": 15360, "batch_norm_1": 41024, "relu_1": 40960, "batch_norm_2": 41024, "relu6_1": 40960,
        "depthwise_1": 40960, "batch_norm_3": 41024, "relu6_2": 40960, "max_pool_1": 61440, "leaky_relu_1": 10240,
        "conv_3": 10240, "leaky_relu_2": 10240, "gelu_1": 30720, "conv_4": 30720, "gelu_2": 30720,
        "avg_pool_1": 30720, "silu_1": 7680, "conv_5": 7680, "silu_2": 7680, "conv_6": 7680, "hardswish_1": 7680,
        "conv_7": 7680, "hardswish_2": 7680, "residual_1.body.conv_1": 7680, "residual_1.body.sigmoid_1": 7680,
        "conv_8": 7680, "sigmoid_1": 7680, "tanh_1": 7680, "tanh_2": 7680, "concat_1.branch1.relu_1": 5120,
        "concat_1.branch2.max_pool_1": 15360, "conv_11": 112640, "adaptive_avg_pool_1": 40960,
        "dense_1.body.conv_1": 5760, "adaptive_max_pool_1": 12960, "linear_1": 240, "batch_norm_4": 448,
        "relu_2": 320, "dropout_2": 80, "linear_2": 320, "dropout_3": 4, "linear_3": 240, "softmax_1": 200
    },
    ("2d", 5, True): {
        "conv_1": 7680, "batch_norm_1": 20544, "relu_1": 20480, "batch_norm_2": 20544, "relu6_1": 20480,
        "depthwise_1": 20480, "batch_norm_3": 20544, "relu6_2": 20480, "max_pool_1": 40960, "leaky_relu_1": 5120,
        "conv_3": 5120, "leaky_relu_2": 5120, "gelu_1": 15360, "conv_4": 15360, "gelu_2": 15360,
        "avg_pool_1": 15360, "silu_1": 3840, "conv_5": 3840, "silu_2": 3840, "conv_6": 3840, "hardswish_1": 3840,
        "conv_7": 3840, "hardswish_2": 3840, "residual_1.body.conv_1": 3840, "residual_1.body.sigmoid_1": 3840,
        "conv_8": 3840, "sigmoid_1": 3840, "tanh_1": 3840, "tanh_2": 3840, "concat_1.branch1.relu_1": 2560,
        "concat_1.branch2.max_pool_1": 15360, "conv_11": 56320, "adaptive_avg_pool_1": 40960,
        "dense_1.body.conv_1": 2880, "adaptive_max_pool_1": 12960, "linear_1": 120, "batch_norm_4": 288,
        "relu_2": 160, "dropout_2": 80, "linear_2": 160, "dropout_3": 2, "linear_3": 120, "softmax_1": 200
    },
    ("1d", 2, False): {
        "batch_norm_1": 544, "relu_1": 512, "residual_1.body.batch_norm_1": 544, "relu_2": 512, "avg_pool_1": 768,
        "batch_norm_2": 816, "dense_1.body.conv_1": 768, "conv_transpose_1": 1024, "adaptive_avg_pool_1": 1024,
        "adaptive_max_pool_1": 512, "linear_1": 128, "softmax_1": 160
    },
    ("1d", 2, True): {
        "batch_norm_1": 544, "relu_1": 512, "residual_1.body.conv_1": 256, "residual_1.body.batch_norm_1": 288,
        "residual_1.shortcut.conv_1": 256, "relu_2": 256, "avg_pool_1": 384, "batch_norm_2": 816,
        "dense_1.body.conv_1": 384, "conv_transpose_1": 512, "adaptive_avg_pool_1": 512,
        "adaptive_max_pool_1": 384, "linear_1": 64, "softmax_1": 160, "linear_2": 80
    },
    ("1d", 5, False): {
        "batch_norm_1": 1312, "relu_1": 1280, "residual_1.body.batch_norm_1": 1312, "relu_2": 1280,
        "avg_pool_1": 1920, "batch_norm_2": 1968, "dense_1.body.conv_1": 1920, "conv_transpose_1": 2560,
        "adaptive_avg_pool_1": 2560, "adaptive_max_pool_1": 1280, "linear_1": 320, "softmax_1": 400
    },
    ("1d", 5, True): {
        "batch_norm_1": 1312, "relu_1": 1280, "residual_1.body.conv_1": 640, "residual_1.body.batch_norm_1": 672,
        "residual_1.shortcut.conv_1": 640, "relu_2": 640, "avg_pool_1": 960, "batch_norm_2": 1968,
        "dense_1.body.conv_1": 960, "conv_transpose_1": 1280, "adaptive_avg_pool_1": 1280,
        "adaptive_max_pool_1": 960, "linear_1": 160, "softmax_1": 400, "linear_2": 200
    },
    ("3d", 2, False): {
        "conv_1": 6144, "batch_norm_1": 12320, "relu_1": 12288, "max_pool_1": 3072, "conv_transpose_1": 1536,
        "avg_pool_1": 9216, "adaptive_avg_pool_1": 9216, "global_max_pool_1": 240, "linear_1": 24
    },
    ("3d", 5, False): {
        "conv_1": 15360, "batch_norm_1": 30752, "relu_1": 30720, "max_pool_1": 7680, "conv_transpose_1": 3840,
        "avg_pool_1": 23040, "adaptive_avg_pool_1": 23040, "global_max_pool_1": 600, "linear_1": 60
    },
}

ZOO_MIXED_TOTAL = {key[:2]: sum(nodes.values()) for key, nodes in ZOO_PER_NODE.items() if key[2]}

# Same runs: (training.cpu.saved_activation_bytes, mixed_precision.cuda_kernels.weight_copy_bytes,
# optimizers.parameter_tensors).
ZOO_TOTALS = {
    ("2d", 2): (325_012, 8_232, 42),
    ("2d", 5): (812_044, 8_232, 42),
    ("1d", 2): (7_312, 648, 20),
    ("1d", 5): (18_112, 648, 20),
    ("3d", 2): (54_056, 636, 8),
    ("3d", 5): (135_092, 636, 8),
}


@pytest.mark.parametrize("zoo,batch,mixed", sorted(ZOO_PER_NODE))
def test_zoo_per_node_equals_pytorch(zoo: str, batch: int, mixed: bool) -> None:
    network = load(str(DATA / f"training_zoo_{zoo}.yaml"))
    rows = saved_bytes_per_node(network, batch=batch, mixed_precision=mixed)
    assert {row.name: row.activation_bytes for row in rows if row.activation_bytes} == ZOO_PER_NODE[zoo, batch, mixed]


@pytest.mark.parametrize("zoo,batch", sorted(ZOO_TOTALS))
def test_zoo_totals_equal_pytorch(zoo: str, batch: int) -> None:
    network = load(str(DATA / f"training_zoo_{zoo}.yaml"))
    cpu, copies, tensors = ZOO_TOTALS[zoo, batch]
    fp32 = saved_activation_bytes(network, batch=batch)
    assert cpu - fp32 == dropout_elements(network, batch) * (F32 - 1)
    assert training_memory(network, batch=batch, mixed_precision=True).weight_copy_bytes == copies
    assert training_memory(network).parameter_tensors == tensors


# Same runs, mixed_precision.cpu.per_node of the 3-D zoo (bfloat16 CPU autocast).
ZOO_3D_CPU_MIXED = {
    2: {"conv_1": 3_072, "batch_norm_1": 6_176, "relu_1": 6_144, "max_pool_1": 15_360, "conv_transpose_1": 768,
        "avg_pool_1": 9_216, "adaptive_avg_pool_1": 9_216, "global_max_pool_1": 240, "linear_1": 12},
    5: {"conv_1": 7_680, "batch_norm_1": 15_392, "relu_1": 15_360, "max_pool_1": 38_400, "conv_transpose_1": 1_920,
        "avg_pool_1": 23_040, "adaptive_avg_pool_1": 23_040, "global_max_pool_1": 600, "linear_1": 30},
}


@pytest.mark.parametrize("batch", [2, 5])
def test_zoo_3d_pooling_under_cpu_autocast(batch: int) -> None:
    # CPU autocast runs 3-D max/avg pooling in float32 (there are no half-precision CPU kernels
    # for it; CUDA autocast runs it in half precision, convcost's convention): such a pool
    # saves a float32 copy of its input (4 bytes an element) where convcost counts its half-
    # precision input (2 bytes, or nothing when an earlier node already saved that storage).
    network = load(str(DATA / "training_zoo_3d.yaml"))
    rows = {row.name: row.activation_bytes for row in saved_bytes_per_node(network, batch=batch, mixed_precision=True)}
    pools = {node.name: node for node in network.nodes if isinstance(node.layer, Pool)}
    assert sorted(pools) == ["avg_pool_1", "max_pool_1"]
    already_saved = {"max_pool_1": True, "avg_pool_1": False}  # max_pool_1 reads relu_1's saved storage
    for name, measured in ZOO_3D_CPU_MIXED[batch].items():
        if name not in pools:
            assert rows[name] == measured
            continue
        elements = numel(pools[name].input_shapes[0]) * batch
        convcost_input = 0 if already_saved[name] else elements * HALF_BYTES
        assert measured - rows[name] == elements * F32 - convcost_input


# --------------------------------------------------------------------------- inference peaks

# Produced by the same runs as SAVED: variants.<as_written|torchvision>.inference.
# schedule_peak_without_pool_indices_bytes and schedule_peak_bytes (the last-use schedule of the
# aten ops PyTorch runs under torch.no_grad(); "with indices" counts the int64 indices CPU max
# pooling returns even at inference). Columns: as written then (now: out of place), the same
# with indices, torchvision in place (now: the examples as written), the same with indices.
# convcost's peak of each example equals the torchvision column; of the unmarked example, the
# first. Batch 1 re-measured with the current tool: identical.
INFERENCE = {
    ("googlenet", 1): (6_422_528, 6_422_528, 4_014_080, 5_619_712),
    ("googlenet", 32): (205_520_896, 205_520_896, 128_450_560, 179_830_784),
    ("mobilenet_v2", 1): (9_633_792, 9_633_792, 9_633_792, 9_633_792),
    ("mobilenet_v2", 32): (308_281_344, 308_281_344, 308_281_344, 308_281_344),
    ("nin_cifar10", 1): (1_572_864, 1_572_864, 1_441_792, 1_441_792),
    ("nin_cifar10", 32): (50_331_648, 50_331_648, 46_137_344, 46_137_344),
    ("one_by_one", 1): (652_288, 652_288, 652_288, 652_288),
    ("one_by_one", 32): (20_873_216, 20_873_216, 20_873_216, 20_873_216),
    ("one_by_one_naive", 1): (702_464, 702_464, 702_464, 702_464),
    ("one_by_one_naive", 32): (22_478_848, 22_478_848, 22_478_848, 22_478_848),
    ("one_filter", 1): (65_536, 65_536, 65_536, 65_536),
    ("one_filter", 32): (2_097_152, 2_097_152, 2_097_152, 2_097_152),
    ("reduce_192_to_32", 1): (702_464, 702_464, 702_464, 702_464),
    ("reduce_192_to_32", 32): (22_478_848, 22_478_848, 22_478_848, 22_478_848),
    ("resnet18", 1): (6_422_528, 6_422_528, 6_422_528, 6_422_528),
    ("resnet18", 32): (205_520_896, 205_520_896, 205_520_896, 205_520_896),
    ("resnet50", 1): (9_633_792, 9_633_792, 9_633_792, 9_633_792),
    ("resnet50", 32): (308_281_344, 308_281_344, 308_281_344, 308_281_344),
    ("vgg16", 1): (25_690_112, 25_690_112, 25_690_112, 25_690_112),
    ("vgg16", 32): (822_083_584, 822_083_584, 822_083_584, 822_083_584),
}

# Same runs: variants.<as_written|torchvision>.allocator.allocator_peak_bytes, the peak of
# PyTorch's CPU allocator over the forward (profiler memory events), documentation figures
# for docs/conventions.md ("Training memory"). Columns: as written, torchvision in place.
ALLOCATOR = {
    ("googlenet", 1): (7_024_640, 7_024_640),
    ("googlenet", 32): (224_788_480, 224_788_480),
    ("mobilenet_v2", 1): (10_841_472, 10_841_472),
    ("mobilenet_v2", 32): (346_819_968, 346_819_968),
    ("nin_cifar10", 1): (2_351_104, 2_351_104),
    ("nin_cifar10", 32): (71_426_048, 71_426_048),
    ("one_by_one", 1): (1_266_688, 1_266_688),
    ("one_by_one", 32): (40_153_088, 40_153_088),
    ("one_by_one_naive", 1): (1_918_976, 1_918_976),
    ("one_by_one_naive", 32): (42_360_832, 42_360_832),
    ("one_filter", 1): (65_536, 65_536),
    ("one_filter", 32): (18_351_104, 18_351_104),
    ("reduce_192_to_32", 1): (1_329_152, 1_329_152),
    ("reduce_192_to_32", 32): (41_771_008, 41_771_008),
    ("resnet18", 1): (9_938_944, 9_938_944),
    ("resnet18", 32): (224_788_480, 224_788_480),
    ("resnet50", 1): (11_763_840, 11_763_840),
    ("resnet50", 32): (333_971_456, 333_971_456),
    ("vgg16", 1): (38_682_624, 38_682_624),
    ("vgg16", 32): (1_233_272_832, 1_233_272_832),
}


@pytest.mark.parametrize("name,batch", CASES)
def test_unmarked_peak_equals_pytorch_schedule(name: str, batch: int) -> None:
    plain, indices, marked, _ = INFERENCE[name, batch]
    network = out_of_place(name) if name in TORCHVISION_ACTIVATIONS else example(name)
    assert analyze(network, batch=batch).totals.peak_activation_bytes == plain
    assert schedule_peak(network, batch) == plain
    assert schedule_peak(network, batch, pool_indices=True) == indices
    if name not in TORCHVISION_ACTIVATIONS:
        assert marked == plain  # nothing to mark


@pytest.mark.parametrize("name,batch", CASES)
def test_example_peak_equals_pytorch_schedule(name: str, batch: int) -> None:
    # With torchvision's in-place ReLUs and adds, convcost's peak is the schedule PyTorch runs. In
    # the ResNets the in-place add does not move the peak (it is at the stem's batch norm); in
    # GoogLeNet the max pool's indices would (CPU only; not modelled).
    network = example(name)
    _, _, plain, indices = INFERENCE[name, batch]
    assert analyze(network, batch=batch).totals.peak_activation_bytes == plain
    assert schedule_peak(network, batch) == plain
    assert schedule_peak(network, batch, pool_indices=True) == indices


@pytest.mark.parametrize("name,batch", CASES)
def test_allocator_peak_is_at_least_the_schedule(name: str, batch: int) -> None:
    for allocator, schedule in zip(ALLOCATOR[name, batch], INFERENCE[name, batch][1::2]):
        assert allocator >= schedule


def test_allocator_ratios_are_the_documented_ones() -> None:
    # The doc's table: the example as it is (torchvision's marks), then before the marks.
    text = (ROOT / "docs" / "conventions.md").read_text()
    for (name, batch), (before, marked) in ALLOCATOR.items():
        _, unmarked_schedule, _, schedule = INFERENCE[name, batch]
        assert f"| {name} | {batch} | {schedule:,} | {marked:,} | {marked / schedule:.2f} | {unmarked_schedule:,} | " \
               f"{before:,} | {before / unmarked_schedule:.2f} |" in text
