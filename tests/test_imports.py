"""Start-up hygiene, checked by what gets imported (not by timing).

`convcost analyze --json` runs in every CI job; it must not pay for numpy (only
sweeps need it).
Checked in a fresh interpreter, since this test process has imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "resnet50.yaml"

PROBE = """
import json, sys
stage = {}
import convcost.cli
stage["import"] = sorted(name for name in ("numpy", "rich", "rich.table", "rich.console") if name in sys.modules)
sys.argv = ["convcost", "analyze", sys.argv[1], "--json"]
try:
    convcost.cli.main()
    code = 0
except SystemExit as exit:
    code = exit.code
sys.stdout.flush()
stage["run"] = sorted(name for name in ("numpy", "rich", "rich.table", "rich.console") if name in sys.modules)
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, **stage}) + "\\n")
"""


def _probe(spec: Path) -> tuple[dict, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-c", PROBE, str(spec)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("PROBE "))
    return json.loads(line[len("PROBE "):]), proc.stdout


def test_analyze_json_does_not_import_numpy():
    result, stdout = _probe(EXAMPLE)
    assert result["code"] == 0
    assert json.loads(stdout)["name"] == "resnet50"  # the run really happened
    assert "numpy" not in result["import"] and "numpy" not in result["run"]


def test_library_import_does_not_import_numpy():
    code = "import sys, convcost; print('numpy' in sys.modules)"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
