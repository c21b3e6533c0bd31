"""``convcost import``: an ONNX model -> a graph spec (YAML), to edit, compare and budget like a draft."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..bridges import is_onnx_path
from ..errors import ConvcostError, UsageError
from .app import app, fail, one_line
from .export import ForceOpt, refuse_existing
from .output import write_atomic

ModelArg = typer.Argument(..., metavar="MODEL.onnx", help="The ONNX model to read.", show_default=False)
SpecOutputOpt = typer.Option(None, "--output", "-o", metavar="SPEC.yaml", show_default=False,
                             help="Write the spec to this file (atomically) instead of stdout. This is the one "
                                  "command that writes YAML; an existing file is kept unless --force.")
AllowUnknownOpt = typer.Option(False, "--allow-unknown", help="Keep ops convcost cannot map as zero-cost 'opaque' "
                               "layers with the model's shapes (listed on stderr and in the spec's header) "
                               "instead of failing.")


@app.command("import")
def import_model(
    model: str = ModelArg,
    output: Optional[str] = SpecOutputOpt,
    allow_unknown: bool = AllowUnknownOpt,
    force: bool = ForceOpt,
) -> None:
    """Read an ONNX model and write its graph spec: layers named after the ONNX nodes, weights as options.

    Needs the onnx package (pip install "convcost[onnx]"). Ops convcost cannot map are an error
    listing each op type, its count and first node (exit 2), unless --allow-unknown.
    Any command that takes a spec also takes the .onnx file directly.

    \b
    convcost import resnet18.onnx -o resnet18.yaml
    convcost compare draft.yaml resnet18.onnx
    """
    try:
        if not is_onnx_path(model):
            raise UsageError(f"convcost import reads an ONNX model (a .onnx file), got {model}")
        if output not in (None, "-"):
            refuse_existing(output, force, [model], writes_spec=True)
        from ..bridges.onnx_import import import_onnx  # imports onnx

        imported = import_onnx(model, allow_unknown=allow_unknown)
        if output in (None, "-"):
            sys.stdout.write(imported.text)
        else:
            write_atomic(output, imported.text, protect=[model], writes_spec=True)
        where = "" if output in (None, "-") else f"; wrote {output}"
        sys.stderr.write(f"convcost: imported {one_line(model)}: {imported.onnx_nodes} ONNX nodes, "
                         f"{imported.layers} layers{where}\n")
        if imported.opaque:
            listing = ", ".join(f"{op} x{count} (first: '{first}')" for op, count, first in imported.opaque)
            sys.stderr.write(f"convcost: opaque layers (zero cost by declaration, shapes kept): {one_line(listing)}\n")
        for note in imported.notes:
            sys.stderr.write(f"convcost: note: {note}\n")
    except ConvcostError as error:
        fail(error)
