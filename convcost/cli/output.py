"""Writing a result: to stdout (a Rich console on a terminal, plain text elsewhere) or atomically to a file."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console, Group
from rich.table import Table

from ..errors import UsageError
from ..render.common import json_chunks

__all__ = ["check_output", "console", "emit", "write_atomic"]

_PLAIN_WIDTH = 240  # off a terminal (pipe, file, CI log), unless COLUMNS says otherwise


def _plain_wanted(stream: Any) -> bool:
    """No colour or box art off a terminal, or when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return not (isatty and isatty())
    except (OSError, ValueError):
        return True


def console(file: TextIO | None = None) -> Console:
    """A Rich console on ``file`` (stdout): the terminal's width and colours on a terminal,
    else plain: no colour, no highlighting, ``COLUMNS`` (or a wide default) for the width."""
    stream = sys.stdout if file is None else file
    if not _plain_wanted(stream):
        return Console(file=stream)
    try:
        width = int(os.environ.get("COLUMNS", "")) or _PLAIN_WIDTH
    except ValueError:
        width = _PLAIN_WIDTH
    return Console(file=stream, width=max(width, 40), no_color=True, color_system=None, highlight=False,
                   emoji=False, force_terminal=False, force_interactive=False, legacy_windows=False)


def _without_boxes(renderable: Any) -> Any:
    """Tables (also inside a Group) lose their box-drawing characters."""
    if isinstance(renderable, Table):
        renderable.box = None
        renderable.show_edge = False
    elif isinstance(renderable, Group):
        for child in renderable.renderables:
            _without_boxes(child)
    return renderable


def emit(fmt: str, result: Any, *, output: str | None = None, protect: Iterable[str] = ()) -> None:
    """Write a rendered result to stdout, or atomically to ``output``.

    ``result`` is JSON-ready data for ``json``, text for ``markdown`` and
    ``csv``, or a Rich renderable for ``table``. ``protect`` lists the spec files
    of the command line, which ``output`` may not replace.
    """
    to_stdout = output is None or output == "-"
    if not to_stdout:
        check_output(str(output), protect)
    chunks: Iterable[str]
    if fmt == "json":
        chunks = json_chunks(result)
    elif isinstance(result, str):
        chunks = (result if result.endswith("\n") else result + "\n",)
    elif to_stdout:
        console().print(_without_boxes(result) if _plain_wanted(sys.stdout) else result)
        return
    else:
        buffer = io.StringIO()
        console(buffer).print(_without_boxes(result))
        chunks = (buffer.getvalue(),)
    if to_stdout:
        for text in chunks:
            sys.stdout.write(text)
    else:
        write_atomic(str(output), chunks, protect)


def check_output(path: str, protect: Iterable[str] = (), *, writes_spec: bool = False) -> None:
    """Refuse an ``--output`` that could destroy a spec: any ``.yaml``/``.yml`` path
    (convcost writes YAML only where ``writes_spec`` says so: ``convcost import``) and any file given as a spec on
    the command line."""
    if path.lower().endswith((".yaml", ".yml")) and not writes_spec:
        raise UsageError(f"refusing to write output to {path}: convcost writes no YAML, and a .yaml/.yml "
                         "path is probably a spec")
    target = os.path.realpath(path)
    for spec in protect:
        if spec in (None, "-"):
            continue
        same = os.path.realpath(spec) == target
        if not same and os.path.exists(path) and os.path.exists(spec):
            try:
                same = os.path.samefile(path, spec)
            except OSError:
                same = False
        if same:
            raise UsageError(f"refusing to write output over the spec {spec}")


def write_atomic(path: str, text: str | bytes | Iterable[str], protect: Iterable[str] = (), *,
                 writes_spec: bool = False) -> None:
    """Write ``text`` (a string, bytes, or strings one after another) to a temporary file beside
    ``path``, then rename it over ``path``: readers see the old file or the new one, never half of it."""
    check_output(path, protect, writes_spec=writes_spec)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        handle, temporary = tempfile.mkstemp(prefix=".convcost-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if isinstance(text, bytes):
            with os.fdopen(handle, "wb") as binary:
                binary.write(text)
                binary.flush()
                os.fsync(binary.fileno())
        else:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                stream.writelines((text,) if isinstance(text, str) else text)
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        _remove(temporary)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(temporary)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
