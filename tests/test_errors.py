"""Bad input never shows a traceback: one line naming file, line and layer, exit code 2."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from convcost import loads
from convcost.cli import app
from convcost.errors import SpecError

runner = CliRunner()

CASES = {
    # name: (spec text, line of the error, layer named in the message or None, words the message must contain)
    "malformed shape": ("input: 3x224y224\nlayers: [relu]\n", 1, None, ["channels-first", "3x224y224"]),
    "zero size": ("input: 3x0x224\nlayers: [relu]\n", 1, None, ["positive", "0"]),
    "negative size": ("input: [3, -4, 4]\nlayers: [relu]\n", 1, None, ["positive", "-4"]),
    "groups do not divide": ("input: 64x8x8\nlayers:\n  - conv: {name: conv2, out: 64, kernel: 3, groups: 3}\n",
                             3, "conv2", ["groups=3", "64 input channels"]),
    "output size <= 0": ("input: 3x4x4\nlayers:\n  - conv: {name: big, out: 8, kernel: 7}\n", 3, "big",
                         ["output size", "<= 0"]),
    "unknown kind": ("input: 3x4x4\nlayers:\n  - relu\n  - convv: {out: 3, kernel: 1}\n", 4, None,
                     ["unknown layer kind 'convv'", "did you mean 'conv'"]),
    "unknown key": ("input: 3x8x8\nlayers:\n  - conv:\n      name: c1\n      out: 8\n      kernal: 3\n", 6, "c1",
                    ["unknown key 'kernal'", "did you mean 'kernel'"]),
    "wrong type": ("input: 3x8x8\nlayers:\n  - conv: {name: c1, out: eight, kernel: 3}\n", 3, "c1",
                   ["'out' must be an integer", "eight"]),
    "wrong bool": ("input: 3x8x8\nlayers:\n  - conv: {name: c1, out: 8, kernel: 3, bias: 1}\n", 3, "c1",
                   ["'bias' must be true or false"]),
    "missing option": ("input: 3x8x8\nlayers:\n  - conv: {name: c1, out: 8}\n", 3, "c1", ["needs 'kernel'"]),
    "malformed yaml": ("input: 3x8x8\nlayers:\n  - conv: {out: 8, kernel: 3\n  - relu\n", 3, None,
                       ["malformed YAML", "flow mapping that starts at line 3"]),
    "bad indentation": ("input: 3x8x8\nlayers:\n  - relu\n - relu\n", 4, None, ["malformed YAML"]),
    "unknown top-level key": ("input: 3x8x8\nlayer:\n  - relu\n", 2, None, ["unknown top-level key 'layer'",
                                                                            "did you mean 'layers'"]),
    "missing layers": ("input: 3x8x8\n", 1, None, ["no 'layers'"]),
    "not a mapping": ("- relu\n", 1, None, ["must be a mapping"]),
    "same with stride": ("input: 3x8x8\nlayers:\n  - conv: {name: c, out: 3, kernel: 3, stride: 2, padding: same}\n",
                         3, "c", ["'same' needs stride 1"]),
    "output padding": ("input: 3x8x8\nlayers:\n  - conv_transpose: {name: t, out: 3, kernel: 3, stride: 2, "
                       "output_padding: 2}\n", 3, "t", ["output_padding=2"]),
    "linear on a 0-size result": ("input: 3x8x8\nlayers:\n  - flatten\n  - linear: {name: fc, out: 0}\n", 4, "fc",
                                  ["'out' must be >= 1"]),
    "conv on features": ("input: 4096\nlayers:\n  - conv: {name: c, out: 3, kernel: 1}\n", 3, "c",
                         ["needs a CxL, CxHxW or CxDxHxW input", "4096"]),
    "concat spatial mismatch": (
        "input: 8x8x8\nlayers:\n  - concat:\n      name: m\n      branches:\n        - [pointwise: {out: 4}]\n"
        "        - [max_pool: {kernel: 2}]\n", 3, "m.concat", ["4x8x8", "8x4x4"]),
    "add shape mismatch": ("input: 8x8x8\nlayers:\n  - residual:\n      name: r\n      body: [pointwise: {out: 4}]\n",
                           3, "r.add", ["4x8x8", "8x8x8"]),
    "duplicate name": ("input: 3x8x8\nlayers:\n  - relu: {name: a}\n  - relu: {name: a}\n", 4, "a",
                       ["duplicate layer name 'a'"]),
    "unknown template param": (
        "input: 3x8x8\nblocks:\n  b:\n    params: [width]\n    layers: [conv: {out: $widht, kernel: 1}]\n"
        "layers:\n  - b: {name: x, width: 4}\n", 5, "x.conv_1", ["unknown parameter '$widht'", "did you mean 'width'"]),
    "missing template param": (
        "input: 3x8x8\nblocks:\n  b:\n    params: [width]\n    layers: [conv: {out: $width, kernel: 1}]\n"
        "layers:\n  - b: {name: x}\n", 7, "x", ["needs parameter 'width'"]),
    "recursive template": ("input: 3x8x8\nblocks:\n  b:\n    layers: [b]\nlayers:\n  - b\n", 4, None, ["uses itself"]),
    "bad repeat": ("input: 3x8x8\nlayers:\n  - relu: {repeat: -1}\n", 3, None, ["'repeat' must be"]),
    "alias bomb": ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)), None, None, ["alias bomb"]),
    "python tag": ("input: !!python/object/apply:os.system ['echo hi']\nlayers: [relu]\n", 1, None,
                   ["YAML tag", "python/object"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_library_raises_located_spec_error(case):
    text, line, layer, words = CASES[case]
    with pytest.raises(SpecError) as info:
        loads(text, source="draft.yaml")
    error = info.value
    message = error.format()
    assert message.startswith("draft.yaml:")
    if line is not None:
        assert error.where is not None and error.where.line == line, message
    if layer is not None:
        assert f"layer '{layer}'" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_prints_a_line_per_problem_and_exits_2(case, tmp_path):
    text = CASES[case][0]
    spec = tmp_path / "draft.yaml"
    spec.write_text(text)
    result = runner.invoke(app, ["analyze", str(spec), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    # every problem at once, as check lists them: one line each, the case's own problem among them
    check = runner.invoke(app, ["check", str(spec)])
    assert [line.removeprefix("convcost: error: ") for line in lines] == check.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert all(line.startswith(f"convcost: error: {spec}") for line in lines)
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_file_and_bad_utf8(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "cannot read spec" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"input: 3x8x8\nlayers: [\xff]\n")
    result = runner.invoke(app, ["analyze", str(bad)])
    assert result.exit_code == 2 and "UTF-8" in result.stderr


def test_error_points_at_the_key_line_in_block_style():
    text = textwrap.dedent("""\
        input: 3x32x32
        layers:
          - conv:
              name: stem
              out: 16
              kernel: 3
              stride: 0
        """)
    with pytest.raises(SpecError) as info:
        loads(text, "net.yaml")
    assert info.value.format().startswith("net.yaml:7:")
    assert "layer 'stem'" in info.value.format() and "'stride'" in info.value.format()
