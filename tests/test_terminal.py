"""The CLI in a real terminal: a pseudo-terminal of 60, 80 and 120 columns (issue 13 item 2).

The process sees a tty on stdout, so the table is drawn the way a user sees it: fitted to the
terminal's width, with colour, bold totals and box-drawing rules; NO_COLOR and TERM=dumb give plain
ASCII there too. (Pipes and files are covered by the CliRunner tests: natural width, ASCII.)
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOLD_TOTAL = re.compile(r"\x1b\[1m(?:\x1b\[[0-9;]*m)*Total:")


def in_terminal(args: list[str], columns: int, **env: str) -> str:
    """Run ``python -m convcost ARGS`` with a pseudo-terminal of ``columns`` x 50 as its stdout and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environment = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES", "NO_COLOR")}
    environment.update({"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), **env})
    process = subprocess.Popen([sys.executable, "-m", "convcost", *args], stdin=subprocess.DEVNULL, stdout=slave,
                               stderr=slave, cwd=ROOT, env=environment, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError("no output for 60 s")
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


COMMANDS = {
    "analyze": ["analyze", "examples/googlenet.yaml"],
    "compare": ["compare", "examples/googlenet.yaml"],
    "sweep": ["sweep", "examples/googlenet.yaml", "--layer", "inception_3a.branch2.conv_2", "--widths", "8:96:8",
              "--kernels", "3,5"],
}


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_terminal_gets_a_fitted_coloured_table(command: str, columns: int) -> None:
    raw = in_terminal(COMMANDS[command], columns)
    text = ANSI.sub("", raw)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in text
    assert "─" in text  # box-drawing rules on a terminal
    assert ANSI.search(raw)  # colour and bold
    if command == "analyze":
        assert BOLD_TOTAL.search(raw), "the totals line is bold"
        assert any(line.startswith("Total:") for line in lines[-2:])  # the last lines on screen: the totals
    if command == "compare":
        assert "→" in text


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_color_and_a_dumb_terminal_get_plain_ascii(command: str, env: dict[str, str]) -> None:
    raw = in_terminal(COMMANDS[command], 80, **env)
    assert not ANSI.search(raw), "no colour"
    assert raw.isascii(), "no box, arrow or bar characters"
    assert max(len(line) for line in raw.splitlines()) <= 80


def test_a_table_past_5000_lines_is_plain_on_a_terminal_and_says_so(tmp_path: Path) -> None:
    """Issue 14 item 9: styling every line of a long table would cost more than the analysis."""
    layers = "".join("  - relu\n" for _ in range(5_100))
    spec = tmp_path / "long.yaml"
    spec.write_text(f"input: 4x8x8\nlayers:\n{layers}")
    raw = in_terminal(["analyze", str(spec)], 100)
    assert "convcost: note: " in raw and "a plain table (no colour) past 5,000" in raw
    assert not ANSI.search(raw)
    assert "relu_5100" in raw
