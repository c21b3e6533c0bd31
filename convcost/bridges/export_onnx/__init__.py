"""A built network -> an ONNX model (``convcost export SPEC --to onnx``), through ``onnx.helper``.

Every layer becomes the ONNX operators PyTorch's exporter writes for it (a ``linear`` over the channels is a
Transpose, MatMul, Add and Transpose back, ``silu`` is Sigmoid and Mul, ``relu6`` is Clip), named after the
layer, so ``convcost import`` reads the model back into the same layers, names and counts. Weights are
graph initializers (what the importer counts as parameters), zero or random; the fixed ones and zeros of a
norm without ``affine`` are Constant nodes, as PyTorch writes them. Each node's ``doc_string`` records the
layer's kind (``convcost: kind=depthwise``) and ``inplace``, which ONNX has no word for, so the import
keeps them too. Opset 21 (GroupNormalization with a scale per channel, Gelu); the batch axis is ``N``.

``EXPORTERS`` (in ``exporters``) is the one read-only table from layer type to exporter; a test checks every
layer type is in it. ``writer`` holds the graph being written; this module walks the network and makes the model.
"""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...errors import SpecError
from ...layers import ChannelSlice, Shape
from ...network import Network, Node
from .exporters import EXPORTERS, OPAQUE_DOMAIN
from .writer import Writer

__all__ = ["EXPORTERS", "OPAQUE_DOMAIN", "OPSET", "WEIGHTS", "export_onnx", "network_to_onnx"]

OPSET = 21
WEIGHTS = ("zeros", "random")


def _split(w: Writer, nodes: tuple[Node, ...], first: int) -> int:
    """The run of a split's parts starting at ``nodes[first]`` as one ONNX Split; returns the run's length."""
    head = nodes[first]
    run = [head]
    for node in nodes[first + 1:]:
        layer, last = node.layer, run[-1].layer
        assert isinstance(last, ChannelSlice)
        if not isinstance(layer, ChannelSlice) or node.inputs != head.inputs or layer.start != last.stop:
            break
        run.append(node)
    first_layer, last_layer = head.layer, run[-1].layer
    assert isinstance(first_layer, ChannelSlice) and isinstance(last_layer, ChannelSlice)
    if first_layer.start != 0 or last_layer.stop != head.input_shape[0]:
        raise SpecError("export to ONNX: a channel slice that is not part of a whole split", head.where, head.name)
    sizes = []
    for node in run:
        assert isinstance(node.layer, ChannelSlice)
        sizes.append(node.layer.stop - node.layer.start)
    prefix = head.name.rpartition(".")[0] or head.name
    node = w.onnx.helper.make_node("Split", [w.x(head), w.ints(f"{prefix}/sizes", sizes)],
                                   [part.name for part in run], name=prefix, axis=1)
    node.doc_string = "convcost: kind=split"
    w.nodes.append(node)
    return len(run)


def network_to_onnx(network: Network, weights: str = "zeros", seed: int = 0) -> Any:
    """The network as an ``onnx.ModelProto``; ``weights`` zeros (fast, compresses well) or random (normal,
    He-scaled: a model that runs and gives varied outputs). Raises :class:`SpecError` for a layer no ONNX
    operator expresses."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    w = Writer(network, weights, seed)
    helper, TensorProto = w.onnx.helper, w.onnx.TensorProto
    index = 0
    nodes = network.nodes
    while index < len(nodes):
        node = nodes[index]
        if isinstance(node.layer, ChannelSlice):
            index += _split(w, nodes, index)
            continue
        EXPORTERS[type(node.layer)](w, node)
        index += 1

    def value(name: str, shape: Shape) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape])

    graph = helper.make_graph(
        w.nodes, network.name,
        [value(tensor.name, tensor.shape) for tensor in network.inputs],
        [value(network.name_of(ref), network.shape_of(ref)) for ref in network.output_refs],
        initializer=w.initializers,
        value_info=[value(node.name, node.output_shape) for node in nodes
                    if node.index not in network.output_refs],
    )
    opsets = [helper.make_opsetid("", OPSET), *(helper.make_opsetid(domain, 1) for domain in sorted(w.domains))]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="convcost", producer_version=__version__,
                              doc_string=f"Exported by convcost from {network.source}, {weights} weights.")
    model.ir_version = helper.find_min_ir_version_for(opsets[:1])
    return model


def export_onnx(network: Network, weights: str = "zeros", seed: int = 0) -> bytes:
    """The network as serialized ONNX (the bytes of a .onnx file)."""
    return bytes(network_to_onnx(network, weights, seed).SerializeToString())
