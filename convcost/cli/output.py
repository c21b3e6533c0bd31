"""Writing a result: to stdout (a Rich console on a terminal, plain text elsewhere) or to ``--output``.

Where ``--output`` goes depends on what the path is (:func:`check_output`):

* a regular file, or nothing yet: a temporary file beside it, renamed over it
  when complete, so readers see the old file or the new one; through a
  symlink, the link's target is written and the link itself stays;
* a character device or a FIFO (``/dev/null``, ``/dev/stdout`` on a terminal
  or a pipe, a named pipe): written in place, as a shell's ``>`` would;
* the file standard output (or error) already is (``--output /dev/stdout``
  when stdout is redirected to a file): written through that stream, so ``>>``
  still appends;
* a directory, socket or block device, a ``.yaml``/``.yml`` path, a spec of the
  command line, or the regular file standard input reads: refused.

A temporary file is removed on SIGINT, SIGTERM and SIGHUP as on any error.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

from rich.console import Console, Group
from rich.table import Table

from ..errors import OutputError, UsageError
from ..render.common import json_chunks

__all__ = ["Target", "check_output", "console", "emit", "write_atomic"]

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


class _Console(Console):
    """A Rich console that reports a closed pipe like any other write (Rich's own exits with 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def console(file: TextIO | None = None) -> Console:
    """A Rich console on ``file`` (stdout): the terminal's width and colours on a terminal,
    else plain: no colour, no highlighting, ``COLUMNS`` (or a wide default) for the width."""
    stream = sys.stdout if file is None else file
    if not _plain_wanted(stream):
        return _Console(file=stream)
    try:
        width = int(os.environ.get("COLUMNS", "")) or _PLAIN_WIDTH
    except ValueError:
        width = _PLAIN_WIDTH
    return _Console(file=stream, width=max(width, 40), no_color=True, color_system=None, highlight=False,
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
    """Write a rendered result to stdout, or to ``output`` (see the module docstring).

    ``result`` is JSON-ready data for ``json``, text for ``markdown`` and
    ``csv``, or a Rich renderable for ``table``. ``protect`` lists the spec files
    of the command line, which ``output`` may not replace. A failed write raises
    :class:`OutputError`; a closed stdout pipe raises ``BrokenPipeError``.
    """
    target = None if output is None or output == "-" else check_output(str(output), protect)
    chunks: Iterable[str]
    if fmt == "json":
        chunks = json_chunks(result)
    elif isinstance(result, str):
        chunks = (result if result.endswith("\n") else result + "\n",)
    elif target is None:
        with _writing_stdout():
            console().print(_without_boxes(result) if _plain_wanted(sys.stdout) else result)
        return
    else:
        buffer = io.StringIO()
        console(buffer).print(_without_boxes(result))
        chunks = (buffer.getvalue(),)
    if target is None or target.how in ("stdout", "stderr"):
        _write_stream(chunks, "stdout" if target is None else target.how)
    elif target.how == "in place":
        _write_in_place(target, chunks)
    else:
        _write_replacing(target, chunks)


@contextlib.contextmanager
def _writing_stdout(name: str = "stdout") -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        what = "standard output" if name == "stdout" else "standard error"
        raise OutputError(f"cannot write to {what}: {exc.strerror or exc}") from None


#: What is written: strings one after another, or one binary blob (``convcost export --to onnx``).
Payload = Iterable[str] | bytes


def _write_to(stream: TextIO, chunks: Payload) -> None:
    """``chunks`` to a text ``stream``; bytes go to its binary buffer."""
    if isinstance(chunks, bytes):
        stream.flush()
        stream.buffer.write(chunks)
        stream.buffer.flush()
    else:
        stream.writelines(chunks)


def _write_stream(chunks: Payload, name: str) -> None:
    stream = getattr(sys, name)
    with _writing_stdout(name):
        _write_to(stream, chunks)


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how ``--output`` is written: ``how`` is ``replace`` (a temporary file renamed over
    ``path``, symlinks resolved), ``in place`` (a device or FIFO), ``stdout`` or ``stderr``."""

    given: str  # as on the command line, for messages
    path: str
    how: str


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"))


def _fstat(stream: Any) -> os.stat_result | None:
    """The stat of a standard stream's file, or None when it has no file descriptor (CliRunner, closed)."""
    try:
        return os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def _same(a: os.stat_result | None, b: os.stat_result) -> bool:
    return a is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _refuse_yaml(given: str, path: str) -> None:
    if path.lower().endswith((".yaml", ".yml")):
        raise UsageError(f"refusing to write output to {given}: convcost writes no YAML, and a .yaml/.yml path is "
                         "probably a spec")


def check_output(path: str, protect: Iterable[str] = (), *, writes_spec: bool = False) -> Target:
    """Where ``--output path`` will be written; refuses (:class:`UsageError`) a target that could
    destroy something: a ``.yaml``/``.yml`` path (convcost writes YAML only where ``writes_spec`` says
    so, ``convcost import``, which also keeps an existing file unless --force) also behind a symlink,
    a spec given on the command line, the regular file standard input reads, and anything that is
    neither a regular file, a character device nor a FIFO."""
    real = os.path.realpath(path)
    if not writes_spec:
        _refuse_yaml(path, path)
    for spec in protect:
        if spec in (None, "-"):
            continue
        same = os.path.realpath(spec) == real
        if not same and os.path.exists(path) and os.path.exists(spec):
            try:
                same = os.path.samefile(path, spec)
            except OSError:
                same = False
        if same:
            raise UsageError(f"refusing to write output over the spec {spec}")
    if not writes_spec:
        _refuse_yaml(path, real)  # a symlink's target too
    try:
        info = os.stat(path)  # through symlinks
    except FileNotFoundError:
        directory = os.path.dirname(real) or "."
        if not os.path.isdir(directory):
            raise UsageError(f"cannot write {path}: there is no directory {directory}") from None
        return Target(path, real, "replace")  # a new file (a dangling symlink's target is created)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    for test, what in _KINDS:
        if test(info.st_mode):
            raise UsageError(f"refusing to write output to {path}: it is {what}")
    if stat.S_ISREG(info.st_mode) and _same(_fstat(sys.stdin), info):
        raise UsageError(f"refusing to write output to {path}: it is the file standard input reads")
    for name in ("stdout", "stderr"):  # /dev/stdout and the like: the stream as it is (a `>>` keeps appending)
        if _same(_fstat(getattr(sys, name)), info):
            return Target(path, path, name)
    if stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        return Target(path, path, "in place")
    return Target(path, real, "replace")


def _write_in_place(target: Target, chunks: Payload) -> None:
    """A character device or FIFO, written as it is (opening a FIFO waits for its reader, like a shell)."""
    try:
        handle = os.open(target.path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OutputError(f"cannot write {target.given}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(handle).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):  # replaced since it was checked
            raise OutputError(f"cannot write {target.given}: it changed while being opened")
        with os.fdopen(handle, "w", encoding="utf-8", newline="", closefd=False) as stream:
            _write_to(stream, chunks)
    except OSError as exc:
        raise OutputError(f"cannot write {target.given}: {exc.strerror or exc}") from None
    finally:
        os.close(handle)


def write_atomic(path: str, text: str | Payload, protect: Iterable[str] = (), *, writes_spec: bool = False) -> None:
    """Write ``text`` (a string, strings one after another, or bytes) to ``path`` as :func:`emit` writes
    ``--output``: for a regular file, a temporary file beside it renamed over it."""
    target = check_output(path, protect, writes_spec=writes_spec)
    chunks: Payload = (text,) if isinstance(text, str) else text
    if target.how == "replace":
        _write_replacing(target, chunks)
    elif target.how == "in place":
        _write_in_place(target, chunks)
    else:
        _write_stream(chunks, target.how)


#: Signals that end a write by removing its temporary file first: SIGINT raises KeyboardInterrupt
#: anyway; SIGTERM and SIGHUP get a handler only while a temporary file exists.
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # as a shell reports a process killed by the signal


@contextlib.contextmanager
def _removed_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP raise SystemExit (so ``finally`` blocks run) while the block runs, then the
    previous handlers come back. Outside the main thread Python cannot install handlers: nothing changes."""
    previous: dict[int, Any] = {}
    try:
        for signum in _SIGNALS:
            if signum != signal.SIGINT:
                previous[signum] = signal.signal(signum, _terminated)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _block_signals() -> Any:
    mask = getattr(signal, "pthread_sigmask", None)
    return mask(signal.SIG_BLOCK, _SIGNALS) if mask is not None else None


def _restore_signals(blocked: Any) -> None:
    if blocked is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _write_replacing(target: Target, chunks: Payload) -> None:
    """A regular file (or a new one): a temporary file beside it, renamed over it when complete.
    Readers see the old file or the new one, never half of it; through a symlink the target is replaced."""
    path = target.path
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with _removed_on_termination():
        temporary: str | None = None
        blocked = _block_signals()  # until `temporary` names the file, so a signal cannot leave it behind
        try:
            try:
                handle, temporary = tempfile.mkstemp(prefix=".convcost-", suffix=".tmp", dir=directory)
            finally:
                _restore_signals(blocked)  # a signal pending since is handled from here on, inside this `try`
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                _write_to(stream, chunks)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, path)
            temporary = None
        except OSError as exc:
            raise OutputError(f"cannot write {target.given}: {exc.strerror or exc}") from None
        finally:
            if temporary is not None:
                _remove(temporary)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
