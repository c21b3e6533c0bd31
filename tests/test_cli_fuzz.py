"""The acceptance fuzz of issue 14: the command line as it is used, with hostile input everywhere.

Every command (analyze, compare, sweep, check, schema) gets random bytes or mutated examples on stdin,
random flag values (huge integers, non-ASCII digits, empty, negative, junk) and a random ``--output``
target in a fresh temporary directory: a regular file, a symlink (to a file, or dangling), a FIFO with
a reader thread, character devices (copies of /dev/null and /dev/full), a directory, a socket, a
``.yaml`` file, a missing directory or the spec itself. Whatever happens, it must be:

* exit 0, 2 or 74, or 1 only when a budget was given (``check`` with ``--max-*`` or a ``budget:``);
* no traceback, no "internal error"; stderr empty or one ``convcost: error:`` line (``check`` lists
  one ``file:line: ...`` problem per line instead; a sweep may add one ``convcost: note:`` line);
* every non-regular target as it was (same type, device numbers, link target), the spec and any
  ``.yaml`` file unchanged, and no temporary file left behind.

2,000 cases run in process through typer's CliRunner (the --output targets are real files, devices
and FIFOs all the same); 30 more run as real processes, with stdin redirected from a file that may
also be the output, and stdout on /dev/full or a closed pipe. Under ``CI=1`` hypothesis is
derandomized (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import typer
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcost.cli import app

ROOT = Path(__file__).resolve().parent.parent
SMALL_EXAMPLES = [ROOT / "examples" / name for name in ("one_by_one.yaml", "one_filter.yaml",
                                                        "reduce_192_to_32.yaml", "nin_cifar10.yaml")]
COMMAND = typer.main.get_command(app)  # built once: CliRunner rebuilds it per call otherwise
RUNNER = CliRunner()
PROBLEM_LINE = re.compile(r"^\S.*?(:\d+(:\d+)?)?: \S")

INTEGERS = ["1", "2", "3", "8", "16", "0", "-1", "", " ", str(2**63), str(10**29), "9" * 31, "9" * 5000, "٣", "１２",
            "३", "1_000", "+3", "1e3", "nan", "x", "0x10"]
SHAPES = ["3x8x8", "16x8x8", "8x32", "4x4x8x8", "64", "٣x٨x٨", "3x" + "9" * 40, "0x8x8", "-3x8x8", "", "x",
          f"3x{2**63}x{2**63}", f"{2**63}x8x8", f"{10**9}x8x8", "3×8×8", "3 x 8 x 8"]
AXES = ["1", "2", "3", "1x3", "same", "valid", "0", "-1", "", "٣", "3x٣", "9" * 40, str(2**63), "3x3x3x3"]
KINDS = ["conv", "conv1d", "conv3d", "depthwise", "pointwise", "conv_transpose", "max_pool", "avg_pool3d", "linear",
         "relu", "cnov", ""]
WIDTHS = ["4", "1:8", "2,4,8", "1:8:2", str(2**63), f"4,{2**63}", "9" * 40, "9" * 5000, "", "٣", "-1", "0", "8:1",
          "1:99999999999999999999999999999", "1.5", "4,,8"]
FRACTIONS = ["0.5", "0.25,0.5", "0.1:0.3:0.1", "0", "1", "1.5", "", "٠.٥", "0." + "1" * 40, "0.5:0.1"]
RESOLUTIONS = ["8", "16,32", str(10**20), "٨", "", "-1", "0", "4:6", "1"]
QUANTITIES = ["1G", "1.5G", "0", "-1", "", "٣G", str(10**40), "9" * 5000, "1e9", "8MiB", "x", "1.0001K", "1", "100T"]
DTYPES = ["float32", "int8", "bfloat16", "float64", "", "٣"]
FORMATS = ["json", "table", "markdown", "csv", "xml", ""]
TARGETS = ["none", "dash", "new", "regular", "symlink", "dangling", "fifo", "null", "full", "dir", "socket", "yaml",
           "missing-dir", "spec"]


# --------------------------------------------------------------------------- a case


def stdin_bytes(rnd: random.Random) -> bytes:
    """Random bytes, or an example with random bytes changed, inserted or cut."""
    if rnd.random() < 0.3:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
    text = bytearray(rnd.choice(SMALL_EXAMPLES).read_bytes())
    for _ in range(rnd.randrange(4)):
        at = rnd.randrange(len(text) + 1)
        action = rnd.randrange(3)
        if action == 0 and at < len(text):
            text[at] = rnd.randrange(256)
        elif action == 1:
            text[at:at] = rnd.choice([b"\xe9", b"\x1b[2J", b"\n", b"${", b"-" * 300, b"9" * 40, "٣".encode(), b"&a",
                                      b"*a", b"[", b"budget: {max_macs: 1.5e+3}\n", b"\x00"])
        else:
            del text[at:at + rnd.randrange(20)]
    return bytes(text)


@dataclass
class Case:
    args: list[str]
    stdin: bytes = b""
    target: str = "none"
    budget: bool = False  # a budget was given: exit 1 is allowed
    spec_file: Path | None = None
    notes: list[str] = field(default_factory=list)


def layer_flags(rnd: random.Random) -> list[str]:
    flags = ["--input", rnd.choice(SHAPES)]
    for flag, pool in (("--out", INTEGERS), ("--kernel", AXES), ("--stride", AXES), ("--padding", AXES),
                       ("--dilation", AXES), ("--groups", INTEGERS), ("--output-padding", AXES), ("--kind", KINDS)):
        if rnd.random() < (0.9 if flag in ("--out", "--kernel") else 0.2):
            flags += [flag, rnd.choice(pool)]
    if rnd.random() < 0.1:
        flags.append(rnd.choice(["--bias", "--no-bias"]))
    return flags


def random_case(rnd: random.Random, directory: Path) -> Case:
    command = rnd.choice(["analyze", "analyze", "compare", "sweep", "sweep", "check", "check", "schema"])
    case = Case([command])
    spec_file = directory / "spec.txt"
    if command != "schema":
        source = rnd.random()
        if source < 0.35:
            case.stdin = stdin_bytes(rnd)
            specs = ["-"]
        elif source < 0.6:
            spec_file.write_bytes(stdin_bytes(rnd) if rnd.random() < 0.5 else rnd.choice(SMALL_EXAMPLES).read_bytes())
            case.spec_file = spec_file
            specs = [str(spec_file)]
        elif command == "check":
            specs = [str(rnd.choice(SMALL_EXAMPLES)) for _ in range(rnd.randint(1, 3))]
            specs += rnd.choice([[], [str(directory / "missing.yaml")], [str(directory)]])
        else:
            specs = []
        if command == "check" and not specs:
            specs = [str(rnd.choice(SMALL_EXAMPLES))]
        case.args += specs
        case.budget = b"budget" in case.stdin or (case.spec_file is not None and b"budget" in spec_file.read_bytes())
        if not specs or rnd.random() < 0.05:
            case.args += layer_flags(rnd)
    if command in ("analyze", "compare", "sweep", "check"):
        if rnd.random() < 0.3:
            case.args += ["--batch", rnd.choice(INTEGERS)]
        if rnd.random() < 0.2:
            case.args += ["--dtype", rnd.choice(DTYPES)]
    if command == "analyze" and rnd.random() < 0.3:
        case.args += rnd.choice([["--depth", rnd.choice(INTEGERS)], ["--exact"]])
    if command == "compare":
        choice = rnd.random()
        if choice < 0.4:
            case.args += ["--bottleneck", rnd.choice(INTEGERS)]
        elif choice < 0.8:
            case.args += ["--reduce", rnd.choice(FRACTIONS)]
        for flag in ("--min-kernel", "--min-channels"):
            if rnd.random() < 0.15:
                case.args += [flag, rnd.choice(INTEGERS)]
        if rnd.random() < 0.2:
            case.args.append("--expand")
    if command == "sweep":
        if rnd.random() < 0.6:
            case.args += ["--widths", rnd.choice(WIDTHS)]
        elif rnd.random() < 0.5:
            case.args += ["--fractions", rnd.choice(FRACTIONS)]
        if rnd.random() < 0.3:
            case.args += ["--kernels", rnd.choice(["1,3", "3", "5", "٣", "", str(2**63), "0"])]
        if rnd.random() < 0.3:
            case.args += ["--resolutions", rnd.choice(RESOLUTIONS)]
        if rnd.random() < 0.2:
            case.args += ["--limit", rnd.choice(INTEGERS)]
        if rnd.random() < 0.1:
            case.args += ["--pareto", rnd.choice(["macs,params", "peak", "", "x"])]
    if command == "check":
        for key in ("macs", "flops", "params", "weight-bytes", "peak-memory"):
            if rnd.random() < 0.15:
                case.args += [f"--max-{key}", rnd.choice(QUANTITIES)]
                case.budget = True
    if command == "schema" and rnd.random() < 0.3:
        case.args.append("--report")
    choice = rnd.random()
    if choice < 0.3:
        case.args.append("--json")
    elif choice < 0.8:
        case.args += ["--format", rnd.choice(FORMATS)]
    case.target = rnd.choice(TARGETS)
    return case


# --------------------------------------------------------------------------- --output targets


def make_device(path: Path, major: int, minor: int, stand_in: str) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    except PermissionError:  # not root: a symlink to the real device (which a non-root process cannot replace)
        path.symlink_to(stand_in)


def snapshot(path: Path) -> Any:
    """What must not change about a non-regular file."""
    info = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    return (stat.S_IFMT(info.st_mode), info.st_ino, info.st_rdev, link)


@contextmanager
def fifo_reader(path: Path) -> Iterator[None]:
    """Drain a FIFO while the command runs; unblock the reader if the command never opened it."""
    thread = threading.Thread(target=lambda: path.read_bytes(), daemon=True)
    thread.start()
    try:
        yield
    finally:
        for _ in range(200):
            try:  # if the command never opened it, a writer that closes at once lets the reader see EOF
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader waiting (ENXIO): it has finished, or not started yet
                pass
            thread.join(timeout=0.05)
            if not thread.is_alive():
                break
        assert not thread.is_alive(), "the FIFO reader never finished"


def place_target(case: Case, directory: Path, stack: ExitStack) -> dict[Path, Any]:
    """Make ``case.target`` in ``directory``, add ``--output``; returns what must stay unchanged."""
    keep: dict[Path, Any] = {}
    target = case.target
    if target == "none":
        return keep
    if target == "dash":
        case.args += ["--output", "-"]
        return keep
    path = {"new": directory / "out.txt", "regular": directory / "out.txt", "symlink": directory / "link.txt",
            "dangling": directory / "dangling.txt", "fifo": directory / "pipe", "null": directory / "null",
            "full": directory / "full", "dir": directory / "reports", "socket": directory / "sock",
            "yaml": directory / "draft.yaml", "missing-dir": directory / "no" / "out.txt",
            "spec": case.spec_file or directory / "out.txt"}[target]
    if target in ("regular", "symlink"):
        (directory / "out.txt").write_text("old")
        if target == "symlink":
            path.symlink_to("out.txt")
    elif target == "dangling":
        path.symlink_to("made.txt")
    elif target == "fifo":
        os.mkfifo(path)
        stack.enter_context(fifo_reader(path))
    elif target == "null":
        make_device(path, 1, 3, "/dev/null")
    elif target == "full":
        make_device(path, 1, 7, "/dev/full")
    elif target == "dir":
        path.mkdir()
    elif target == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        stack.callback(server.close)
    elif target == "yaml":
        path.write_text("input: 3x8x8\nlayers: [relu]\n")
    if target in ("symlink", "dangling", "fifo", "null", "full", "dir", "socket"):
        keep[path] = snapshot(path)
    case.args += ["--output", str(path)]
    return keep


PROTECTED = ("spec.txt", "draft.yaml", "stdin.txt")  # a spec, a .yaml file and the file stdin reads


def contents(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in PROTECTED if (directory / name).exists()}


# --------------------------------------------------------------------------- the contract


def assert_contract(case: Case, code: int, stdout: str, stderr: str, directory: Path, keep: dict[Path, Any],
                    before: dict[str, bytes]) -> None:
    where = f"args={case.args!r} stdin={case.stdin[:200]!r} target={case.target}"
    allowed = {0, 2, 74} | ({1} if case.args[0] == "check" and case.budget else set())
    assert code in allowed, f"exit {code}; {where}\n{stderr}"
    assert "Traceback" not in stdout + stderr and "internal error" not in stderr, f"{where}\n{stderr}"
    lines = stderr.splitlines()
    if lines and lines[-1].startswith("convcost: note: "):
        # sweep: exact Python integers; compare: a bottleneck rewrite that changed nothing
        assert case.args[0] in ("sweep", "compare") and code == 0, where
        lines = lines[:-1]
    if code in (0, 1):
        assert lines == [], f"{where}\n{stderr}"
    elif case.args[0] == "check" and lines and not lines[0].startswith("convcost: error: "):
        # one problem per line (exit 2); the summary may then fail to be written (one error line, exit 74)
        problems = lines[:-1] if lines[-1].startswith("convcost: error: ") else lines
        assert all(PROBLEM_LINE.match(line) and not line.startswith("convcost:") for line in problems), \
            f"{where}\n{stderr}"
        assert len(problems) == len(lines) or code == 74, f"{where}\n{stderr}"
    else:
        assert all(line.startswith("convcost: error: ") for line in lines), f"{where}\n{stderr}"
        # several lines only when a spec has several problems: each one located, file:line:col
        assert len(lines) <= 1 or all(re.match(r"convcost: error: .+?:\d+:\d+: ", line) for line in lines), \
            f"{where}\n{stderr}"
    fmt = case.args[case.args.index("--format") + 1] if "--format" in case.args else None
    as_json = "--json" in case.args or fmt == "json"
    if code == 0 and case.target in ("none", "dash") and as_json and stdout:
        json.loads(stdout)
    for path, was in keep.items():
        assert snapshot(path) == was, f"{path.name} was replaced; {where}"
    assert contents(directory) == before, f"a spec or .yaml file changed; {where}"
    leftovers = [p.name for p in directory.rglob(".convcost-*")]
    assert not leftovers, f"temporary files left: {leftovers}; {where}"


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@fuzz(2000)
@given(rnd=st.randoms(use_true_random=False))
def test_the_cli_in_process_holds_its_contract(rnd: random.Random) -> None:
    with tempfile.TemporaryDirectory(prefix="convcost-fuzz-") as name, ExitStack() as stack:
        directory = Path(name)
        case = random_case(rnd, directory)
        keep = place_target(case, directory, stack)
        before = contents(directory)
        with mock.patch.object(typer.testing, "_get_command", lambda _app: COMMAND):
            result = RUNNER.invoke(app, case.args, input=case.stdin)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{case.args!r} raised") from result.exception
        stack.close()  # the FIFO reader ends before the checks
        assert_contract(case, result.exit_code, result.stdout, result.stderr, directory, keep, before)


@fuzz(30)
@given(rnd=st.randoms(use_true_random=False), stdout_kind=st.sampled_from(["pipe", "full", "closed", "file"]))
def test_real_processes_hold_the_contract(rnd: random.Random, stdout_kind: str) -> None:
    """stdin is a real file (which may also be --output); stdout a pipe, /dev/full, a closed pipe or a file."""
    with tempfile.TemporaryDirectory(prefix="convcost-fuzz-") as name, ExitStack() as stack:
        directory = Path(name)
        case = random_case(rnd, directory)
        stdin_file = directory / "stdin.txt"
        stdin_file.write_bytes(case.stdin)
        if rnd.random() < 0.3:
            case.target = "stdin"
            case.args += ["--output", str(stdin_file)]
            keep: dict[Path, Any] = {}
        else:
            keep = place_target(case, directory, stack)
        before = contents(directory)
        stdin = stack.enter_context(open(stdin_file, "rb"))
        if stdout_kind == "full":
            stdout: Any = stack.enter_context(open("/dev/full", "wb"))
        elif stdout_kind == "closed":
            read_end, stdout = os.pipe()
            os.close(read_end)
            stack.callback(os.close, stdout)
        elif stdout_kind == "file":
            stdout = stack.enter_context(open(directory / "stdout.txt", "wb"))
        else:
            stdout = subprocess.PIPE
        done = subprocess.run([sys.executable, "-m", "convcost", *case.args], cwd=ROOT, stdin=stdin, stdout=stdout,
                              stderr=subprocess.PIPE, timeout=120)
        stack.close()
        out = done.stdout.decode(errors="replace") if done.stdout else ""
        if stdout_kind == "file":
            out = (directory / "stdout.txt").read_text(errors="replace")
        assert_contract(case, done.returncode, out, done.stderr.decode(errors="replace"), directory, keep, before)
        if case.target == "stdin":
            assert stdin_file.read_bytes() == case.stdin, "the file stdin read was overwritten"
