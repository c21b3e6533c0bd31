"""``convcost export``: a spec -> readable PyTorch source, or an ONNX model with zero or random weights."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Optional

import typer

from ..bridges import is_onnx_path
from ..builder import build_network
from ..errors import ConvcostError, UsageError
from ..spec import load_spec
from .app import app, fail
from .output import check_output, write_atomic

__all__ = ["ForceOpt", "refuse_existing"]

TARGETS = ("pytorch", "onnx")

ForceOpt = typer.Option(False, "--force", help="Replace an existing output file.")
ToOpt = typer.Option(..., "--to", metavar="pytorch|onnx", help="pytorch: a Python file of nn.Module classes "
                     "(templates become classes); onnx: an ONNX model (needs the onnx package).", show_default=False)
FileOpt = typer.Option(None, "--output", "-o", metavar="FILE", show_default=False,
                       help="Write here (atomically; never over a spec nor any .yaml/.yml path; an existing file "
                            "is kept unless --force). PyTorch source goes to stdout without it; ONNX needs it.")
WeightsOpt = typer.Option("zeros", "--weights", metavar="zeros|random",
                          help="ONNX weights: zeros (small once compressed) or random (a model that runs).")


def refuse_existing(path: str, force: bool, protect: Iterable[str], *, writes_spec: bool = False) -> None:
    """Check ``--output`` as every command does, and more: nothing the user wrote is lost, so an existing
    regular file (also behind a symlink) stays unless --force. Standard output named as a file
    (``/dev/stdout``), a device or a FIFO is written as it is."""
    target = check_output(path, protect, writes_spec=writes_spec)
    if target.how == "replace" and os.path.isfile(target.path) and not force:
        raise UsageError(f"refusing to replace the existing file {path} (--force replaces it)")


@app.command("export")
def export(
    spec: str = typer.Argument(..., metavar="SPEC", help="Spec file (YAML) or ONNX model (.onnx), or - for stdin.",
                               show_default=False),
    to: str = ToOpt,
    output: Optional[str] = FileOpt,
    weights: str = WeightsOpt,
    force: bool = ForceOpt,
) -> None:
    """Turn a draft into code: PyTorch source to start from, or an ONNX graph to run or compare.

    \b
    convcost export draft.yaml --to pytorch -o model.py
    convcost export draft.yaml --to onnx -o draft.onnx --weights random
    """
    try:
        if to not in TARGETS:
            raise UsageError(f"--to must be one of {', '.join(TARGETS)}, got {to!r}")
        if weights not in ("zeros", "random"):
            raise UsageError(f"--weights must be zeros or random, got {weights!r}")
        if to == "onnx" and output in (None, "-"):
            raise UsageError("--to onnx writes a binary model: give --output FILE.onnx")
        if output not in (None, "-"):
            refuse_existing(output, force, [spec])
        if is_onnx_path(spec):
            from ..bridges.onnx_import import onnx_spec  # imports onnx

            loaded = onnx_spec(spec)
        else:
            loaded = load_spec(spec)
        network = build_network(loaded)
        content: str | bytes
        if to == "onnx":
            from ..bridges.export_onnx import export_onnx  # imports onnx

            content = export_onnx(network, weights=weights)
        else:
            from ..bridges.export_pytorch import export_pytorch

            content = export_pytorch(loaded, network)
        if output in (None, "-"):
            assert isinstance(content, str)
            sys.stdout.write(content)
        else:
            write_atomic(output, content, protect=[spec])
    except ConvcostError as error:
        fail(error)
