"""ONNX import, op by op: hand-built graphs (onnx.helper) for every op convcost maps, each with the layers
it must become and its counts written out here from the closed forms of docs/conventions.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convcost.bridges.onnx_import import OPS, import_onnx  # noqa: E402
from convcost.costs import analyze  # noqa: E402
from convcost.errors import SpecError  # noqa: E402

N = helper.make_node


def model(nodes, inputs, outputs, weights=(), opset=21, constants=()):
    """A model: ``inputs`` {name: shape with batch}; ``weights`` {name: shape} become initializers
    (parameters), ``constants`` {name: values} Constant nodes."""
    nodes = [N("Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(value), name))
             for name, value in dict(constants).items()] + list(nodes)
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        initializer=[numpy_helper.from_array(np.zeros(shape, np.float32), name)
                     for name, shape in dict(weights).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


X = {"x": [1, 8, 10, 10]}  # 800 elements per sample
F = {"x": [1, 32]}


def f32(*values):
    return np.asarray(values, np.float32)


def i64(*values):
    return np.asarray(values, np.int64)


# name: (model, kinds in order, macs, params, output shapes, extra checks {total field: value})
CASES = {
    "conv": (model([N("Conv", ["x", "w", "b"], ["y"], name="c", pads=[1, 1, 1, 1], strides=[2, 2])], X, ["y"],
                   {"w": (16, 8, 3, 3), "b": (16,)}),
             ["conv2d"], 16 * 5 * 5 * 8 * 9, 16 * 8 * 9 + 16, [(16, 5, 5)], {}),
    "conv_depthwise": (model([N("Conv", ["x", "w"], ["y"], group=8, pads=[1, 1, 1, 1])], X, ["y"],
                             {"w": (8, 1, 3, 3)}),
                       ["depthwise"], 8 * 100 * 9, 72, [(8, 10, 10)], {}),
    "conv_same_upper": (model([N("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER")], X, ["y"], {"w": (4, 8, 4, 4)}),
                        ["conv2d"], 4 * 100 * 8 * 16, 4 * 8 * 16, [(4, 10, 10)], {}),
    "conv_transpose": (model([N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])], X, ["y"], {"w": (8, 4, 2, 2)}),
                       ["conv_transpose2d"], 800 * 4 * 4, 8 * 4 * 4, [(4, 20, 20)], {}),
    "gemm": (model([N("Gemm", ["x", "w", "b"], ["y"], transB=1)], F, ["y"], {"w": (10, 32), "b": (10,)}),
             ["linear"], 320, 330, [(10,)], {}),
    "matmul_add": (model([N("MatMul", ["x", "w"], ["m"]), N("Add", ["m", "b"], ["y"])], {"x": [1, 5, 32]}, ["y"],
                         {"w": (32, 10), "b": (10,)}),
                   ["linear"], 5 * 32 * 10, 330, [(5, 10)], {}),
    "batch_norm": (model([N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], X, ["y"],
                         {"s": (8,), "b": (8,), "m": (8,), "v": (8,)}),
                   ["batch_norm"], 0, 16, [(8, 10, 10)], {"buffers": 16, "flops": 2 * 800}),
    "batch_norm_fixed": (model([N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], X, ["y"], {},
                               constants={"s": f32(*[1] * 8), "b": f32(*[0] * 8), "m": f32(*[0] * 8),
                                          "v": f32(*[1] * 8)}),
                         ["batch_norm"], 0, 0, [(8, 10, 10)], {"buffers": 0}),
    "instance_norm": (model([N("InstanceNormalization", ["x", "s", "b"], ["y"])], X, ["y"], {"s": (8,), "b": (8,)}),
                      ["instance_norm"], 0, 16, [(8, 10, 10)], {"flops": (6 + 2) * 800 + 3 * 8}),
    "layer_norm_last": (model([N("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1)], {"x": [1, 5, 32]}, ["y"],
                              {"s": (32,), "b": (32,)}),
                        ["layer_norm"], 0, 64, [(5, 32)], {"flops": 8 * 160 + 3 * 5}),
    "layer_norm_channels_last": (
        model([N("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
               N("LayerNormalization", ["t", "s", "b"], ["n"], axis=-1),
               N("Transpose", ["n"], ["y"], perm=[0, 3, 1, 2])], X, ["y"], {"s": (8,), "b": (8,)}),
        ["layer_norm"], 0, 16, [(8, 10, 10)], {"flops": 8 * 800 + 3 * 100}),
    "linear_channels_last": (
        model([N("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]), N("MatMul", ["t", "w"], ["m"]),
               N("Add", ["m", "b"], ["a"]), N("Transpose", ["a"], ["y"], perm=[0, 3, 1, 2])], X, ["y"],
              {"w": (8, 32), "b": (32,)}),
        ["linear"], 100 * 8 * 32, 8 * 32 + 32, [(32, 10, 10)], {}),
    "group_norm": (model([N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)], X, ["y"],
                         {"s": (8,), "b": (8,)}),
                   ["group_norm"], 0, 16, [(8, 10, 10)], {"flops": 8 * 800 + 3 * 2}),
    "activations": (model([N("Relu", ["x"], ["a"]), N("Sigmoid", ["a"], ["b"]), N("Tanh", ["b"], ["c"]),
                           N("HardSigmoid", ["c"], ["d"]), N("HardSwish", ["d"], ["e"]), N("Mish", ["e"], ["f"]),
                           N("Elu", ["f"], ["g"]), N("Softplus", ["g"], ["h"]), N("LeakyRelu", ["h"], ["i"]),
                           N("Gelu", ["i"], ["y"])], X, ["y"]),
                    ["relu", "sigmoid", "tanh", "hardsigmoid", "hardswish", "mish", "elu", "softplus", "leaky_relu",
                     "gelu"], 0, 0, [(8, 10, 10)], {"flops": 800 * (1 + 3 + 1 + 4 + 5 + 5 + 4 + 3 + 2 + 5)}),
    "clip_relu6": (model([N("Clip", ["x", "lo", "hi"], ["y"])], X, ["y"], constants={"lo": f32(0)[0],
                                                                                     "hi": f32(6)[0]}),
                   ["relu6"], 0, 0, [(8, 10, 10)], {"flops": 2 * 800}),
    "clip_relu": (model([N("Clip", ["x", "lo"], ["y"])], X, ["y"], constants={"lo": f32(0)[0]}),
                  ["relu"], 0, 0, [(8, 10, 10)], {"flops": 800}),
    "prelu": (model([N("PRelu", ["x", "slope"], ["y"])], X, ["y"], {"slope": (8, 1, 1)}),
              ["prelu"], 0, 8, [(8, 10, 10)], {"flops": 2 * 800}),
    "layer_scale": (model([N("Mul", ["x", "g"], ["y"])], X, ["y"], {"g": (8, 1, 1)}),
                    ["layer_scale"], 0, 8, [(8, 10, 10)], {"flops": 800}),
    "mul_broadcast": (model([N("GlobalAveragePool", ["x"], ["p"]), N("Sigmoid", ["p"], ["s"]),
                             N("Mul", ["x", "s"], ["y"])], X, ["y"]),
                      ["global_avg_pool", "sigmoid", "mul"], 0, 0, [(8, 10, 10)], {"flops": 800 + 3 * 8 + 800}),
    "add_sub_max_sum": (model([N("Relu", ["x"], ["r"]), N("Add", ["x", "r"], ["a"]), N("Sub", ["a", "r"], ["s"]),
                               N("Max", ["s", "x"], ["m"]), N("Sum", ["m", "x", "r"], ["y"])], X, ["y"]),
                        ["relu", "add", "sub", "max", "add"], 0, 0, [(8, 10, 10)],
                        {"flops": 800 + 800 + 800 + 800 + 2 * 800}),
    "silu": (model([N("Sigmoid", ["x"], ["s"]), N("Mul", ["x", "s"], ["y"], name="silu")], X, ["y"]),
             ["silu"], 0, 0, [(8, 10, 10)], {"flops": 4 * 800}),
    "hardswish_pattern": (model([N("HardSigmoid", ["x"], ["s"], alpha=1 / 6, beta=0.5), N("Mul", ["x", "s"], ["y"])],
                                X, ["y"]),
                          ["hardswish"], 0, 0, [(8, 10, 10)], {"flops": 5 * 800}),
    "gelu_erf": (model([N("Div", ["x", "sqrt2"], ["d"]), N("Erf", ["d"], ["e"]), N("Add", ["e", "one"], ["a"]),
                        N("Mul", ["x", "a"], ["m"]), N("Mul", ["m", "half"], ["y"])], X, ["y"],
                       constants={"sqrt2": f32(math.sqrt(2))[0], "one": f32(1)[0], "half": f32(0.5)[0]}),
                 ["gelu"], 0, 0, [(8, 10, 10)], {"flops": 5 * 800}),
    "concat": (model([N("Relu", ["x"], ["r"]), N("Concat", ["x", "r"], ["y"], axis=1)], X, ["y"]),
               ["relu", "concat"], 0, 0, [(16, 10, 10)], {}),
    "split": (model([N("Split", ["x", "sizes"], ["a", "b"], axis=1), N("Relu", ["a"], ["ra"]),
                     N("Concat", ["ra", "b"], ["y"], axis=1)], X, ["y"], constants={"sizes": i64(3, 5)}),
              ["split", "split", "relu", "concat"], 0, 0, [(8, 10, 10)], {}),
    "max_pool": (model([N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])], X, ["y"]),
                 ["max_pool2d"], 0, 0, [(8, 5, 5)], {"flops": (9 - 1) * 200}),
    "average_pool_ceil": (model([N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)], X,
                                ["y"]),
                          ["avg_pool2d"], 0, 0, [(8, 5, 5)], {"flops": 9 * 200}),
    "global_pools": (model([N("GlobalAveragePool", ["x"], ["a"]), N("GlobalMaxPool", ["x"], ["m"]),
                            N("Add", ["a", "m"], ["y"])], X, ["y"]),
                     ["global_avg_pool", "global_max_pool", "add"], 0, 0, [(8, 1, 1)],
                     {"flops": 800 + (800 - 8) + 8}),
    "reduce_mean": (model([N("ReduceMean", ["x", "axes"], ["y"], keepdims=0)], X, ["y"], constants={"axes": i64(2, 3)}),
                    ["global_avg_pool", "flatten"], 0, 0, [(8,)], {"flops": 800}),
    "reduce_max": (model([N("ReduceMax", ["x", "axes"], ["y"])], X, ["y"], constants={"axes": i64(2, 3)}),
                   ["global_max_pool"], 0, 0, [(8, 1, 1)], {"flops": 800 - 8}),
    "flatten_reshape_squeeze": (
        model([N("Flatten", ["x"], ["f"]), N("Reshape", ["x", "shape"], ["r"]), N("GlobalAveragePool", ["x"], ["p"]),
               N("Squeeze", ["p", "axes"], ["s"])], X, ["f", "r", "s"], constants={"shape": i64(1, -1),
                                                                                   "axes": i64(2, 3)}),
        ["flatten", "flatten", "global_avg_pool", "flatten"], 0, 0, [(800,), (800,), (8,)], {}),
    "channel_shuffle": (model([N("Reshape", ["x", "grouped"], ["g"]),
                               N("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
                               N("Reshape", ["t", "back"], ["y"])], X, ["y"],
                              constants={"grouped": i64(0, 2, 4, 10, 10), "back": i64(0, 8, 10, 10)}),
                        ["channel_shuffle"], 0, 0, [(8, 10, 10)], {}),
    "resize_nearest_and_linear": (
        model([N("Resize", ["x", "", "scales"], ["n"], mode="nearest"),
               N("Resize", ["x", "", "scales"], ["y"], mode="linear")], X, ["n", "y"],
              constants={"scales": f32(1, 1, 2, 2)}),
        ["upsample", "upsample"], 0, 0, [(8, 20, 20), (8, 20, 20)], {"flops": 7 * 3200}),
    "upsample_opset9": (model([N("Upsample", ["x", "scales"], ["y"])], X, ["y"], opset=9,
                              constants={"scales": f32(1, 1, 2, 2)}),
                        ["upsample"], 0, 0, [(8, 20, 20)], {}),
    "dropout_identity_softmax": (
        model([N("Dropout", ["x", "ratio"], ["d"]), N("Flatten", ["d"], ["f"]), N("Identity", ["f"], ["i"]),
               N("Softmax", ["i"], ["y"], axis=1)], X, ["y"], constants={"ratio": f32(0.3)[0]}),
        ["dropout", "flatten", "identity", "softmax"], 0, 0, [(800,)], {"flops": 3 * 800 - 1}),
    "depth_space": (model([N("DepthToSpace", ["x"], ["d"], blocksize=2), N("SpaceToDepth", ["x"], ["s"], blocksize=2)],
                          X, ["d", "s"]),
                    ["pixel_shuffle", "pixel_unshuffle"], 0, 0, [(2, 20, 20), (32, 5, 5)], {}),
    "slice_crop": (model([N("Slice", ["x", "starts", "ends", "axes"], ["y"])], X, ["y"],
                         constants={"starts": i64(2, 2), "ends": i64(8, 8), "axes": i64(2, 3)}),
                   ["crop"], 0, 0, [(8, 6, 6)], {}),
    "unet_skip": (model([N("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                         N("Conv", ["p", "w"], ["c"], pads=[0, 0, 0, 0]),
                         N("Slice", ["x", "starts", "ends", "axes"], ["s"]),
                         N("Resize", ["c", "", "scales"], ["u"], mode="nearest"),
                         N("Concat", ["u", "s"], ["y"], axis=1)], X, ["y"], {"w": (8, 8, 3, 3)},
                        constants={"starts": i64(2, 2), "ends": i64(8, 8), "axes": i64(2, 3),
                                   "scales": f32(1, 1, 2, 2)}),
                  ["max_pool2d", "conv2d", "upsample", "concat"], 8 * 9 * 8 * 9, 8 * 8 * 9, [(16, 6, 6)], {}),
}


@pytest.mark.parametrize("case", CASES)
def test_hand_built_op(case):
    built, kinds, macs, params, outputs, extra = CASES[case]
    imported = import_onnx(built, source=f"{case}.onnx")
    report = analyze(imported.network)
    assert [row.kind for row in report.layers] == kinds, imported.text
    assert report.totals.macs == macs
    assert report.totals.params == params
    assert [shape for _, shape in report.outputs] == outputs
    for key, value in extra.items():
        assert getattr(report.totals, key) == value, key


def test_every_mapped_op_has_a_hand_built_case():
    covered = {node.op_type for built, *_ in CASES.values() for node in built.graph.node}
    assert set(OPS) - covered == set()


def test_weights_become_options_not_numbers():
    built = CASES["conv"][0]
    text = import_onnx(built, source="conv.onnx").text
    assert "- conv: {name: c, out: 16, kernel: 3, stride: 2, padding: 1}" in text
    assert "layer_scale" in import_onnx(CASES["layer_scale"][0]).text


def test_names_of_pytorch_scopes_nest_into_sequences():
    nodes = [N("Conv", ["x", "w1"], ["a"], name="/layer1/layer1.0/conv1/Conv"),
             N("Relu", ["a"], ["b"], name="/layer1/layer1.0/relu/Relu"),
             N("Conv", ["b", "w2"], ["c"], name="/layer1/layer1.0/conv2/Conv"),
             N("Add", ["c", "x"], ["d"], name="/layer1/layer1.0/Add"),
             N("Relu", ["d"], ["y"], name="/layer1/layer1.0/relu_1/Relu")]
    built = model(nodes, X, ["y"], {"w1": (8, 8, 3, 3), "w2": (8, 8, 3, 3)})
    for node in built.graph.node:
        node.attribute.extend([helper.make_attribute("pads", [1, 1, 1, 1])] if node.op_type == "Conv" else [])
    imported = import_onnx(built, source="r.onnx")
    assert [node.name for node in imported.network.nodes] == [
        "layer1.0.conv1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.Add", "layer1.0.relu_1"]
    assert "name: \"0\"" in imported.text  # a digit name is quoted, so YAML keeps it a string


def test_unknown_ops_are_listed_with_count_and_first_node():
    nodes = [N("Relu", ["x"], ["r"]), N("Foo", ["r"], ["f1"], name="foo_a", domain="custom"),
             N("Foo", ["f1"], ["f2"], name="foo_b", domain="custom"), N("Erf", ["f2"], ["y"], name="erf")]
    built = model(nodes, X, ["y"])
    built.opset_import.append(helper.make_opsetid("custom", 1))
    for name in ("f1", "f2"):
        built.graph.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 8, 10, 10]))
    with pytest.raises(SpecError) as caught:
        import_onnx(built, source="m.onnx")
    message = caught.value.format()
    assert message.startswith("m.onnx: 2 ONNX ops convcost cannot map: Foo x2 (first: 'foo_a'), Erf x1 (first: 'erf')")
    imported = import_onnx(built, source="m.onnx", allow_unknown=True)
    assert imported.opaque == (("Foo", 2, "foo_a"), ("Erf", 1, "erf"))
    report = analyze(imported.network)
    assert [row.kind for row in report.layers] == ["relu", "opaque", "opaque", "opaque"]
    assert report.totals.flops == 800  # the relu; opaque layers are zero by declaration
    assert report.outputs == (("erf", (8, 10, 10)),)


def test_constant_multiplier_is_not_a_parameter():
    built = model([N("Mul", ["x", "g"], ["y"])], X, ["y"], constants={"g": np.ones((8, 1, 1), np.float32)})
    with pytest.raises(SpecError, match=r"Mul \(with a constant\) x1"):
        import_onnx(built)


def test_symbolic_spatial_size_is_refused():
    built = model([N("Relu", ["x"], ["y"])], {"x": ["N", 8, "H", 10]}, ["y"])
    with pytest.raises(SpecError, match="symbolic size"):
        import_onnx(built, source="s.onnx")
