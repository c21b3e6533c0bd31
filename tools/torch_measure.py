"""Measure with PyTorch what a convcost spec really costs in memory (optional; torch is imported only here).

This script is a measuring instrument, not part of convcost: nothing in ``convcost/`` or in
the test suite imports torch. It loads a spec with :func:`convcost.load`, builds an equivalent
PyTorch model by interpreting the network's nodes (``tools/torch_model.py``: float32, real
parameter shapes, each layer written as torchvision writes it; the model's
``sum(p.numel())`` is checked against convcost's ``params``), and prints one JSON document
with:

1. ``training``: the tensors autograd saves for backward in ``model.train()``, recorded with
   ``torch.autograd.graph.saved_tensors_hooks``. Each saved tensor is attributed to the node
   whose forward saved it; a storage saved twice counts once, to the first saver; parameters
   and buffers (batch norm running statistics) are excluded and counted apart; the network
   inputs, saved by their first readers, are counted like any other saved tensor. Two paths:
   ``cpu`` (PyTorch as it runs on CPU: ``F.dropout`` keeps a mask in the activation dtype) and
   ``cuda_kernels`` (dropout through ``torch.native_dropout``, the kernel ``F.dropout``
   dispatches to on CUDA: a bool mask).
2. ``optimizers``: parameter, gradient and optimizer-state bytes after one real
   ``optimizer.step()`` for SGD, SGD with momentum 0.9, Adam and AdamW (the scalar ``step``
   tensors of Adam/AdamW are reported apart from the state tensors).
3. ``mixed_precision``: the same saved-tensor record under ``torch.autocast("cpu", dtype)``
   with float32 master weights: bytes by dtype, and the half-precision weight copies autocast
   keeps because convolution, linear and PReLU save them. ``cuda_kernels`` there also applies
   CUDA autocast's float32 policy to softmax, upsampling, layer norm, group norm and softplus
   (``AT_FORALL_FP32`` and ``AT_FORALL_FP32_SET_OPT_DTYPE`` in ATen/autocast_mode.h), which
   CPU autocast does not have. (CPU autocast also runs 3-D pooling in float32, having no
   half-precision CPU kernels for it; and a non-affine instance norm keeps half-precision
   statistics on CPU, float32 on CUDA. Neither can be emulated on CPU; both are left as
   measured.) One backward checks that gradients stay float32.
4. ``inference``: the forward in ``model.eval()`` under ``torch.no_grad()`` inside a
   ``TorchDispatchMode`` that records every aten op with its input and output storages; the
   peak of the last-use schedule (the network inputs alive from the start, each storage freed
   after the last op that reads it, the network outputs kept; in-place ops and views allocate
   nothing; while an op runs its inputs and outputs are alive). Also the same peak without the
   int64 indices that CPU max pooling returns at inference (convcost's schedule has no
   indices), and without those and the scratch tensors normalisation ops return at inference
   (``without_scratch``: the mean and rstd of ``native_layer_norm``/``native_group_norm``, and
   for ``instance_norm`` the statistics of the batch norm underneath and its repeated weight
   and bias), which convcost's schedule does not have either.
5. ``allocator``: the real peak of PyTorch's CPU allocator over the same forward, from the
   allocation and free events of ``torch.profiler.profile(profile_memory=True)`` (a running sum
   of event sizes; the inputs are made inside the profiled region), as a ratio to the schedule's
   peak. The method is calibrated first on known allocations (``allocator_calibration``).

Variants of the network (``--variants``): ``as_written`` (in place exactly where the spec says
``inplace: true``), ``out_of_place`` (every ``inplace`` mark ignored: how the examples were
written before they carried torchvision's marks) and ``torchvision`` (the marks ignored, then
in place exactly where torchvision's code computes in place, from ``TORCHVISION_INPLACE``
below, read from torchvision's source: a spec marked as torchvision is measured equal to it).

``--device meta`` runs the saved-tensor record (float32) and the op schedule on PyTorch's meta
device: the same ops, the same autograd graph and the same storage sizes, with no memory, for
networks whose batch-32 record does not fit in RAM (U-Net). Storages are identified by their
``StorageImpl`` (``untyped_storage()._cdata``), which works on both devices; every tensor whose
storage serves as a key (inputs, saved tensors, op outputs, weight copies) is kept alive for the
run, so that no later storage can take a freed one's identity. The meta record was
checked equal to the CPU record, node by node, for every example at batch 1 (``--device meta``
against ``--device cpu``; ``per_node`` identical). Autocast, the optimizers and the allocator
need real tensors and are skipped on meta.

Environment (a private venv, never a dependency of convcost)::

    python3 -m venv /work/venv-torch-train
    /work/venv-torch-train/bin/pip install --find-links /opt/wheels torch==2.13.0 numpy pyyaml typer rich
    /work/venv-torch-train/bin/pip install -e .

Commands run for the figures in tests/test_training_memory.py, tests/test_training_graph.py and
docs/conventions.md ("Training memory") (from the worktree root, one JSON document per run; ``T`` stands
for ``/work/venv-torch-train/bin/python tools/torch_measure.py``)::

    mkdir -p measurements
    # the first examples: their batch-32 figures are the first round's; batch 1 re-run with this
    # tool reproduces every first-round figure (out_of_place = the examples as they were then)
    for name in one_filter reduce_192_to_32 one_by_one one_by_one_naive nin_cifar10 mobilenet_v2 \\
                resnet18 googlenet resnet50 vgg16; do
      T examples/$name.yaml --batch 1 --variants as_written,out_of_place > measurements/$name-b1.json
    done
    # the graph examples
    for name in efficientnet_b0 convnext_tiny fpn_resnet50 two_stream_fusion unet; do
      T examples/$name.yaml --batch 1 --variants as_written,torchvision,out_of_place > measurements/$name-b1.json
    done
    for name in efficientnet_b0 convnext_tiny fpn_resnet50 two_stream_fusion; do
      T examples/$name.yaml --batch 32 --variants as_written,torchvision > measurements/$name-b32.json
      T examples/$name.yaml --batch 32 --variants out_of_place --skip training,mixed,optimizers \\
          > measurements/$name-b32-oop.json
    done
    # U-Net at batch 32: float32 record and schedule on the meta device, mixed precision on CPU;
    # its allocator peak at batch 32 could not be measured (the CPU forward outgrew 23 GB of RAM)
    T examples/unet.yaml --batch 32 --device meta --variants as_written,torchvision,out_of_place \\
        > measurements/unet-b32-meta.json
    T examples/unet.yaml --batch 32 --variants as_written --skip training,optimizers,inference,allocator \\
        > measurements/unet-b32-mixed.json
    for batch in 8 16; do
      T examples/unet.yaml --batch $batch --device meta --variants as_written,torchvision,out_of_place \\
          --skip training > measurements/unet-b$batch-meta.json
    done
    T examples/unet.yaml --batch 8 --variants as_written --skip training,mixed,optimizers \\
        > measurements/unet-b8-alloc.json
    T examples/unet.yaml --batch 16 --variants as_written --skip training,mixed,optimizers,inference \\
        > measurements/unet-b16-alloc.json
    # ConvNeXt's block as the spec builds it and as torchvision's CNBlock writes it
    T cnblock --batch 2 > measurements/cnblock-b2.json
    # zoo specs (the first three as in the first round)
    for zoo in 2d 1d 3d graph graph_nd layout; do
      for batch in 2 5; do
        T tests/data/training_zoo_$zoo.yaml --batch $batch --variants as_written \\
            > measurements/training_zoo_$zoo-b$batch.json
      done
    done
    T tests/data/training_zoo_2d.yaml --batch 2 --variants as_written --half float16 \\
        --skip optimizers,inference,allocator > measurements/training_zoo_2d-b2-fp16.json
    T examples/resnet18.yaml --batch 1 --half float16 --skip optimizers,inference,allocator \\
        > measurements/resnet18-b1-fp16.json
    # meta against cpu, every example
    T examples/$name.yaml --batch 1 --device meta --variants as_written > measurements/$name-b1-meta.json

``measurements/`` is scratch output, not committed. All runs used 2 threads
(``torch.set_num_threads(2)``) on a 2-core machine with 23 GB of RAM.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

import convcost
from convcost.costs import analyze, peak_activation_elements
from convcost.network import Network
from torch_model import AS_WRITTEN, OUT_OF_PLACE, InPlace, SpecModel, make_model

#: Where torchvision computes in place, per example (by the spec's ``name``), read from
#: torchvision's source (pytorch/vision, torchvision/models/*.py and torchvision/ops/*.py).
#: ``activations``: the activation functions made in place; ``joins``: a regex of the names of
#: the join nodes made in place; ``dropout``: dropout in place.
TORCHVISION_INPLACE: dict[str, InPlace] = {
    # resnet.py: every ReLU is nn.ReLU(inplace=True) (stem; after bn1 (and bn2 in Bottleneck);
    # after the add), and BasicBlock/Bottleneck.forward does `out += identity` (in place on
    # the last batch norm's output).
    "resnet18": InPlace(strip=True, activations=frozenset({"relu"}), joins=r"\.add$"),
    "resnet50": InPlace(strip=True, activations=frozenset({"relu"}), joins=r"\.add$"),
    # vgg.py: make_layers appends nn.ReLU(inplace=True) after every conv; the classifier's
    # ReLUs are nn.ReLU(True); dropout is not in place.
    "vgg16": InPlace(strip=True, activations=frozenset({"relu"})),
    # mobilenetv2.py: Conv2dNormActivation(..., activation_layer=nn.ReLU6), whose `inplace`
    # defaults to True (ops/misc.py ConvNormActivation); InvertedResidual.forward returns
    # `x + self.conv(x)`: the add is NOT in place.
    "mobilenet_v2": InPlace(strip=True, activations=frozenset({"relu6"})),
    # googlenet.py: BasicConv2d.forward returns F.relu(x, inplace=True) after every conv
    # (the example is the paper's layout without batch norm; its ReLUs follow the same rule).
    "googlenet": InPlace(strip=True, activations=frozenset({"relu"})),
    # Not a torchvision model: the Caffe release computes every ReLU in place (top == bottom),
    # as torchvision writes conv + ReLU; no adds.
    "nin_cifar10": InPlace(strip=True, activations=frozenset({"relu"})),
    # efficientnet.py: every Conv2dNormActivation has activation_layer=nn.SiLU with
    # ConvNormActivation's `inplace=True` default (stem, expand, depthwise, head); the
    # squeeze-excite's activation is partial(nn.SiLU, inplace=True); its gate nn.Sigmoid() and
    # `scale * input` (ops/misc.py SqueezeExcitation) are not in place; MBConv.forward does
    # `result += input`; the classifier's nn.Dropout(p, inplace=True) is in place.
    "efficientnet_b0": InPlace(strip=True, activations=frozenset({"silu"}), joins=r"\.add_\d+$", dropout=True),
    # convnext.py: nn.GELU() (not in place), `self.layer_scale * self.block(input)` (a new tensor),
    # then CNBlock.forward does `result += input`.
    "convnext_tiny": InPlace(strip=True, joins=r"\.add_\d+$"),
    # detection/backbone_utils.py resnet_fpn_backbone: the ResNet body (resnet.py: ReLUs and
    # `out += identity` in place); ops/feature_pyramid_network.py: `last_inner = inner_lateral +
    # inner_top_down` is NOT in place; LastLevelMaxPool: F.max_pool2d(x[-1], 1, 2, 0).
    "fpn_resnet50": InPlace(strip=True, activations=frozenset({"relu"}), joins=r"\.residual_\d+\.add$"),
    # Not torchvision models. U-Net: the authors' Caffe release computes ReLU in place (Caffe's
    # convention), and the common PyTorch port (milesial/Pytorch-UNet, unet/unet_parts.py
    # DoubleConv) writes nn.ReLU(inplace=True): every ReLU in place. The two-stream head follows
    # torchvision's Conv2dNormActivation convention (conv, batch norm, ReLU in place).
    "unet": InPlace(strip=True, activations=frozenset({"relu"})),
    "two_stream_fusion": InPlace(strip=True, activations=frozenset({"relu"})),
}

HALF_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def variant_marks(network: Network, variant: str) -> InPlace:
    if variant == "as_written":
        return AS_WRITTEN
    if variant == "out_of_place":
        return OUT_OF_PLACE
    if variant == "torchvision":
        return TORCHVISION_INPLACE.get(network.name, OUT_OF_PLACE)
    raise SystemExit(f"unknown variant {variant!r}: as_written, out_of_place or torchvision")


def storage_key(t: torch.Tensor) -> int:
    """The storage's identity (its StorageImpl), on CPU and on the meta device alike."""
    return t.untyped_storage()._cdata


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def make_inputs(network: Network, batch: int, device: str) -> list[torch.Tensor]:
    return [torch.randn(batch, *tensor.shape, device=device) for tensor in network.inputs]


