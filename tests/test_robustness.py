"""Issue 14: nothing the user wrote is lost, no traceback, bounded time and memory, on the inputs an
adversarial probe found. One section per numbered item of the issue; each test failed before its fix
(checked against commit f2c51c5) unless its docstring says otherwise.

Real processes (subprocess) where the operating system is the point: devices, FIFOs, signals, closed
pipes, full disks, stdin redirected from a file. typer's CliRunner elsewhere.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcost import analyze, loads
from convcost.bottleneck import BottleneckRule, insert_bottlenecks
from convcost.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "one_by_one.yaml")
EXAMPLE_TEXT = Path(EXAMPLE).read_text()
runner = CliRunner()

#: Every command, reading its spec from a file (``schema`` reads none).
COMMANDS = {
    "analyze": ["analyze", EXAMPLE],
    "compare": ["compare", EXAMPLE, "--bottleneck", "8"],
    "sweep": ["sweep", EXAMPLE, "--fractions", "0.25,0.5"],
    "check": ["check", EXAMPLE],
    "schema": ["schema"],
}
FORMATS = ("json", "table", "markdown", "csv")


def cases() -> list[tuple[str, str]]:
    return [(name, fmt) for name in COMMANDS for fmt in FORMATS if name != "schema" or fmt == "json"]


def convcost(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """``python -m convcost ARGS`` in a real process (bytes in and out)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "convcost", *args], cwd=ROOT, timeout=120, **kwargs)


def one_error_line(stderr: str | bytes) -> str:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcost: error: "), text
    assert "Traceback" not in text
    return lines[0]


