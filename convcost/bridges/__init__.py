"""Bridges to real models: ONNX in (``onnx_import``), ONNX and PyTorch source out (``export_onnx``,
``export_pytorch``).

The ``onnx`` package is an optional extra (``pip install "convcost[onnx]"``): only the modules that read or
write ONNX import it, and only when a command needs them, so convcost without it starts as fast as before.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import UsageError

__all__ = ["INSTALL_ONNX", "is_onnx_path", "require_onnx"]

INSTALL_ONNX = 'pip install "convcost[onnx]"'


def is_onnx_path(path: str | None) -> bool:
    """Does a command-line path name an ONNX model (rather than a spec)?"""
    return path is not None and path.lower().endswith(".onnx")


def require_onnx() -> ModuleType:
    """The ``onnx`` module, or a usage error (exit 2) that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise UsageError(f"reading or writing ONNX needs the onnx package: {INSTALL_ONNX}") from None
    return onnx