# --------------------------------------------------------------------------- 1. saved tensors


class CastTracker(TorchDispatchMode):
    """Notes the storages made by casting a parameter (autocast's weight copies)."""

    def __init__(self, param_keys: set[int]) -> None:
        super().__init__()
        self.param_keys = param_keys
        self.copies: set[int] = set()
        self.keep: list[torch.Tensor] = []  # alive, so that no later storage takes a copy's identity

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten._to_copy.default and isinstance(args[0], torch.Tensor) \
                and storage_key(args[0]) in self.param_keys and isinstance(out, torch.Tensor):
            self.copies.add(storage_key(out))
            self.keep.append(out)
        return out


def measure_saved(model: SpecModel, network: Network, batch: int, half: torch.dtype | None = None,
                  backward: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Saved-for-backward tensors of one training forward, per node, deduplicated by storage."""
    model.train()
    model.half = half
    params = {storage_key(p) for p in model.parameters()}
    buffers = {storage_key(b) for b in model.buffers()}
    holder = make_inputs(network, batch, device)
    keep: list[torch.Tensor] = list(holder)  # every tensor whose storage is a key stays alive: keys stay unique
    input_keys = {storage_key(x): k for k, x in enumerate(holder)}
    current = [-1]
    records: list[tuple[int, int, int, str, tuple[int, ...]]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        keep.append(t)
        records.append((current[0], storage_key(t), t.untyped_storage().nbytes(), dtype_name(t.dtype),
                        tuple(t.shape)))
        return t

    model.on_node = lambda index: current.__setitem__(0, index)
    tracker = CastTracker(params)
    with saved_tensors_hooks(pack, lambda t: t):
        if half is not None:
            with torch.autocast("cpu", dtype=half), tracker:
                outs = model(holder)
        else:
            outs = model(holder)
    model.on_node = None
    seen: dict[int, int] = {}
    per_node: dict[int, dict[str, Any]] = {}
    by_dtype: Counter[str] = Counter()
    weight_copies: Counter[str] = Counter()
    excluded = {"parameter": 0, "buffer": 0}
    zero = 0
    inputs_saved_by: dict[str, str] = {}
    total = copies_total = 0
    for node_index, key, nbytes, dtype, shape in records:
        if key in params:
            excluded["parameter"] += 1
            continue
        if key in buffers:
            excluded["buffer"] += 1
            continue
        if nbytes == 0:
            zero += 1
            continue
        if key in seen:
            continue
        seen[key] = node_index
        if key in tracker.copies:
            weight_copies[dtype] += nbytes
            copies_total += nbytes
            continue
        if key in input_keys:
            inputs_saved_by[network.inputs[input_keys[key]].name] = network.nodes[node_index].name
        entry = per_node.setdefault(node_index, {"bytes": 0, "tensors": []})
        entry["bytes"] += nbytes
        entry["tensors"].append(f"{dtype} {'x'.join(map(str, shape)) or 'scalar'} {nbytes}")
        by_dtype[dtype] += nbytes
        total += nbytes
    result: dict[str, Any] = {
        "saved_activation_bytes": total,
        "by_dtype": dict(sorted(by_dtype.items())),
        "inputs_saved_by": inputs_saved_by,
        "excluded_saves": excluded,
        "zero_byte_saves": zero,
        "per_node": {network.nodes[i].name if i >= 0 else "<outside the nodes>": v
                     for i, v in sorted(per_node.items())},
    }
    if half is not None:
        result["weight_copy_bytes"] = copies_total
        result["weight_copies_by_dtype"] = dict(weight_copies)
        result["output_dtypes"] = [dtype_name(out.dtype) for out in outs]
    if backward:
        sum(out.float().sum() for out in outs).backward()  # type: ignore[union-attr]
        grads = [p.grad for p in model.parameters()]
        result["gradient_bytes"] = sum(g.numel() * g.element_size() for g in grads if g is not None)
        result["gradient_dtypes"] = sorted({dtype_name(g.dtype) for g in grads if g is not None})
    model.half = None
    return result


# --------------------------------------------------------------------------- 2. optimizers


OPTIMIZERS: dict[str, Callable[[Any], torch.optim.Optimizer]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.01),
    "momentum": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3),
}


def measure_optimizers(model: SpecModel, network: Network, batch: int) -> dict[str, Any]:
    model.train()
    outs = model(make_inputs(network, batch, "cpu"))
    sum(out.float().sum() for out in outs).backward()  # type: ignore[union-attr]
    del outs
    params = list(model.parameters())
    result: dict[str, Any] = {}
    for name, make in OPTIMIZERS.items():
        optimizer = make(params)
        optimizer.step()
        state_bytes = state_tensors = step_tensors = step_bytes = 0
        step_devices: set[str] = set()
        for p in params:
            for key, value in optimizer.state[p].items():
                if not isinstance(value, torch.Tensor):
                    continue
                if key == "step":
                    step_tensors += 1
                    step_bytes += value.numel() * value.element_size()
                    step_devices.add(f"{value.device}/{dtype_name(value.dtype)}/dim{value.dim()}")
                else:
                    state_tensors += 1
                    state_bytes += value.untyped_storage().nbytes()
        result[name] = {
            "parameter_bytes": sum(p.numel() * p.element_size() for p in params),
            "gradient_bytes": sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None),
            "state_bytes": state_bytes,
            "state_tensors": state_tensors,
            "step_tensors": step_tensors,
            "step_bytes": step_bytes,
            "step_tensor_kind": sorted(step_devices),
        }
        del optimizer
    result["parameter_tensors"] = len(params)
    return result


# --------------------------------------------------------------------------- 4. inference schedule

Op = tuple[str, list[int], list[tuple[int, int, str]]]


class OpRecorder(TorchDispatchMode):
    """Records every aten op with its input and output storages (kept alive, so keys stay unique)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.keep: list[torch.Tensor] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        ins = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.keep.extend(outs)
        self.ops.append((str(func), [storage_key(t) for t in ins],
                         [(storage_key(t), t.untyped_storage().nbytes(), dtype_name(t.dtype)) for t in outs]))
        return out


def schedule_peak(ops: list[Op], inputs: dict[int, int], outputs: set[int],
                  skip: Callable[[str, int, str], bool] = lambda op, i, dtype: False) -> dict[str, Any]:
    """Peak bytes of the last-use schedule over recorded ops; ``inputs`` maps the network inputs'
    storages to their bytes (alive from the start), ``outputs`` are kept; ``skip`` drops some outputs."""
    size: dict[int, int] = dict(inputs)
    last: dict[int, int] = dict.fromkeys(inputs, -1)
    allocated_at: dict[int, int] = {}
    for step, (name, ins, outs) in enumerate(ops):
        for position, (key, nbytes, dtype) in enumerate(outs):
            if key not in size and nbytes and not skip(name, position, dtype):
                size[key] = nbytes
                allocated_at[key] = step
        for key in ins + [key for key, _, _ in outs]:
            if key in size:
                last[key] = step
    for key in outputs:
        last[key] = len(ops)
    freed_after: dict[int, int] = defaultdict(int)
    for key, step in last.items():
        freed_after[step] += size[key]
    born: dict[int, int] = defaultdict(int)
    for key, step in allocated_at.items():
        born[step] += size[key]
    alive = peak = sum(inputs.values())
    peak_step = -1
    alive -= freed_after[-1]  # inputs nobody reads
    for step in range(len(ops)):
        alive += born[step]
        if alive > peak:
            peak, peak_step = alive, step
        alive -= freed_after[step]
    return {"peak_bytes": peak, "peak_op": ops[peak_step][0] if peak_step >= 0 else "<inputs>",
            "peak_op_index": peak_step, "allocations": len(allocated_at)}


def measure_inference(model: SpecModel, network: Network, batch: int, device: str = "cpu") -> dict[str, Any]:
    model.eval()
    holder = make_inputs(network, batch, device)
    inputs = {storage_key(x): x.untyped_storage().nbytes() for x in holder}
    params = {storage_key(p) for p in model.parameters()} | {storage_key(b) for b in model.buffers()}
    recorder = OpRecorder()
    recorder.keep.extend(holder)  # the inputs stay alive too: no later storage takes their identity
    with torch.no_grad(), recorder:
        outs = model(holder)
    outputs = {storage_key(out) for out in outs}
    ops = [(name, [k for k in ins if k not in params], [o for o in outs_ if o[0] not in params])
           for name, ins, outs_ in recorder.ops]
    full = schedule_peak(ops, inputs, outputs)

    def indices(op: str, position: int, dtype: str) -> bool:
        return "max_pool" in op and position == 1 and dtype == "int64"
    without = schedule_peak(ops, inputs, outputs, skip=indices)

    def scratch(op: str, position: int, dtype: str) -> bool:
        # and the statistics normalisation ops return (mean and rstd of native_layer_norm and
        # native_group_norm, save_mean and save_invstd of the batch_norm under instance_norm) and
        # instance_norm's repeated weight and bias
        statistics = position > 0 and any(name in op for name in ("native_layer_norm", "native_group_norm",
                                                                  "native_batch_norm"))
        return indices(op, position, dtype) or statistics or op.startswith("aten.repeat")
    bare = schedule_peak(ops, inputs, outputs, skip=scratch)
    counts = Counter(name for name, _, _ in ops)
    return {
        "schedule_peak_bytes": full["peak_bytes"],
        "schedule_peak_op": full["peak_op"],
        "schedule_peak_without_pool_indices_bytes": without["peak_bytes"],
        "schedule_peak_without_pool_indices_op": without["peak_op"],
        "schedule_peak_without_scratch_bytes": bare["peak_bytes"],
        "schedule_peak_without_scratch_op": bare["peak_op"],
        "ops": dict(sorted(counts.items())),
        "output_bytes": sum(out.untyped_storage().nbytes() for out in outs),
    }


# --------------------------------------------------------------------------- 5. allocator peak


def allocator_peak(run: Callable[[], Any], start_bytes: int) -> int:
    """Peak of the running sum of CPU allocation events (bytes) while ``run()`` executes."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = run()
    del result
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and str(e.device_type()) == "DeviceType.CPU"]
    events.sort(key=lambda e: e.start_ns())
    alive = peak = start_bytes
    for event in events:
        alive += event.nbytes()
        peak = max(peak, alive)
    return peak


def calibrate_allocator() -> dict[str, Any]:
    """The method on known allocations: 1000 B, +2000 B, -1000 B, +4000 B -> peak 6000 B over a 0 B start."""
    def run() -> None:
        a = torch.empty(1000, dtype=torch.uint8)
        b = torch.empty(2000, dtype=torch.uint8)
        del a
        c = torch.empty(4000, dtype=torch.uint8)
        del b, c
    measured = allocator_peak(run, 0)
    return {"expected_peak_bytes": 6000, "measured_peak_bytes": measured}


def measure_allocator(model: SpecModel, network: Network, batch: int, schedule_bytes: int | None) -> dict[str, Any]:
    model.eval()
    with torch.no_grad():
        model(make_inputs(network, batch, "cpu"))  # warm-up: one-time allocations (weight reorders)

        def run() -> tuple[torch.Tensor, ...]:
            # The inputs are made inside the profiled region: a block allocated before profiling
            # starts has no free event (the profiler warns so), which would leave it counted.
            return model(make_inputs(network, batch, "cpu"))
        peak = allocator_peak(run, 0)
    return {"allocator_peak_bytes": peak,
            "ratio_to_schedule": peak / schedule_bytes if schedule_bytes else None}


# --------------------------------------------------------------------------- ConvNeXt's block, two ways

CNBLOCK_SPEC = """\
name: cnblock
input: {c}x{h}x{w}
layers:
  - depthwise: {{kernel: 7, padding: 3}}
  - layer_norm
  - linear: {{out: {c4}, axis: channels}}
  - gelu
  - linear: {{out: {c}, axis: channels}}
  - layer_scale
  - add: {{from: input, inplace: true}}
"""


class _Permute(torch.nn.Module):
    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class TorchvisionCNBlock(torch.nn.Module):
    """torchvision.models.convnext.CNBlock as written there (stochastic depth 0: the identity),
    with SpecModel's calling convention (a list holding the input; a tuple of outputs)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        nn = torch.nn
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True), _Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim),
            _Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)
        self.half: torch.dtype | None = None
        self.on_node: Callable[[int], None] | None = None

    def forward(self, holder: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        input = holder.pop()
        result = self.layer_scale * self.block(input)
        result += input
        return (result,)


def measure_cnblock(batch: int, half: torch.dtype, c: int = 96, h: int = 56, w: int = 56) -> dict[str, Any]:
    """One ConvNeXt block as convcost's spec builds it (LayerNorm2d form: permute, layer norm and
    permute back; each linear between its own permutes) and as torchvision's CNBlock writes it
    (one permute in, nn.LayerNorm, the linears, one permute out): saved tensors (float32 and CPU
    autocast) and the inference schedule."""
    network = convcost.loads(CNBLOCK_SPEC.format(c=c, c4=4 * c, h=h, w=w))
    result: dict[str, Any] = {"spec": CNBLOCK_SPEC.format(c=c, c4=4 * c, h=h, w=w)}
    for form in ("spec", "torchvision"):
        def fresh() -> Any:
            gc.collect()
            torch.manual_seed(0)
            return make_model(network) if form == "spec" else TorchvisionCNBlock(c)
        result[form] = {
            "params": sum(p.numel() for p in fresh().parameters()),
            "training": measure_saved(fresh(), network, batch)["saved_activation_bytes"],
            "mixed_cpu_autocast": measure_saved(fresh(), network, batch, half=half)["saved_activation_bytes"],
            "inference": {k: v for k, v in measure_inference(fresh(), network, batch).items() if k != "ops"},
        }
    return result


# --------------------------------------------------------------------------- main


def convcost_figures(network: Network, batch: int) -> dict[str, Any]:
    cost = analyze(network, batch=batch, dtype="float32")
    return {"params": cost.totals.params,
            "peak_activation_bytes_as_written": peak_activation_elements(network) * batch * 4}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("spec", help="a spec file, or 'cnblock' (ConvNeXt's block, the spec's form and torchvision's)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--half", choices=sorted(HALF_DTYPES), default="bfloat16",
                        help="autocast dtype for the mixed-precision measurement (CPU autocast supports both)")
    parser.add_argument("--variants", default="as_written,torchvision")
    parser.add_argument("--device", choices=("cpu", "meta"), default="cpu",
                        help="where the float32 saved-tensor record and the op schedule run")
    parser.add_argument("--skip", default="", help="comma list of: training, optimizers, mixed, inference, allocator")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    skip = {part for part in args.skip.split(",") if part}
    if args.device == "meta":
        skip |= {"mixed", "optimizers", "allocator"}
    if args.spec == "cnblock":  # ConvNeXt's block as convcost builds it and as torchvision writes it
        json.dump(measure_cnblock(args.batch, HALF_DTYPES[args.half]), sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return 0
    network = convcost.load(args.spec)
    figures = convcost_figures(network, args.batch)
    doc: dict[str, Any] = {
        "spec": args.spec, "name": network.name, "batch": args.batch, "torch": torch.__version__,
        "half": args.half, "device": args.device, "convcost": figures, "variants": {},
    }
    if "allocator" not in skip:
        doc["allocator_calibration"] = calibrate_allocator()
    half = HALF_DTYPES[args.half]

    def fresh(marks: InPlace, cuda_kernels: bool = False, device: str = "cpu") -> SpecModel:
        gc.collect()  # models are cyclic (their calls close over them): free the last one first
        return make_model(network, marks, cuda_kernels=cuda_kernels).to(device)

    for variant in args.variants.split(","):
        marks = variant_marks(network, variant)
        torch_params = sum(p.numel() for p in fresh(marks).parameters())
        if torch_params != figures["params"]:
            raise SystemExit(f"{args.spec}: torch model has {torch_params} params, convcost {figures['params']}")
        entry: dict[str, Any] = {"params": torch_params, "inplace": repr(marks)}
        if "training" not in skip:
            entry["training"] = {
                "cpu": measure_saved(fresh(marks, device=args.device), network, args.batch, device=args.device),
                "cuda_kernels": measure_saved(fresh(marks, True, args.device), network, args.batch,
                                              device=args.device),
            }
        if "optimizers" not in skip and variant == "as_written":
            entry["optimizers"] = measure_optimizers(fresh(marks), network, args.batch)
        if "mixed" not in skip:
            entry["mixed_precision"] = {
                "cpu": measure_saved(fresh(marks), network, args.batch, half=half, backward=variant == "as_written"),
                "cuda_kernels": measure_saved(fresh(marks, True), network, args.batch, half=half),
            }
        schedule: int | None = None
        if "inference" not in skip:
            entry["inference"] = measure_inference(fresh(marks, device=args.device), network, args.batch,
                                                   args.device)
            schedule = entry["inference"]["schedule_peak_bytes"]
        if "allocator" not in skip:
            entry["allocator"] = measure_allocator(fresh(marks), network, args.batch, schedule)
        doc["variants"][variant] = entry
    json.dump(doc, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
