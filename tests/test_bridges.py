"""Bridges to real models, as they are used: every example exported to ONNX by convcost and imported back
with an equal report; the commands (import, export, and .onnx files wherever a spec goes) through typer's
CliRunner and real processes; PyTorch source that parses and imports only torch; and, where torch is
installed, the round trip through PyTorch's own ONNX exporter.

"Equal report" here: every total (MACs, FLOPs and their categories, params, buffers, weight, buffer,
input, activation and peak bytes), the outputs' names and shapes, and every layer's kind, shapes and
counts in order. Layer names are equal too, but for one ConvNeXt layer the import renames (docs/onnx.md).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

onnx = pytest.importorskip("onnx")

from convcost import layers  # noqa: E402
from convcost.bridges.export_onnx import EXPORTERS, network_to_onnx  # noqa: E402
from convcost.bridges.export_pytorch import export_pytorch  # noqa: E402
from convcost.bridges.export_pytorch.leaves import LEAVES  # noqa: E402
from convcost.bridges.export_pytorch.scan import JOINS  # noqa: E402
from convcost.bridges.onnx_import import OPS, import_onnx  # noqa: E402
from convcost.builder import build_network  # noqa: E402
from convcost.cli import app  # noqa: E402
from convcost.costs import analyze  # noqa: E402
from convcost.kinds import LAYER_KINDS  # noqa: E402
from convcost.spec import load_spec  # noqa: E402

from .conftest import EXAMPLES, ROOT  # noqa: E402

EXAMPLE_PATHS = sorted(EXAMPLES.glob("*.yaml"))
TOTALS = ("macs", "flops", "flops_by_category", "params", "buffers", "weight_bytes", "buffer_bytes", "input_bytes",
          "activation_bytes", "peak_activation_bytes")
#: Layers the import renames: a name that a nearer tensor of the same name hides (docs/onnx.md).
RENAMED = {"convnext_tiny": {"layer_norm_1": "layer_norm_1_2"}}


def _rows(report):
    return [(row.kind, row.input_shapes, row.output_shape, row.macs, row.flops, row.params, row.buffers,
             row.activation_bytes) for row in report.layers]


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[path.stem for path in EXAMPLE_PATHS])
def test_every_example_round_trips_through_onnx(path):
    network = build_network(load_spec(str(path)))
    imported = import_onnx(network_to_onnx(network), source=f"{path.stem}.onnx")
    before, after = analyze(network), analyze(imported.network)
    for key in TOTALS:
        assert getattr(after.totals, key) == getattr(before.totals, key), key
    renamed = RENAMED.get(path.stem, {})
    assert after.outputs == tuple((renamed.get(name, name), shape) for name, shape in before.outputs)
    assert _rows(after) == _rows(before)
    assert [row.name for row in after.layers] == [renamed.get(row.name, row.name) for row in before.layers]
    assert imported.layers == len(network.nodes) and imported.opaque == ()


def test_every_layer_type_has_an_onnx_exporter():
    assert set(EXPORTERS) == set(typing.get_args(layers.Layer))


def test_every_leaf_layer_kind_has_a_pytorch_module():
    # joins and crops are written in forward; opaque is in the table as an error
    assert set(LEAVES) == set(LAYER_KINDS) - set(JOINS) - {"crop"}


def test_docs_list_every_mapped_op():
    text = (ROOT / "docs" / "onnx.md").read_text()
    listed = {line.split("|")[1].strip().strip("`") for line in text.splitlines()
              if line.startswith("| `")}
    assert listed == set(OPS)


# --------------------------------------------------------------------------- commands


def run(args, cwd=ROOT, **env):
    return CliRunner().invoke(app, args, env={"COLUMNS": "120", "NO_COLOR": "1", **env}, catch_exceptions=False)


def process(*args, cwd=ROOT, code=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    argv = [sys.executable, "-m", "convcost", *args] if code is None else [sys.executable, "-c", code, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """resnet18, unet and two_stream_fusion exported by `convcost export --to onnx`, in a real process."""
    folder = tmp_path_factory.mktemp("onnx")
    paths = {}
    for name in ("resnet18", "unet", "two_stream_fusion"):
        paths[name] = folder / f"{name}.onnx"
        result = process("export", f"examples/{name}.yaml", "--to", "onnx", "-o", str(paths[name]))
        assert result.returncode == 0, result.stderr
        assert result.stdout == "" and result.stderr == ""
    return paths


@pytest.mark.parametrize("name", ["resnet18", "unet", "two_stream_fusion"])
def test_compare_a_draft_with_its_own_export_changes_nothing(exported, name):
    result = run(["compare", f"examples/{name}.yaml", str(exported[name]), "--json"])
    assert result.exit_code == 0, result.stderr
    comparison = json.loads(result.stdout)
    deltas = {key: value for key, value in comparison["delta"].items() if key != "flops_by_category"}
    assert set(deltas.values()) == {0} and set(comparison["delta"]["flops_by_category"].values()) == {0}
    assert all(set(row["delta"].values()) == {0} for row in comparison["layers"])
    assert comparison["candidate"]["totals"]["macs"] == comparison["baseline"]["totals"]["macs"] > 0


def test_analyze_and_check_take_an_onnx_file(exported):
    path = str(exported["resnet18"])
    spec = json.loads(run(["analyze", "examples/resnet18.yaml", "--json"]).stdout)
    model = json.loads(run(["analyze", path, "--json"]).stdout)
    assert model["totals"] == spec["totals"] and model["totals"]["macs"] == 1_814_073_344
    assert model["source"] == path
    over = run(["check", path, "--max-macs", "1.8G"])
    assert over.exit_code == 1 and "resnet18" in over.stdout
    assert run(["check", path, "--max-macs", "1.9G"]).exit_code == 0


def test_import_writes_a_spec_and_keeps_what_exists(exported, tmp_path):
    spec = tmp_path / "unet.yaml"
    result = process("import", str(exported["unet"]), "-o", str(spec))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"convcost: imported {exported['unet']}: 65 ONNX nodes, 49 layers; wrote {spec}\n"
    text = spec.read_text()
    assert "concat: {name: concat_1, from: [upconv, enc4.relu_2], crop: center}" in text
    again = process("import", str(exported["unet"]), "-o", str(spec))
    assert again.returncode == 2 and again.stderr == (
        f"convcost: error: refusing to replace the existing file {spec} (--force replaces it)\n")
    assert spec.read_text() == text
    assert process("import", str(exported["unet"]), "-o", str(spec), "--force").returncode == 0
    over_model = process("import", str(exported["unet"]), "-o", str(exported["unet"]), "--force")
    assert over_model.returncode == 2 and "refusing to write output over the spec" in over_model.stderr
    assert run(["analyze", str(spec), "--json"]).exit_code == 0


def test_import_to_stdout_is_the_spec(exported):
    result = run(["import", str(exported["two_stream_fusion"])])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[3:6] == ["inputs:", "  rgb: 3x128x128", "  depth: 1x128x128"]
    assert "- relu: {name: relu_1, inplace: true}" in result.stdout  # what ONNX cannot say, convcost's export keeps


def test_export_refuses_specs_and_existing_files(tmp_path):
    spec = run(["export", "examples/resnet18.yaml", "--to", "pytorch", "-o", str(tmp_path / "x.yaml")])
    assert spec.exit_code == 2 and "convcost writes no YAML" in spec.stderr
    target = tmp_path / "model.py"
    target.write_text("# my edits\n")
    kept = run(["export", "examples/resnet18.yaml", "--to", "pytorch", "-o", str(target)])
    assert kept.exit_code == 2 and target.read_text() == "# my edits\n"
    assert run(["export", "examples/resnet18.yaml", "--to", "pytorch", "-o", str(target), "--force"]).exit_code == 0
    assert target.read_text().startswith('"""resnet18 as PyTorch modules, exported by convcost.')
    binary = run(["export", "examples/resnet18.yaml", "--to", "onnx"])
    assert binary.exit_code == 2 and "--to onnx writes a binary model" in binary.stderr
    assert run(["export", "examples/resnet18.yaml", "--to", "tf"]).exit_code == 2