def device_copy(path: Path, major: int, minor: int) -> Path:
    """A character device node like /dev/null (1, 3) or /dev/full (1, 7), made in a temporary directory,
    as the probe did: if convcost replaced it, only the copy would be lost."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    except (PermissionError, AttributeError):
        pytest.skip("making device nodes needs root")
    return path


def assert_char_device(path: Path, major: int, minor: int) -> None:
    info = os.lstat(path)
    assert stat.S_ISCHR(info.st_mode), f"{path} was replaced by a non-device"
    assert (os.major(info.st_rdev), os.minor(info.st_rdev)) == (major, minor)


# --------------------------------------------------------------------------- 1, 2: --output targets


def test_output_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target.name)
    result = runner.invoke(app, ["analyze", EXAMPLE, "--json", "--output", str(link)])
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == target.name
    assert json.loads(target.read_text())["totals"]["macs"] == 12_443_648  # README: 2,408,448 + 10,035,200
    dangling = tmp_path / "next.json"
    dangling.symlink_to("made.json")
    assert runner.invoke(app, ["analyze", EXAMPLE, "--json", "--output", str(dangling)]).exit_code == 0
    assert dangling.is_symlink() and json.loads((tmp_path / "made.json").read_text())["totals"]["macs"] == 12_443_648
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "made.json", "next.json", "report.json"]


def test_character_devices_are_written_in_place(tmp_path: Path) -> None:
    null = device_copy(tmp_path / "null", 1, 3)
    full = device_copy(tmp_path / "full", 1, 7)
    for fmt in FORMATS:
        result = convcost("analyze", EXAMPLE, "--format", fmt, "--output", str(null))
        assert result.returncode == 0 and result.stderr == b"", result.stderr
        assert_char_device(null, 1, 3)
        result = convcost("analyze", EXAMPLE, "--format", fmt, "--output", str(full))
        assert result.returncode == 74
        assert one_error_line(result.stderr) == f"convcost: error: cannot write {full}: No space left on device"
        assert_char_device(full, 1, 7)
    link = tmp_path / "to-null"
    link.symlink_to(null)
    assert convcost("check", EXAMPLE, "--output", str(link)).returncode == 0
    assert link.is_symlink()
    assert_char_device(null, 1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null", "to-null"]  # no temporary file left


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = convcost("analyze", EXAMPLE, "--format", "csv", "--output", str(fifo))
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    rows = list(csv.DictReader(io.StringIO(received[0].decode())))
    assert [int(row["macs"]) for row in rows] == [2_408_448, 10_035_200]


def test_dev_stdout_writes_to_stdout_as_it_is(tmp_path: Path) -> None:
    # /dev/stdout is a symlink to /proc/self/fd/1; a copy of it in tmp_path is used, so that a regression
    # (the rename over /dev/stdout the probe found) can only replace the copy, never the system's.
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    piped = convcost("analyze", EXAMPLE, "--json", "--output", str(stdout))
    assert piped.returncode == 0 and json.loads(piped.stdout)["totals"]["macs"] == 12_443_648
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    with open(log, "a") as appended:  # `>> log.txt`: what was there stays
        done = convcost("analyze", EXAMPLE, "--format", "csv", "--output", str(stdout), stdout=appended)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line" and lines[1].startswith("index,name,kind")
    assert stdout.is_symlink() and os.readlink(stdout) == "/proc/self/fd/1"
    stderr = tmp_path / "stderr"  # the same for /dev/stderr with `2>> errors.txt`
    stderr.symlink_to("/proc/self/fd/2")
    errors = tmp_path / "errors.txt"
    errors.write_text("earlier error\n")
    with open(errors, "a") as appended:
        done = convcost("analyze", EXAMPLE, "--format", "csv", "--output", str(stderr), stderr=appended)
    assert done.returncode == 0
    lines = errors.read_text().splitlines()
    assert lines[0] == "earlier error" and lines[1].startswith("index,name,kind")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["errors.txt", "log.txt", "stderr", "stdout"]


def test_directories_sockets_and_block_devices_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "reports"
    directory.mkdir()
    sock = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    targets = [(directory, "a directory"), (sock, "a socket")]
    try:
        block = tmp_path / "block"
        os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(7, 250))
        targets.append((block, "a block device"))
    except PermissionError:
        pass
    try:
        for path, what in targets:
            before = os.lstat(path)
            result = runner.invoke(app, ["analyze", EXAMPLE, "--output", str(path)])
            assert result.exit_code == 2
            assert one_error_line(result.stderr) == f"convcost: error: refusing to write output to {path}: it is {what}"
            after = os.lstat(path)
            assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
        assert list(directory.iterdir()) == []
    finally:
        server.close()


@pytest.mark.parametrize("command", ["analyze", "check"])
def test_the_file_stdin_reads_is_never_the_output(tmp_path: Path, command: str) -> None:
    draft = tmp_path / "draft.txt"
    draft.write_text(EXAMPLE_TEXT)
    with open(draft, "rb") as stdin:
        result = convcost(command, "-", "--json", "--output", str(draft), stdin=stdin)
    assert result.returncode == 2
    assert one_error_line(result.stderr).endswith(f"refusing to write output to {draft}: it is the file standard "
                                                  "input reads")
    assert draft.read_text() == EXAMPLE_TEXT


#: Runs the CLI with fsync stalled: the temporary file exists until a signal arrives. It says
#: "writing" on the file descriptor given first, then waits.
STALLED_WRITE = """
import os, sys, time
ready = int(sys.argv[1])
def stalled(fd):
    os.write(ready, b"writing\\n")
    time.sleep(120)
os.fsync = stalled
from convcost.cli import main
sys.argv = ["convcost", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_while_writing_removes_the_temporary_file(tmp_path: Path, signum: signal.Signals) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    ready_r, ready_w = os.pipe()
    process = subprocess.Popen([sys.executable, "-c", STALLED_WRITE, str(ready_w), "analyze", EXAMPLE, "--json",
                                "--output", str(target)], cwd=ROOT, pass_fds=(ready_w,), stderr=subprocess.PIPE)
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        assert ready.readline() == b"writing\n"
    assert len(list(tmp_path.glob(".convcost-*.tmp"))) == 1
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr  # as a shell reports death by that signal
    assert b"Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert target.read_text() == "old"


def test_the_signal_handlers_are_the_previous_ones_outside_a_write(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from convcost.cli.output import write_atomic

    previous = signal.getsignal(signal.SIGTERM)
    during: list[Any] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (during.append(signal.getsignal(signal.SIGTERM)), real_fsync(fd)))
    write_atomic(str(tmp_path / "out.txt"), "text\n")
    assert len(during) == 1 and during[0] not in (previous, signal.SIG_DFL)  # convcost's, while the file exists
    assert signal.getsignal(signal.SIGTERM) is previous
    assert (tmp_path / "out.txt").read_text() == "text\n"


# --------------------------------------------------------------------------- exit codes, failing I/O


class FailingStream(io.TextIOBase):
    """A standard stream whose every read or write fails with ``error``."""

    def __init__(self, error: OSError):
        self.error = error

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        raise self.error

    def write(self, text: str) -> int:
        raise self.error

    def isatty(self) -> bool:
        return False


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *,
                   stdout: Any = None, stdin: Any = None) -> tuple[int, str]:
    """The CLI as its console script runs it, with stdout or stdin swapped; (exit code, stderr)."""
    command = typer.main.get_command(app)
    if stdout is not None:
        monkeypatch.setattr(sys, "stdout", stdout)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", stdin)
    code = command.main(args=args, prog_name="convcost", standalone_mode=False)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("command", "fmt"), cases())
