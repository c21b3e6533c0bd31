"""Measure with PyTorch what a convcost spec really costs in memory (optional; torch is imported only here).

This script is a measuring instrument, not part of convcost: nothing in ``convcost/`` or in
the test suite imports torch. It loads a spec with :func:`convcost.load`, builds an equivalent
PyTorch model by interpreting the network's nodes (float32, real parameter shapes; the
model's ``sum(p.numel())`` is checked against convcost's ``params``), and prints one JSON
document with:

1. ``training``: the tensors autograd saves for backward in ``model.train()``, recorded with
   ``torch.autograd.graph.saved_tensors_hooks``. Each saved tensor is attributed to the node
   whose forward saved it; a storage saved twice counts once, to the first saver; parameters
   and buffers (batch norm running statistics) are excluded and counted apart; the network
   input, saved by the first layer, is counted like any other saved tensor (``input_saved``
   says whether it was). Two dropout paths: ``cpu`` (``F.dropout`` as PyTorch runs it on CPU:
   a mask in the activation dtype) and ``cuda_kernels`` (dropout through
   ``torch.native_dropout``, the kernel ``F.dropout`` dispatches to on CUDA: a bool mask).
2. ``optimizers``: parameter, gradient and optimizer-state bytes after one real
   ``optimizer.step()`` for SGD, SGD with momentum 0.9, Adam and AdamW (the scalar ``step``
   tensors of Adam/AdamW are reported apart from the state tensors).
3. ``mixed_precision``: the same saved-tensor record under ``torch.autocast("cpu", dtype)``
   with float32 master weights: bytes by dtype, and the half-precision weight copies autocast
   keeps because convolution and linear save them. ``cuda_kernels`` there also applies CUDA
   autocast's float32 policy to softmax and upsampling (``AT_FORALL_FP32`` and
   ``AT_FORALL_FP32_SET_OPT_DTYPE`` in ATen/autocast_mode.h), which CPU autocast does not have.
   (CPU autocast also runs 3-D pooling in float32, having no half-precision CPU kernels for it;
   CUDA runs it in its input's dtype. That cannot be emulated on CPU and is left as measured.)
   One backward checks that gradients stay float32.
4. ``inference``: the forward in ``model.eval()`` under ``torch.no_grad()`` inside a
   ``TorchDispatchMode`` that records every aten op with its input and output storages; the
   peak of the last-use schedule (the network input alive from the start, each storage freed
   after the last op that reads it, the network output kept; in-place ops and views allocate
   nothing; while an op runs its inputs and outputs are alive). Also the same peak without the
   int64 indices that CPU max pooling returns at inference (convcost's schedule has no
   indices).
5. ``allocator``: the real peak of PyTorch's CPU allocator over the same forward, from the
   allocation and free events of ``torch.profiler.profile(profile_memory=True)`` (a running sum
   of event sizes; the input is made inside the profiled region), as a ratio to the schedule's
   peak. The method is calibrated first on known allocations (``allocator.calibration``).

Two variants of the network are measured: ``as_written`` (activations in place only where
the spec says ``inplace: true``) and ``torchvision`` (ReLU/ReLU6 in place and residual adds
in place exactly where torchvision's modules do it; see TORCHVISION_INPLACE).

Environment (a private venv, never a dependency of convcost)::

    python3 -m venv /work/venv-torch-train
    /work/venv-torch-train/bin/pip install --find-links /opt/wheels torch==2.13.0 numpy pyyaml typer rich
    /work/venv-torch-train/bin/pip install -e /work/wt-train

Commands run for the figures in tests/test_training_memory.py and
docs/conventions_training.md (from the worktree root, one JSON document per run)::

    mkdir -p measurements
    for batch in 1 32; do
      for name in one_filter reduce_192_to_32 one_by_one one_by_one_naive nin_cifar10 mobilenet_v2 \
                  resnet18 googlenet resnet50 vgg16; do
        /work/venv-torch-train/bin/python tools/torch_measure.py examples/$name.yaml --batch $batch \
            > measurements/$name-b$batch.json
      done
    done
    for zoo in 2d 1d 3d; do
      for batch in 2 5; do
        /work/venv-torch-train/bin/python tools/torch_measure.py tests/data/training_zoo_$zoo.yaml \
            --batch $batch --variants as_written > measurements/training_zoo_$zoo-b$batch.json
      done
    done
    /work/venv-torch-train/bin/python tools/torch_measure.py tests/data/training_zoo_2d.yaml --batch 2 \
        --variants as_written --half float16 --skip optimizers,inference,allocator \
        > measurements/training_zoo_2d-b2-fp16.json
    /work/venv-torch-train/bin/python tools/torch_measure.py examples/resnet18.yaml --batch 1 \
        --half float16 --skip optimizers,inference,allocator > measurements/resnet18-b1-fp16.json

The largest run (vgg16 at batch 32) takes about 4.5 minutes and 21 GB on a 2-core machine.
(``measurements/`` is scratch output, not committed.) All runs used 2 threads
(``torch.set_num_threads(2)``).
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
import torch.nn.functional as F
from torch import nn
from torch.autograd.graph import saved_tensors_hooks
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

import convcost
from convcost.costs import analyze, peak_activation_elements
from convcost.layers import (
    Activation,
    AdaptivePool,
    Add,
    BatchNorm,
    Concat,
    Conv,
    ConvTranspose,
    Dropout,
    Flatten,
    Identity,
    Linear,
    Pool,
    Softmax,
    Upsample,
)
from convcost.network import INPUT, Network

#: Where torchvision computes in place, per example (by the spec's ``name``), read from
#: torchvision's source (pytorch/vision, torchvision/models/*.py and torchvision/ops/misc.py):
#: ``activations``: the activation functions made in place; ``add``: residual adds in place.
TORCHVISION_INPLACE: dict[str, dict[str, Any]] = {
    # resnet.py: every ReLU is nn.ReLU(inplace=True) (stem; after bn1 (and bn2 in Bottleneck);
    # after the add), and BasicBlock/Bottleneck.forward does `out += identity` (in place on
    # the last batch norm's output).
    "resnet18": {"activations": ("relu",), "add": True},
    "resnet50": {"activations": ("relu",), "add": True},
    # vgg.py: make_layers appends nn.ReLU(inplace=True) after every conv; the classifier's
    # ReLUs are nn.ReLU(True); dropout is not in place.
    "vgg16": {"activations": ("relu",), "add": False},
    # mobilenetv2.py: Conv2dNormActivation(..., activation_layer=nn.ReLU6), whose `inplace`
    # defaults to True (ops/misc.py ConvNormActivation); InvertedResidual.forward returns
    # `x + self.conv(x)`: the add is NOT in place.
    "mobilenet_v2": {"activations": ("relu6",), "add": False},
    # googlenet.py: BasicConv2d.forward returns F.relu(x, inplace=True) after every conv
    # (the example is the paper's layout without batch norm; its ReLUs follow the same rule).
    "googlenet": {"activations": ("relu",), "add": False},
    # Not a torchvision model: the Caffe release computes every ReLU in place (top == bottom),
    # as torchvision writes conv + ReLU; no adds.
    "nin_cifar10": {"activations": ("relu",), "add": False},
}

HALF_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


# --------------------------------------------------------------------------- the model


class SpecModel(nn.Module):
    """A convcost network as a torch module: one submodule per node, run in node order.

    ``forward`` takes a one-element list holding the input and empties it, and drops each
    node's output after its last reader, so that Python frees tensors where the
    last-use schedule does.
    """

    def __init__(self, network: Network, *, inplace_activations: frozenset[str] = frozenset(),
                 inplace_add: bool = False, cuda_kernels: bool = False) -> None:
        super().__init__()
        self.network = network
        self.nodes = network.nodes
        self.cuda_kernels = cuda_kernels
        self.half: torch.dtype | None = None  # the autocast dtype while measuring mixed precision
        self.mods = nn.ModuleList()
        self.calls: list[Callable[[list[torch.Tensor]], torch.Tensor]] = []
        for node in self.nodes:
            module, call = self._build(node, inplace_activations, inplace_add)
            self.mods.append(module)
            self.calls.append(call)
        last: dict[int, int] = {}
        for node in self.nodes:
            for ref in node.inputs:
                last[ref] = node.index
        self.release_after: dict[int, list[int]] = defaultdict(list)
        for ref, index in last.items():
            if ref != INPUT:
                self.release_after[index].append(ref)
        readers = [node.index for node in self.nodes if INPUT in node.inputs]
        self.last_input_reader = max(readers) if readers else -1
        self.on_node: Callable[[int], None] | None = None

    def _build(self, node: Any, inplace_activations: frozenset[str], inplace_add: bool
               ) -> tuple[nn.Module, Callable[[list[torch.Tensor]], torch.Tensor]]:
        layer = node.layer
        shape = node.input_shapes[0]
        if isinstance(layer, Conv):
            cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[layer.dims]
            padding: Any = "same" if layer.same else layer.padding
            mod = cls(layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride, padding=padding,
                      dilation=layer.dilation, groups=layer.groups, bias=layer.bias)
            return mod, lambda xs: mod(xs[0])
        if isinstance(layer, ConvTranspose):
            cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[layer.dims]
            mod = cls(layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride,
                      padding=layer.padding, output_padding=layer.output_padding, groups=layer.groups,
                      bias=layer.bias, dilation=layer.dilation)
            return mod, lambda xs: mod(xs[0])
        if isinstance(layer, Pool):
            if layer.op == "max":
                cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[layer.dims]
                mod = cls(layer.kernel, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                          ceil_mode=layer.ceil_mode)
            else:
                cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[layer.dims]
                mod = cls(layer.kernel, stride=layer.stride, padding=layer.padding, ceil_mode=layer.ceil_mode)
            return mod, lambda xs: mod(xs[0])
        if isinstance(layer, AdaptivePool):
            table = ({1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d} if layer.op == "avg"
                     else {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d})
            mod = table[layer.dims](layer.output_size)
            return mod, lambda xs: mod(xs[0])
        if isinstance(layer, Linear):
            mod = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
            return mod, lambda xs: mod(xs[0])
        if isinstance(layer, Flatten):
            mod = nn.Flatten()
            return mod, lambda xs: mod(xs[0])
        if isinstance(layer, BatchNorm):
            cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}[len(shape)]
            mod = cls(layer.num_features, affine=layer.affine, track_running_stats=layer.track_running_stats)
            return mod, lambda xs: mod(xs[0])
        if isinstance(layer, Activation):
            inplace = layer.inplace or layer.function in inplace_activations
            return nn.Identity(), _activation(layer.function, inplace)
        if isinstance(layer, Dropout):
            p = layer.p

            def dropout(xs: list[torch.Tensor]) -> torch.Tensor:
                x = xs[0]
                if self.cuda_kernels and self.training and 0 < p < 1:
                    return torch.native_dropout(x, p, True)[0]  # what F.dropout runs on CUDA
                return F.dropout(x, p, self.training)
            return nn.Identity(), dropout
        if isinstance(layer, Identity):
            return nn.Identity(), lambda xs: xs[0]
        if isinstance(layer, Softmax):
            dim = layer.dim

            def softmax(xs: list[torch.Tensor]) -> torch.Tensor:
                x = xs[0]
                if self.cuda_kernels and self.half is not None and x.dtype == self.half:
                    return F.softmax(x, dim, dtype=torch.float32)  # CUDA autocast: fp32_set_opt_dtype
                return F.softmax(x, dim)
            return nn.Identity(), softmax
        if isinstance(layer, Upsample):
            size = tuple(node.output_shape[1:])
            mode = layer.mode
            align = None if mode == "nearest" else False

            def upsample(xs: list[torch.Tensor]) -> torch.Tensor:
                x = xs[0]
                if self.cuda_kernels and self.half is not None and x.dtype == self.half:
                    x = x.float()  # CUDA autocast runs upsampling in float32 (AT_FORALL_FP32)
                return F.interpolate(x, size=size, mode=mode, align_corners=align)
            return nn.Identity(), upsample
        if isinstance(layer, Add):
            if inplace_add:
                def add_inplace(xs: list[torch.Tensor]) -> torch.Tensor:
                    out = xs[0]
                    for other in xs[1:]:
                        out = out.add_(other)  # torchvision: `out += identity`
                    return out
                return nn.Identity(), add_inplace

            def add(xs: list[torch.Tensor]) -> torch.Tensor:
                out = xs[0] + xs[1]  # one new tensor; further terms accumulate into it
                for other in xs[2:]:
                    out = out.add_(other)
                return out
            return nn.Identity(), add
        if isinstance(layer, Concat):
            return nn.Identity(), lambda xs: torch.cat(list(xs), 1)
        raise TypeError(f"no torch equivalent for layer type {type(layer).__name__}")

    def forward(self, holder: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        x = holder.pop()
        outs: list[torch.Tensor | None] = [None] * len(self.nodes)
        for node in self.nodes:
            args = [x if ref == INPUT else outs[ref] for ref in node.inputs]
            if self.on_node is not None:
                self.on_node(node.index)
            outs[node.index] = self.calls[node.index](args)  # type: ignore[arg-type]
            del args
            if node.index == self.last_input_reader:
                x = None  # type: ignore[assignment]
            for ref in self.release_after.get(node.index, ()):
                if ref != len(self.nodes) - 1:
                    outs[ref] = None
        if self.on_node is not None:
            self.on_node(-2)
        return outs[-1]  # type: ignore[return-value]


def _activation(function: str, inplace: bool) -> Callable[[list[torch.Tensor]], torch.Tensor]:
    table: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "relu": lambda x: F.relu(x, inplace=inplace),
        "relu6": lambda x: F.relu6(x, inplace=inplace),
        "leaky_relu": lambda x: F.leaky_relu(x, 0.01, inplace=inplace),
        "sigmoid": lambda x: x.sigmoid_() if inplace else torch.sigmoid(x),
        "tanh": lambda x: x.tanh_() if inplace else torch.tanh(x),
        "gelu": lambda x: torch._C._nn.gelu_(x) if inplace else F.gelu(x),
        "silu": lambda x: F.silu(x, inplace=inplace),
        "hardswish": lambda x: F.hardswish(x, inplace=inplace),
    }
    fn = table[function]
    return lambda xs: fn(xs[0])


def make_model(network: Network, variant: str, *, cuda_kernels: bool = False, seed: int = 0) -> SpecModel:
    torch.manual_seed(seed)
    if variant == "as_written":
        return SpecModel(network, cuda_kernels=cuda_kernels)
    marks = TORCHVISION_INPLACE.get(network.name, {"activations": (), "add": False})
    return SpecModel(network, inplace_activations=frozenset(marks["activations"]), inplace_add=marks["add"],
                     cuda_kernels=cuda_kernels)


def storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --------------------------------------------------------------------------- 1. saved tensors


class CastTracker(TorchDispatchMode):
    """Notes the storages made by casting a parameter (autocast's weight copies)."""

    def __init__(self, param_keys: set[int]) -> None:
        super().__init__()
        self.param_keys = param_keys
        self.copies: set[int] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten._to_copy.default and isinstance(args[0], torch.Tensor) \
                and storage_key(args[0]) in self.param_keys and isinstance(out, torch.Tensor):
            self.copies.add(storage_key(out))
        return out


def measure_saved(model: SpecModel, network: Network, batch: int, half: torch.dtype | None = None,
                  backward: bool = False) -> dict[str, Any]:
    """Saved-for-backward tensors of one training forward, per node, deduplicated by storage."""
    model.train()
    model.half = half
    params = {storage_key(p) for p in model.parameters()}
    buffers = {storage_key(b) for b in model.buffers()}
    x = torch.randn(batch, *network.input_shape)
    input_key = storage_key(x)
    current = [INPUT]
    records: list[tuple[int, int, int, str, tuple[int, ...], int]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        records.append((current[0], storage_key(t), t.untyped_storage().nbytes(), dtype_name(t.dtype),
                        tuple(t.shape), t.numel() * t.element_size()))
        return t

    model.on_node = lambda index: current.__setitem__(0, index)
    tracker = CastTracker(params)
    holder = [x]
    del x
    with saved_tensors_hooks(pack, lambda t: t):
        if half is not None:
            with torch.autocast("cpu", dtype=half), tracker:
                out = model(holder)
        else:
            out = model(holder)
    model.on_node = None
    seen: dict[int, int] = {}
    per_node: dict[int, dict[str, Any]] = {}
    by_dtype: Counter[str] = Counter()
    weight_copies: Counter[str] = Counter()
    excluded = {"parameter": 0, "buffer": 0}
    zero = 0
    input_saved_by: int | None = None
    total = 0
    copies_total = 0
    for node_index, key, nbytes, dtype, shape, _ in records:
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
        if key == input_key and input_saved_by is None:
            input_saved_by = node_index
        entry = per_node.setdefault(node_index, {"bytes": 0, "tensors": []})
        entry["bytes"] += nbytes
        entry["tensors"].append(f"{dtype} {'x'.join(map(str, shape)) or 'scalar'} {nbytes}")
        by_dtype[dtype] += nbytes
        total += nbytes
    result: dict[str, Any] = {
        "saved_activation_bytes": total,
        "by_dtype": dict(sorted(by_dtype.items())),
        "input_saved": input_saved_by is not None,
        "input_saved_by": None if input_saved_by is None else network.nodes[input_saved_by].name,
        "excluded_saves": excluded,
        "zero_byte_saves": zero,
        "per_node": {network.nodes[i].name if i >= 0 else "<after forward>": v
                     for i, v in sorted(per_node.items())},
    }
    if half is not None:
        result["weight_copy_bytes"] = copies_total
        result["weight_copies_by_dtype"] = dict(weight_copies)
        result["output_dtype"] = dtype_name(out.dtype)
    if backward:
        out.float().sum().backward()
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
    holder = [torch.randn(batch, *network.input_shape)]
    model(holder).float().sum().backward()
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


class OpRecorder(TorchDispatchMode):
    """Records every aten op with its input and output storages (kept alive, so keys stay unique)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, list[int], list[tuple[int, int, str]]]] = []
        self.keep: list[torch.Tensor] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        ins = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.keep.extend(outs)
        self.ops.append((str(func), [storage_key(t) for t in ins],
                         [(storage_key(t), t.untyped_storage().nbytes(), dtype_name(t.dtype)) for t in outs]))
        return out


def schedule_peak(ops: list[tuple[str, list[int], list[tuple[int, int, str]]]], input_key: int, input_bytes: int,
                  output_key: int, skip: Callable[[str, int, str], bool] = lambda op, i, dtype: False
                  ) -> dict[str, Any]:
    """Peak bytes of the last-use schedule over recorded ops; ``skip`` drops some outputs."""
    size: dict[int, int] = {input_key: input_bytes}
    last: dict[int, int] = {input_key: -1}
    allocated_at: dict[int, int] = {}
    for step, (name, ins, outs) in enumerate(ops):
        for position, (key, nbytes, dtype) in enumerate(outs):
            if key not in size and nbytes and not skip(name, position, dtype):
                size[key] = nbytes
                allocated_at[key] = step
        for key in ins + [key for key, _, _ in outs]:
            if key in size:
                last[key] = step
    freed_after: dict[int, int] = defaultdict(int)
    for key, step in last.items():
        if key != output_key:
            freed_after[step] += size[key]
    alive = input_bytes
    peak = alive
    peak_step = -1
    born: dict[int, int] = defaultdict(int)
    for key, step in allocated_at.items():
        born[step] += size[key]
    if last.get(input_key, -1) == -1 and input_key != output_key:
        alive -= input_bytes  # an input nobody reads
    for step in range(len(ops)):
        alive += born[step]
        if alive > peak:
            peak, peak_step = alive, step
        alive -= freed_after[step]
    return {"peak_bytes": peak, "peak_op": ops[peak_step][0] if peak_step >= 0 else "<input>",
            "peak_op_index": peak_step, "allocations": len(allocated_at)}


def measure_inference(model: SpecModel, network: Network, batch: int) -> dict[str, Any]:
    model.eval()
    x = torch.randn(batch, *network.input_shape)
    input_key, input_bytes = storage_key(x), x.untyped_storage().nbytes()
    params = {storage_key(p) for p in model.parameters()} | {storage_key(b) for b in model.buffers()}
    recorder = OpRecorder()
    with torch.no_grad(), recorder:
        out = model([x])
    output_key = storage_key(out)
    ops = [(name, [k for k in ins if k not in params], [o for o in outs if o[0] not in params])
           for name, ins, outs in recorder.ops]
    full = schedule_peak(ops, input_key, input_bytes, output_key)

    def indices(op: str, position: int, dtype: str) -> bool:
        return "max_pool" in op and position == 1 and dtype == "int64"
    without = schedule_peak(ops, input_key, input_bytes, output_key, skip=indices)
    counts = Counter(name for name, _, _ in ops)
    return {
        "schedule_peak_bytes": full["peak_bytes"],
        "schedule_peak_op": full["peak_op"],
        "schedule_peak_without_pool_indices_bytes": without["peak_bytes"],
        "schedule_peak_without_pool_indices_op": without["peak_op"],
        "ops": dict(sorted(counts.items())),
        "output_bytes": out.untyped_storage().nbytes(),
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


def measure_allocator(model: SpecModel, network: Network, batch: int, schedule_bytes: int) -> dict[str, Any]:
    model.eval()
    with torch.no_grad():
        model([torch.randn(batch, *network.input_shape)])  # warm-up: one-time allocations (weight reorders)

        def run() -> torch.Tensor:
            # The input is made inside the profiled region: a block allocated before profiling
            # starts has no free event (the profiler warns so), which would leave it counted.
            return model([torch.randn(batch, *network.input_shape)])
        peak = allocator_peak(run, 0)
    return {"allocator_peak_bytes": peak, "ratio_to_schedule": peak / schedule_bytes if schedule_bytes else None}


# --------------------------------------------------------------------------- main


def convcost_figures(network: Network, batch: int) -> dict[str, Any]:
    cost = analyze(network, batch=batch, dtype="float32")
    return {"params": cost.totals.params,
            "peak_activation_bytes_as_written": peak_activation_elements(network) * batch * 4}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--half", choices=sorted(HALF_DTYPES), default="bfloat16",
                        help="autocast dtype for the mixed-precision measurement (CPU autocast supports both)")
    parser.add_argument("--variants", default="as_written,torchvision")
    parser.add_argument("--skip", default="", help="comma list of: training, optimizers, mixed, inference, allocator")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    skip = {part for part in args.skip.split(",") if part}
    network = convcost.load(args.spec)
    figures = convcost_figures(network, args.batch)
    doc: dict[str, Any] = {
        "spec": args.spec, "name": network.name, "batch": args.batch, "torch": torch.__version__,
        "half": args.half, "convcost": figures, "variants": {},
    }
    if "allocator" not in skip:
        doc["allocator_calibration"] = calibrate_allocator()
    half = HALF_DTYPES[args.half]

    def fresh(variant: str, cuda_kernels: bool = False) -> SpecModel:
        gc.collect()  # models are cyclic (their calls close over them): free the last one first
        return make_model(network, variant, cuda_kernels=cuda_kernels)

    for variant in args.variants.split(","):
        torch_params = sum(p.numel() for p in fresh(variant).parameters())
        if torch_params != figures["params"]:
            raise SystemExit(f"{args.spec}: torch model has {torch_params} params, convcost {figures['params']}")
        entry: dict[str, Any] = {"params": torch_params,
                                 "inplace": TORCHVISION_INPLACE.get(network.name) if variant == "torchvision" else None}
        if "training" not in skip:
            entry["training"] = {
                "cpu": measure_saved(fresh(variant), network, args.batch),
                "cuda_kernels": measure_saved(fresh(variant, True), network, args.batch),
            }
        if "optimizers" not in skip and variant == "as_written":
            entry["optimizers"] = measure_optimizers(fresh(variant), network, args.batch)
        if "mixed" not in skip:
            entry["mixed_precision"] = {
                "cpu": measure_saved(fresh(variant), network, args.batch, half=half, backward=variant == "as_written"),
                "cuda_kernels": measure_saved(fresh(variant, True), network, args.batch, half=half),
            }
        if "inference" not in skip:
            entry["inference"] = measure_inference(fresh(variant), network, args.batch)
            if "allocator" not in skip:
                entry["allocator"] = measure_allocator(fresh(variant), network, args.batch,
                                                       entry["inference"]["schedule_peak_bytes"])
        doc["variants"][variant] = entry
    json.dump(doc, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