def _unknown_model(path: Path) -> None:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Foo", ["r"], ["f1"], name="foo_1", domain="custom"),
             helper.make_node("Foo", ["f1"], ["y"], name="foo_2", domain="custom")]
    value = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 8, 4, 4]) for name in ("x", "f1", "y")]
    graph = helper.make_graph(nodes, "g", value[:1], value[2:], value_info=value[1:2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("custom", 1)])
    onnx.save(model, str(path))


def test_unknown_op_is_an_error_and_allow_unknown_lists_it(tmp_path):
    path = tmp_path / "foo.onnx"
    _unknown_model(path)
    failed = process("import", str(path))
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == (f"convcost: error: {path}: 1 ONNX op convcost cannot map: Foo x2 (first: 'foo_1'); "
                             "--allow-unknown keeps them as zero-cost opaque layers (convcost import MODEL.onnx "
                             "--allow-unknown -o spec.yaml)\n")
    assert process("analyze", str(path)).returncode == 2
    kept = process("import", str(path), "--allow-unknown", "-o", str(tmp_path / "foo.yaml"))
    assert kept.returncode == 0, kept.stderr
    assert kept.stderr.splitlines()[1] == ("convcost: opaque layers (zero cost by declaration, shapes kept): Foo x2 "
                                           "(first: 'foo_1')")
    text = (tmp_path / "foo.yaml").read_text()
    assert "# Opaque layers (zero cost by declaration, shapes kept; --allow-unknown): Foo x2 (first: 'foo_1')" in text
    assert "- opaque: {name: foo_1, from: [relu], op: Foo, shape: 8x4x4}" in text
    report = json.loads(run(["analyze", str(tmp_path / "foo.yaml"), "--json"]).stdout)
    assert [(row["kind"], row["flops"]) for row in report["layers"]] == [("relu", 128), ("opaque", 0), ("opaque", 0)]