def test_every_command_with_a_full_disk_says_so_in_one_line_and_exits_74(
        command: str, fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    args = [*COMMANDS[command], "--format", fmt] if command != "schema" else COMMANDS[command]
    code, stderr = run_in_process(args, capsys, monkeypatch, stdout=FailingStream(OSError(errno.ENOSPC,
                                                                                         "No space left on device")))
    assert code == 74
    assert one_error_line(stderr) == "convcost: error: cannot write to standard output: No space left on device"


@pytest.mark.parametrize(("command", "fmt"), cases())
def test_every_command_with_a_closed_pipe_ends_quietly_with_74(
        command: str, fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    args = [*COMMANDS[command], "--format", fmt] if command != "schema" else COMMANDS[command]
    code, stderr = run_in_process(args, capsys, monkeypatch, stdout=FailingStream(BrokenPipeError(errno.EPIPE,
                                                                                                  "Broken pipe")))
    assert (code, stderr) == (74, "")


@pytest.mark.parametrize("command", [name for name in COMMANDS if name != "schema"])
def test_every_command_with_a_failing_reader_says_so_in_one_line(
        command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["-" if arg == EXAMPLE else arg for arg in COMMANDS[command]]
    code, stderr = run_in_process(args, capsys, monkeypatch, stdin=FailingStream(OSError(errno.EIO,
                                                                                        "Input/output error")))
    assert code == 2
    [line] = stderr.splitlines()
    assert line.endswith("<stdin>: cannot read spec: Input/output error"), line


@pytest.mark.parametrize(("command", "fmt"), cases())
def test_real_processes_on_a_full_disk_and_a_closed_pipe(command: str, fmt: str) -> None:
    args = [*COMMANDS[command], "--format", fmt] if command != "schema" else COMMANDS[command]
    with open("/dev/full", "w") as full:
        result = convcost(*args, stdout=full)
    assert result.returncode == 74
    assert one_error_line(result.stderr) == "convcost: error: cannot write to standard output: No space left on device"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte, whatever the size of the output
    try:
        result = convcost(*args, stdout=write_end)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (74, b"")


def test_an_unexpected_exception_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    import convcost.cli.analyze

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(convcost.cli.analyze, "analyze_network", broken)
    result = runner.invoke(app, ["analyze", EXAMPLE])
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == ("convcost: error: internal error (please report it): RecursionError: "
                                             "maximum recursion depth exceeded")


@pytest.mark.parametrize("args", [["analyze", "--batch", "x"], ["anlyze"], ["--bogus"], ["check"],
                                  ["sweep", "--limit", ""], ["analyze", EXAMPLE, "--depth", "-"]])
def test_usage_errors_are_one_line_and_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--help" in one_error_line(result.stderr)


# --------------------------------------------------------------------------- 3: stdin that is not UTF-8

NOT_UTF8 = b"name: caf\xe9\ninput: 3x8x8\nlayers: [relu]\n"


def test_stdin_that_is_not_utf8_is_one_line_and_check_goes_on() -> None:
    result = convcost("analyze", "-", input=NOT_UTF8)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == "convcost: error: <stdin>: spec is not valid UTF-8 (byte 9)"
    result = convcost("check", "-", EXAMPLE, input=NOT_UTF8)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == ["<stdin>: spec is not valid UTF-8 (byte 9)"]
    summary = result.stdout.decode().splitlines()
    assert summary[0] == "<stdin>: invalid: 1 problem"
    assert summary[1].startswith(f"{EXAMPLE}: ok: 12.4 M MACs")
    assert runner.invoke(app, ["analyze", "-"], input=NOT_UTF8).exit_code == 2  # and under CliRunner


# --------------------------------------------------------------------------- 4: ${...} bounds


@pytest.mark.parametrize("expression", [
    "-" * 990 + "1",  # unary minus: a deep syntax tree
    "(" * 330 + "1" + ")" * 330,  # nested parentheses
    "1" * 4301,  # past Python's 4,300-digit int conversion limit
], ids=["990-minus-signs", "330-parentheses", "4301-digits"])
def test_expressions_are_bounded_in_one_line_and_check_goes_on(tmp_path: Path, expression: str) -> None:
    """Fixed before this issue (expressions.py bounds length and digits since f2c51c5); kept as a regression
    test through the CLI."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"input: 3x8x8\nblocks:\n  b: {{params: [k], layers: [{{conv: {{out: 4, kernel: '${{{expression}}}'"
                   f"}}}}]}}\nlayers:\n  - b: {{k: 3}}\n")
    result = runner.invoke(app, ["analyze", str(bad)])
    assert result.exit_code == 2
    assert "expression" in one_error_line(result.stderr)
    result = runner.invoke(app, ["check", str(bad), EXAMPLE])
    assert result.exit_code == 2
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [str(bad)]
    assert result.stdout.splitlines()[1].startswith(f"{EXAMPLE}: ok:")


# --------------------------------------------------------------------------- 5: sweep beyond int64

LAYER = ["--input", "64x8x8", "--out", "64", "--kernel", "3"]
NOTE = "convcost: note: values beyond 64-bit integers: the sweep computed with exact Python integers (slower)\n"


def sweep_rows(args: list[str]) -> tuple[list[dict[str, str]], str]:
    result = runner.invoke(app, ["sweep", *args, "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout))), result.stderr


def test_a_width_past_int64_is_exact() -> None:
    rows, stderr = sweep_rows([*LAYER, "--widths", f"4,{2**63}"])
    assert stderr == NOTE
    narrow, huge = rows
    # 64x8x8, 3x3 conv, no padding: a 6x6 output; 36 x 64 x 64 x 9 MACs without a bottleneck.
    assert (int(huge["width"]), huge["applied"], int(huge["macs"])) == (2**63, "0", 36 * 64 * 64 * 9)
    assert int(narrow["macs"]) == 8 * 8 * 64 * 4 + 36 * 64 * 4 * 9  # 1x1 to 4 channels, then the 3x3 from 4


def test_a_resolution_past_int64_is_exact() -> None:
    r = 10**20
    rows, stderr = sweep_rows([*LAYER, "--widths", "4", "--resolutions", f"8,{r}"])
    assert stderr == NOTE
    huge = rows[1]
    assert int(huge["resolution"]) == r
    assert int(huge["baseline_macs"]) == (r - 2) ** 2 * 64 * 64 * 9
    assert int(huge["macs"]) == r * r * 64 * 4 + (r - 2) ** 2 * 64 * 4 * 9
    assert int(huge["peak_activation_bytes"]) == 4 * max(r * r * (64 + 4), r * r * 4 + (r - 2) ** 2 * 64)


def test_a_whole_spec_sweep_with_a_tensor_past_int64_is_exact() -> None:
    """The input holds 3.1e9^2 > 2^63 elements before the first conv the sweep rewrites."""
    text = ("input: 1x3100000000x3100000000\nlayers:\n  - max_pool: {kernel: 100000, stride: 100000}\n"
            "  - conv: {out: 16, kernel: 3, padding: 1}\n  - conv: {out: 16, kernel: 3, padding: 1}\n")
    assert 3_100_000_000**2 > 2**63
    result = runner.invoke(app, ["sweep", "-", "--fractions", "0.25,0.5", "--format", "csv"], input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == NOTE
    network = loads(text)
    for row in csv.DictReader(io.StringIO(result.stdout)):  # the scalar engine, point by point
        rule = BottleneckRule(fraction=Fraction(row["width"]))
        totals = analyze(insert_bottlenecks(network, rule)).totals
        assert (int(row["macs"]), int(row["params"]), int(row["peak_activation_bytes"])) == (
            totals.macs, totals.params, totals.peak_activation_bytes)


def test_a_5000_digit_width_is_one_line() -> None:
    result = runner.invoke(app, ["sweep", *LAYER, "--widths", "9" * 5000])
    assert result.exit_code == 2
    assert "at most 30 digits" in one_error_line(result.stderr)


# --------------------------------------------------------------------------- 7: template fan-out


def fan_out(levels: int) -> str:
    """Block i uses block i+1 twice: 2^levels relus from a few hundred bytes."""
    lines = ["input: 3x8x8", "blocks:"]
    lines += [f"  b{i}: {{layers: [b{i + 1}, b{i + 1}]}}" for i in range(levels - 1)]
    lines += [f"  b{levels - 1}: {{layers: [relu, relu]}}", "layers: [b0]"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [21, 40])
def test_template_fan_out_is_refused_before_building(levels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The time and memory (under a second, under 100 MB) are measured in benchmarks/bench_fanout.py."""
    text = fan_out(levels)
    assert len(text.encode()) < 1200
    result = runner.invoke(app, ["analyze", "-"], input=text)
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (
        f"convcost: error: <stdin>:{levels + 3}:10: network expands to more than 2,000,000 layers "
        f"(counted before building: up to {2**levels:,} by this entry)")
    check = runner.invoke(app, ["check", "-"], input=text)
    assert check.exit_code == 2 and "counted before building" in check.stderr


def test_a_fan_out_whose_every_instance_differs_is_refused_by_the_step_limit() -> None:
    """No two instances share a count (each binds its own n, which a repeat reads): the count stops at its
    step limit instead of walking 2^22 instances (benchmarks/bench_fanout.py: 0.5 s, 27 MiB)."""
    count = "{relu: {repeat: '${n - n + 1}'}}"
    lines = ["input: 3x8x8", "blocks:"]
    lines += [f"  b{i}: {{params: [n], layers: [{count}, {{b{i + 1}: {{n: '${{n * 2}}'}}}}, "
              f"{{b{i + 1}: {{n: '${{n * 2 + 1}}'}}}}]}}" for i in range(21)]
    lines += [f"  b21: {{params: [n], layers: [{count}]}}", "layers: [{b0: {n: 1}}]"]
    result = runner.invoke(app, ["analyze", "-"], input="\n".join(lines) + "\n")
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == ("convcost: error: <stdin>:1:1: the spec's templates take more than "
                                             "25,000 steps to count (instances whose parameters change a 'repeat'); "
                                             "refused before building")


def test_a_repeat_only_building_can_know_counts_once_and_builds() -> None:
    text = ("input: 8x4x4\nblocks:\n  b: {layers: [{relu: {repeat: '${in_channels // 4}'}}]}\n"
            "layers: [b, {conv: {out: 12, kernel: 1}}, b]\n")
    from convcost.expansion import count_layers
    from convcost.spec import loads_spec

    assert count_layers(loads_spec(text)) == 3  # each use of b counted once: in_channels is not known yet
    result = runner.invoke(app, ["analyze", "-", "--json"], input=text)
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["layers"]) == 2 + 1 + 3  # 8 // 4 relus, the conv, 12 // 4 relus


def test_the_count_is_the_built_layers_on_every_example() -> None:
    """Without ``if:`` or a repeat that only building can know, the count is exact: every example built
    and its layers counted."""
    from convcost.builder import build_network
    from convcost.expansion import count_layers
    from convcost.spec import load_spec

    conditional = 0
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        spec = load_spec(str(path))
        built = len(build_network(spec).nodes)
        if "if:" in path.read_text():  # an entry with if: counts as present: an upper bound
            conditional += 1
            assert built <= count_layers(spec) < 2 * built, path.name
        else:
            assert count_layers(spec) == built, path.name
    assert conditional == 2  # efficientnet_b0 (250 counted, 240 built) and fpn_resnet50 (211, 187)


def random_template_spec(rnd: Any) -> str:
    """Templates using each other with repeats from parameters ($n, ${n + 1}, ${n // 2}); every entry keeps
    8 channels (a concat or dense join is followed by a 1x1 conv back to 8), so every spec builds."""
    names = [f"t{i}" for i in range(rnd.randint(1, 4))]

    def entries(depth: int, level: int, params: bool) -> list[str]:
        out: list[str] = []
        for _ in range(rnd.randint(1, 3)):
            repeat = rnd.choice(["", "", f", repeat: {rnd.randint(1, 3)}"]
                                + ([", repeat: $n", ", repeat: '${n + 1}'", ", repeat: '${n // 2 + 1}'"] if params
                                   else []))
            choice = rnd.randrange(7 if depth < 3 else 2)
            if choice == 0:
                out.append(f"{{relu: {{inplace: false{repeat}}}}}")
            elif choice == 1:
                out.append(f"{{conv: {{out: 8, kernel: 1{repeat}}}}}")
            elif choice == 2:
                out.append(f"{{sequence: {{layers: [{', '.join(entries(depth + 1, level, params))}]{repeat}}}}}")
            elif choice == 3:
                out.append(f"{{residual: {{body: [{', '.join(entries(depth + 1, level, params))}]{repeat}}}}}")
            elif choice == 4:
                branches = ", ".join(f"[{', '.join(entries(depth + 1, level, params))}]" for _ in range(2))
                out += [f"{{concat: {{branches: [{branches}]}}}}", "{conv: {out: 8, kernel: 1}}"]
            elif choice == 5:
                out += [f"{{dense: {{body: [{', '.join(entries(depth + 1, level, params))}]}}}}",
                        "{conv: {out: 8, kernel: 1}}"]
            elif level + 1 < len(names):  # a later template: no cycles
                value = rnd.choice(["1", "2", "3"] + (["$n", "'${n * 2}'", "'${n + 1}'"] if params else []))
                out.append(f"{{{rnd.choice(names[level + 1:])}: {{n: {value}{repeat}}}}}")
        return out or ["relu"]

    blocks = [f"  {name}: {{params: [n], layers: [{', '.join(entries(1, index, True))}]}}"
              for index, name in enumerate(names)]
    top = entries(0, -1, False)
    return "input: 8x4x4\nblocks:\n" + "\n".join(blocks) + f"\nlayers: [{', '.join(top)}]\n"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(rnd=st.randoms(use_true_random=False))
def test_the_count_matches_building_on_random_templates(rnd: Any) -> None:
    from convcost.builder import build_network
    from convcost.expansion import count_layers
    from convcost.spec import loads_spec

    spec = loads_spec(random_template_spec(rnd))
    assert count_layers(spec) == len(build_network(spec).nodes)


# --------------------------------------------------------------------------- 8: numbers

#: 321 x 28,059,810,762,433 = 2^53 + 1 = 9,007,199,254,740,993 MACs: the first integer a float cannot hold.
LINEAR_2_53_PLUS_1 = "input: 321\nlayers: [{linear: {out: 28059810762433}}]\n"


@pytest.mark.parametrize("written", ["9.007199254740993e+15", "9007199254740993", "'9007199254740993'",
                                     "9007199254740993.0"])
def test_a_budget_is_read_exactly_as_written(written: str) -> None:
    assert 321 * 28_059_810_762_433 == 2**53 + 1
    text = LINEAR_2_53_PLUS_1 + f"budget: {{max_macs: {written}}}\n"
    result = runner.invoke(app, ["check", "-"], input=text)
    assert result.exit_code == 0, result.stdout + result.stderr
    over = runner.invoke(app, ["check", "-"], input=text.replace("28059810762433", "28059810762434"))
    assert over.exit_code == 1


@pytest.mark.parametrize(("written", "words"), [
    ("1.5", "1.5 is not a whole number; write it as an integer or a string"),
    ("1.0001e+3", "is not a whole number; write it as an integer or a string"),
])
def test_a_float_budget_that_is_not_whole_is_refused(written: str, words: str) -> None:
    result = runner.invoke(app, ["check", "-"], input=LINEAR_2_53_PLUS_1 + f"budget: {{max_macs: {written}}}\n")
    assert result.exit_code == 2 and words in result.stderr


def test_a_float_from_the_library_must_be_an_exact_integer() -> None:
    from convcost.units import parse_quantity

    assert parse_quantity(1.5e9) == 1_500_000_000
    for value in (9.007199254740993e15, 0.5):
        with pytest.raises(ValueError, match="write it as an integer or a string"):
            parse_quantity(value)


@pytest.mark.parametrize("args", [
    ["analyze", "--input", "٣x٨x٨", "--out", "4", "--kernel", "3"],
    ["analyze", "--input", "3x8x8", "--out", "٤", "--kernel", "3"],
    ["analyze", "--input", "3x8x8", "--out", "4", "--kernel", "٣"],
    ["analyze", "--input", "3x8x8", "--out", "4", "--kernel", "3", "--batch", "٢"],
    ["sweep", "--input", "3x8x8", "--out", "4", "--kernel", "3", "--widths", "٢"],
    ["compare", "--input", "8x8x8", "--out", "4", "--kernel", "3", "--reduce", "٠.٥"],
    ["check", EXAMPLE, "--max-macs", "٣G"],
], ids=["input", "out", "kernel", "batch", "widths", "reduce", "budget"])
def test_only_ascii_digits_are_numbers_on_the_command_line(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stdout
    one_error_line(result.stderr)


@pytest.mark.parametrize("layer", ['{conv: {out: 4, kernel: "٣"}}', '{conv: {out: 4, kernel: "1x٣"}}',
                                   '{max_pool: {kernel: "٢"}}'])
def test_only_ascii_digits_are_numbers_in_a_spec(layer: str) -> None:
    for shape in ("3x8x8", "٣x8x8"):
        result = runner.invoke(app, ["analyze", "-"], input=f"input: '{shape}'\nlayers: [{layer}]\n")
        assert result.exit_code == 2
        one_error_line(result.stderr)


def test_control_characters_from_a_spec_are_escaped_in_every_message(tmp_path: Path) -> None:
    text = 'input: 3x8x8\nlayers: [relu]\n"\\e[31mred\\u202e\\x07": 1\n'  # ESC, right-to-left override, BEL
    result = runner.invoke(app, ["analyze", "-"], input=text)
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (r"convcost: error: <stdin>:3:1: unknown top-level key "
                                             r"'\x1b[31mred\u202e\x07'")
    named = tmp_path / "\x1b[2Jdraft.yaml"
    named.write_text(text)
    result = runner.invoke(app, ["check", str(named)])
    assert "\x1b" not in result.stdout + result.stderr and "\\x1b[2Jdraft.yaml" in result.stdout
    # the data too: a spec's name is printed in every report, so it may hold no control character
    result = runner.invoke(app, ["analyze", "-"], input='name: "\\e[2Jdraft"\ninput: 3x8x8\nlayers: [relu]\n')
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (r"convcost: error: <stdin>:1:1: 'name' must be printable text without "
                                             r"control characters, got '\x1b[2Jdraft'")
    named.write_text("input: 3x8x8\nlayers: [relu]\n")  # no name: the file's, escaped
    result = runner.invoke(app, ["analyze", str(named)])
    assert result.exit_code == 0 and "\x1b" not in result.stdout and "\\x1b[2Jdraft" in result.stdout


# --------------------------------------------------------------------------- 10: check's report


def test_check_lists_at_most_100_problems_per_spec() -> None:
    text = "input: 3x8x8\nlayers: [relu]\n" + "".join(f"unknown{i}: 1\n" for i in range(300))
    result = runner.invoke(app, ["check", "-"], input=text)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 101
    assert lines[0] == "<stdin>:3:1: unknown top-level key 'unknown0'"
    assert lines[99] == "<stdin>:102:1: unknown top-level key 'unknown99'"
    assert lines[100] == "<stdin>: and 200 more problems (the first 100 are listed)"
    assert result.stdout == "<stdin>: invalid: 300 problems\n"
    data = json.loads(runner.invoke(app, ["check", "-", "--json"], input=text).stdout)
    assert len(data["files"][0]["problems"]) == 100 and data["files"][0]["unlisted_problems"] == 200


def test_check_stops_early_on_thousands_of_duplicate_names() -> None:
    text = "input: 3x8x8\nlayers:\n" + "  - relu: {name: a}\n" * 5000
    result = runner.invoke(app, ["check", "-"], input=text)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) <= 101 and lines[-1] == "<stdin>: stopped after 100 problems"


def test_a_file_name_with_a_newline_keeps_the_summary_one_line_per_spec(tmp_path: Path) -> None:
    named = tmp_path / "two\nlines.yaml"
    named.write_text(EXAMPLE_TEXT)
    for fmt in ("table", "markdown"):
        result = runner.invoke(app, ["check", str(named), EXAMPLE, "--format", fmt])
        assert result.exit_code == 0
        assert "two\\nlines.yaml" in result.stdout
    summary = runner.invoke(app, ["check", str(named), EXAMPLE]).stdout.splitlines()
    assert len(summary) == 3 and summary[2] == "2 specs: 2 ok, 0 over budget, 0 invalid"


# --------------------------------------------------------------------------- 11: what PyTorch refuses
# Measured with torch 2.13.0 (CPU wheel) by `python tests/torch_probe.py` (one module and input per row,
# in this order); its output is copied here as literals. torch is not needed to run these tests.

TORCH_POOLS = [
    # spec layer, input, torch's output shape (C first, batch dropped) or the start of its error
    ("{max_pool1d: {kernel: 3, stride: 3, padding: 2, dilation: 2}}", "1x9",
     "max_pool1d() padding should be at most half of kernel size, but got padding=2 and kernel_size=3"),
    ("{max_pool2d: {kernel: 3, stride: 3, padding: 2, dilation: 2}}", "1x9x9",
     "pad should be smaller than or equal to half of kernel size"),
    ("{max_pool2d: {kernel: 3, stride: 1, padding: 1, dilation: 2}}", "1x9x9", (1, 7, 7)),
    ("{max_pool2d: {kernel: 4, stride: 1, padding: 2}}", "1x9x9", (1, 10, 10)),
    ("{max_pool2d: {kernel: 4, stride: 1, padding: 3}}", "1x9x9",
     "pad should be at most half of effective kernel size, but got pad=3, kernel_size=4 and dilation=1"),
    ("{avg_pool1d: {kernel: 4, stride: 1, padding: 2}}", "1x9", (1, 10)),
    ("{avg_pool2d: {kernel: 3, stride: 1, padding: 2}}", "1x9x9",
     "pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and dilation=1"),
    ("{avg_pool3d: {kernel: 3, stride: 1, padding: 1}}", "1x2x2x2",
     "input image (T: 2 H: 2 W: 2) smaller than kernel size (kT: 3 kH: 3 kW: 3)"),
    ("{avg_pool3d: {kernel: 3, stride: 1, padding: 1}}", "1x2x3x3",
     "input image (T: 2 H: 3 W: 3) smaller than kernel size (kT: 3 kH: 3 kW: 3)"),
    ("{avg_pool3d: {kernel: [1, 3, 3], stride: 1, padding: [0, 1, 1]}}", "1x1x2x2",
     "input image (T: 1 H: 2 W: 2) smaller than kernel size (kT: 1 kH: 3 kW: 3)"),
    ("{avg_pool2d: {kernel: 3, stride: 1, padding: 1}}", "1x2x2", (1, 2, 2)),
    ("{avg_pool1d: {kernel: 3, stride: 1, padding: 1}}", "1x2", (1, 2)),
    ("{max_pool3d: {kernel: 3, stride: 1, padding: 1}}", "1x2x2x2", (1, 2, 2, 2)),
    ("{conv_transpose2d: {out: 1, kernel: 1, padding: 1}}", "1x2x2",
     "Calculated output size per channel: (0 x 0). Output size is too small"),
    ("{conv_transpose1d: {out: 1, kernel: 2, padding: 1}}", "1x1",
     "Calculated output size per channel: (1 x 0). Output size is too small"),
]


@pytest.mark.parametrize(("layer", "shape", "torch"), TORCH_POOLS, ids=[f"{row[0]}@{row[1]}" for row in TORCH_POOLS])
def test_what_pytorch_refuses_is_refused(layer: str, shape: str, torch: Any) -> None:
    result = runner.invoke(app, ["analyze", "-", "--json"], input=f"input: {shape}\nlayers: [{layer}]\n")
    if isinstance(torch, tuple):
        assert result.exit_code == 0, result.stderr
        assert tuple(json.loads(result.stdout)["output_shape"]) == torch
        return
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    # the same rule in convcost's words: which of torch's messages, and what convcost's line says
    rule = {"padding should": "padding should be at most half of kernel size",
            "pad should": "padding should be at most half of kernel size",
            "input image": torch.split(" smaller")[0], "Output size is too small": "is too small"}
    assert next(words for key, words in rule.items() if key in torch) in line, line
