"""Generate large specs for the scale benchmark and the scale tests.

Two shapes of network, each written out layer by layer (no ``repeat:``), so
that the YAML loader, the builder, the name generator, the cost engine and the
memory schedule all see every layer:

* ``stack``: a plain chain cycling conv 3x3 -> batch_norm -> relu -> pointwise
  on a 16x8x8 input (channels stay 16, so every shape is known in closed form);
* ``branched``: units nested ``BRANCH_DEPTH`` residuals deep, each level an
  Inception-style ``concat`` of three branches (one of them the input itself)
  inside a ``residual``; every layer name is generated, so uniqueness of the
  dotted paths is exercised.

``layers`` counts nodes of the built network (leaves plus the ``add`` and
``concat`` nodes structures create); each spec has exactly that many, padded
with trailing ``relu``s. Specs are written to a directory you give (a
temporary one by default), never into the repository.

    python benchmarks/gen_specs.py [DIR]        # writes 1k/10k/100k of each
"""

from __future__ import annotations

import os
import sys
import tempfile

__all__ = [
    "BRANCH_DEPTH",
    "CHANNELS",
    "INPUT",
    "KINDS",
    "SIZES",
    "STACK_PERIOD",
    "branched_spec",
    "branched_unit_nodes",
    "spec_text",
    "stack_spec",
    "write_specs",
]

CHANNELS = 16
INPUT = f"{CHANNELS}x8x8"
SIZES = (1_000, 10_000, 100_000)
KINDS = ("stack", "branched")
BRANCH_DEPTH = 6  # residual levels nested inside one unit (YAML depth stays well under spec.MAX_DEPTH)

#: The stack's repeating period, one entry per node.
STACK_PERIOD = (
    f"  - conv: {{out: {CHANNELS}, kernel: 3, padding: 1, bias: false}}\n",
    "  - batch_norm\n",
    "  - relu\n",
    f"  - pointwise: {{out: {CHANNELS}}}\n",
)


def stack_spec(layers: int) -> str:
    """A plain chain of exactly ``layers`` nodes."""
    period = len(STACK_PERIOD)
    body = "".join(STACK_PERIOD) * (layers // period) + "".join(STACK_PERIOD[: layers % period])
    return f"name: stack_{layers}\ninput: {INPUT}\nlayers:\n{body}"


def _unit(depth: int, indent: str) -> list[str]:
    """One branched level (and ``depth - 1`` more nested in its body), as YAML lines."""
    half = CHANNELS // 2
    lines = [
        f"{indent}- residual:",
        f"{indent}    body:",
        f"{indent}      - conv: {{out: {CHANNELS}, kernel: 3, padding: 1, bias: false}}",
        f"{indent}      - batch_norm",
        f"{indent}      - relu",
        f"{indent}      - concat:",
        f"{indent}          branches:",
        f"{indent}            - [pointwise: {{out: {half}}}]",
        f"{indent}            - - conv: {{out: {half}, kernel: 3, padding: 1}}",
        f"{indent}              - relu",
        f"{indent}            - []",
        f"{indent}      - pointwise: {{out: {CHANNELS}}}",
    ]
    if depth > 1:
        lines += _unit(depth - 1, indent + "      ")
    lines.append(f"{indent}- relu")
    return lines


def branched_unit_nodes(depth: int = BRANCH_DEPTH) -> int:
    """Nodes in one unit: per level conv, bn, relu, 3 branch layers, concat, pointwise, add, relu = 10."""
    return 10 * depth


def branched_spec(layers: int, depth: int = BRANCH_DEPTH) -> str:
    """Units of nested residual/concat levels, padded with ``relu`` to exactly ``layers`` nodes."""
    unit = "\n".join(_unit(depth, "  ")) + "\n"
    units, rest = divmod(layers, branched_unit_nodes(depth))
    return f"name: branched_{layers}\ninput: {INPUT}\nlayers:\n" + unit * units + "  - relu\n" * rest


def spec_text(kind: str, layers: int) -> str:
    if kind == "stack":
        return stack_spec(layers)
    if kind == "branched":
        return branched_spec(layers)
    raise ValueError(f"unknown spec kind {kind!r}; choose one of {', '.join(KINDS)}")


def write_specs(directory: str, sizes: tuple[int, ...] = SIZES, kinds: tuple[str, ...] = KINDS) -> dict[tuple[str, int], str]:
    """Write every (kind, size) spec into ``directory``; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for kind in kinds:
        for size in sizes:
            path = os.path.join(directory, f"{kind}_{size}.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(spec_text(kind, size))
            paths[(kind, size)] = path
    return paths


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="convcost-specs-")
    for (kind, size), path in write_specs(target).items():
        print(f"{kind:9} {size:>7,} layers  {os.path.getsize(path):>10,} bytes  {path}")