MISSING_ONNX = """
import sys
sys.modules["onnx"] = None  # as if the onnx package were not installed
from convcost.cli import main
sys.argv = ["convcost", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("args", [["import", "model.onnx"], ["analyze", "model.onnx"],
                                  ["export", "examples/resnet18.yaml", "--to", "onnx", "-o", "x.onnx"]])
def test_without_the_onnx_package_one_line_says_how_to_install_it(args, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "resnet18.yaml").write_text((EXAMPLES / "resnet18.yaml").read_text())
    result = process(*args, cwd=tmp_path, code=MISSING_ONNX)
    assert result.returncode == 2
    assert result.stderr == ('convcost: error: reading or writing ONNX needs the onnx package: '
                             'pip install "convcost[onnx]"\n')


def test_yaml_commands_do_not_import_onnx():
    code = ("import sys, convcost.cli; sys.argv = ['convcost', 'analyze', 'examples/resnet18.yaml', '--json']\n"
            "try:\n    convcost.cli.main()\nexcept SystemExit:\n    pass\nsys.stderr.write(str('onnx' in sys.modules))")
    result = process(code=code)
    assert result.stderr == "False"


# --------------------------------------------------------------------------- PyTorch source


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[path.stem for path in EXAMPLE_PATHS])
def test_pytorch_source_parses_and_imports_only_torch(path):
    spec = load_spec(str(path))
    source = export_pytorch(spec, build_network(spec))
    tree = ast.parse(source)
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert {(type(node).__name__, getattr(node, "module", None), tuple(a.name for a in node.names))
            for node in imports} == {("Import", None, ("torch",)), ("ImportFrom", "torch", ("nn",))}
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    templates = {block.kind for block in build_network(spec).blocks} & set(spec.blocks)
    assert len(classes) >= len(templates) + 1
    assert max(len(line) for line in source.splitlines()) <= 100


def test_pytorch_export_of_an_opaque_layer_is_an_error(tmp_path):
    spec = tmp_path / "o.yaml"
    spec.write_text("input: 8x4x4\nlayers:\n  - opaque: {op: Foo, shape: 8x4x4}\n")
    result = run(["export", str(spec), "--to", "pytorch"])
    assert result.exit_code == 2
    assert result.stderr == (f"convcost: error: {spec}:3:5: layer 'opaque_1': export to PyTorch: opaque layer "
                             "(op Foo) has no PyTorch counterpart\n")


def _module(source: str, name: str):
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[path.stem for path in EXAMPLE_PATHS])
def test_pytorch_round_trip(path):
    """Skipped without torch (never a dependency): instantiate the exported module, count its parameters,
    run it, export it with torch.onnx, import that back, and hold MACs, params and output shapes to the spec."""
    torch = pytest.importorskip("torch")
    spec = load_spec(str(path))
    network = build_network(spec)
    report = analyze(network)
    module = _module(export_pytorch(spec, network), path.stem)
    model = getattr(module, ast.parse(export_pytorch(spec, network)).body[-2].name)().eval()
    assert sum(p.numel() for p in model.parameters()) == report.totals.params
    inputs = tuple(torch.randn(1, *shape) for _, shape in spec.inputs)
    with torch.no_grad():
        outputs = model(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert [tuple(output.shape[1:]) for output in outputs] == [shape for _, shape in report.outputs]
    buffer = io.BytesIO()
    # PRESERVE keeps batch norms: the eval-mode export folds them into the convolutions (docs/onnx.md).
    torch.onnx.export(model, inputs, buffer, dynamo=False, opset_version=20,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=[name for name, _ in spec.inputs])
    back = analyze(import_onnx(onnx.load_from_string(buffer.getvalue()), source=f"{path.stem}.onnx").network)
    assert back.totals.macs == report.totals.macs
    assert back.totals.params == report.totals.params
    assert [shape for _, shape in back.outputs] == [shape for _, shape in report.outputs]
