"""The example zoo: reference counts against published figures, convcost against both.

Two independent derivations meet here:

* tests/reference_counts.py counts every network from literal configuration
  tables with closed-form formulas; the first group of tests pins it to the
  numbers published by torchvision and the papers;
* convcost loads examples/<stem>.yaml; the second group requires its per-layer
  and total MACs and params to equal the reference, layer by layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

try:  # tests/ on sys.path (pytest's default rootdir insertion) or tests as a package
    import reference_counts as ref
except ImportError:  # pragma: no cover
    from tests import reference_counts as ref

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEMS = sorted(ref.NETWORKS)

# ------------------------------------------------ published figures

# torchvision's model docs: exact parameter counts ("Params") ...
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "vgg16": 138_357_544,
    "mobilenet_v2": 3_504_872,
}
# ... and "GFLOPS", which torchvision computes as multiply-accumulates (GMACs),
# printed to the given number of decimals.
TORCHVISION_GMACS = {
    "resnet18": (1.814, 3),
    "resnet50": (4.089, 3),
    "vgg16": (15.47, 2),
    "mobilenet_v2": (0.301, 3),
}
# The worked 1x1-convolution examples quote exact MACs.
EXACT_MACS = {
    "one_by_one_naive": 120_422_400,
    "one_by_one": 12_443_648,
    "one_filter": 12_288,
    "reduce_192_to_32": 4_816_896,
}
# Szegedy et al. 2014, Table 1, "ops" column, in millions.
GOOGLENET_PAPER_OPS_M = {
    "inception_3a": 128,
    "inception_3b": 304,
    "inception_4a": 73,
    "inception_4b": 88,
    "inception_4c": 100,
    "inception_4d": 119,
    "inception_4e": 170,
    "inception_5a": 54,
    "inception_5b": 71,
}
# Rows whose printed "ops" is not the module's MACs rounded to the nearest million
# (see docs/googlenet.md): 4a is 73.6M (printed 73M), 5a is 51.1M (printed 54M).
GOOGLENET_PAPER_OFF = {"inception_4a": 74, "inception_5a": 51}


@pytest.mark.parametrize("stem", sorted(TORCHVISION_PARAMS))
def test_reference_params_equal_torchvision(stem: str) -> None:
    assert ref.total_params(ref.NETWORKS[stem]()) == TORCHVISION_PARAMS[stem]


@pytest.mark.parametrize("stem", sorted(TORCHVISION_GMACS))
def test_reference_macs_round_to_torchvision(stem: str) -> None:
    published, decimals = TORCHVISION_GMACS[stem]
    assert round(ref.total_macs(ref.NETWORKS[stem]()) / 1e9, decimals) == published


@pytest.mark.parametrize("stem", sorted(EXACT_MACS))
def test_reference_macs_equal_worked_examples(stem: str) -> None:
    assert ref.total_macs(ref.NETWORKS[stem]()) == EXACT_MACS[stem]


def test_reference_one_by_one_per_layer() -> None:
    reduce, conv5x5 = ref.one_by_one()
    assert (reduce.macs, conv5x5.macs) == (2_408_448, 10_035_200)
    assert conv5x5.output_shape == (32, 28, 28)


def test_reference_one_filter() -> None:
    (layer,) = ref.one_filter()
    assert (layer.output_shape, layer.macs, layer.params) == ((1, 64, 64), 12_288, 3)


@pytest.mark.parametrize("module", sorted(GOOGLENET_PAPER_OPS_M))
def test_reference_inception_macs_against_paper(module: str) -> None:
    millions = round(ref.inception_macs()[module] / 1e6)
    if module in GOOGLENET_PAPER_OFF:
        # the paper's row is off; pin what the widths actually give
        assert millions == GOOGLENET_PAPER_OFF[module] != GOOGLENET_PAPER_OPS_M[module]
    else:
        assert millions == GOOGLENET_PAPER_OPS_M[module]


def test_reference_googlenet_output_channels() -> None:
    """Table 1's output depths follow from the branch widths."""
    layers = {layer.name: layer for layer in ref.googlenet()}
    depth = {
        m: sum(layers[f"{m}.{b}"].output_shape[0] for b in ("1x1", "3x3", "5x5", "pool_proj"))
        for m in GOOGLENET_PAPER_OPS_M
    }
    assert list(depth.values()) == [256, 480, 512, 512, 512, 528, 832, 832, 1024]


# ------------------------------------------------ convcost against the reference

_COST_KINDS = {
    "conv": "conv",
    "conv2d": "conv",
    "pointwise": "conv",
    "depthwise": "conv",
    "linear": "linear",
    "batch_norm": "batch_norm",
    "batch_norm2d": "batch_norm",
}


def _cost_kind(kind: Any) -> str | None:
    """Map convcost's layer kind to the reference's; None for free or structural rows."""
    return _COST_KINDS.get(str(getattr(kind, "value", kind)).lower())


@pytest.fixture(scope="module")
def analyzed() -> Any:
    convcost = pytest.importorskip("convcost")
    cache: dict[str, Any] = {}

    def get(stem: str) -> Any:
        if stem not in cache:
            spec = convcost.load_spec(str(EXAMPLES / f"{stem}.yaml"))
            cache[stem] = convcost.analyze(convcost.build_network(spec), batch=1, dtype="float32")
        return cache[stem]

    return get


def _rows(report: Any) -> list[tuple[str, str, tuple[int, ...], int, int]]:
    return [
        (layer.name, kind, tuple(layer.output_shape), layer.macs, layer.params)
        for layer in report.layers
        if (kind := _cost_kind(layer.kind)) is not None
    ]


@pytest.mark.parametrize("stem", STEMS)
def test_convcost_totals_equal_reference(analyzed: Any, stem: str) -> None:
    reference = ref.NETWORKS[stem]()
    report = analyzed(stem)
    assert report.totals.macs == ref.total_macs(reference)
    assert report.totals.params == ref.total_params(reference)


@pytest.mark.parametrize("stem", STEMS)
def test_convcost_layers_equal_reference(analyzed: Any, stem: str) -> None:
    """Every conv, linear and batch-norm row, in order: kind, output shape, MACs, params."""
    got = _rows(analyzed(stem))
    want = [(r.name, r.kind, r.output_shape, r.macs, r.params) for r in ref.NETWORKS[stem]()]
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g[1:] == w[1:], f"row {i}: convcost {g} != reference {w}"
    assert len(got) == len(want), f"{len(got)} cost-bearing layers, reference has {len(want)}"


@pytest.mark.parametrize("stem", STEMS)
def test_convcost_rows_add_up_to_totals(analyzed: Any, stem: str) -> None:
    report = analyzed(stem)
    assert sum(layer.macs for layer in report.layers) == report.totals.macs
    assert sum(layer.params for layer in report.layers) == report.totals.params


def test_convcost_one_by_one_names(analyzed: Any) -> None:
    by_name = {layer.name: layer for layer in analyzed("one_by_one").layers}
    assert by_name["reduce"].macs == 2_408_448
    assert by_name["conv5x5"].macs == 10_035_200
    assert tuple(by_name["conv5x5"].output_shape) == (32, 28, 28)


@pytest.mark.parametrize("module", sorted(GOOGLENET_PAPER_OPS_M))
def test_convcost_inception_module_macs(analyzed: Any, module: str) -> None:
    macs = sum(
        layer.macs
        for layer in analyzed("googlenet").layers
        if layer.name.startswith(module + ".") and _cost_kind(layer.kind) is not None
    )
    assert macs == ref.inception_macs()[module]


# The network's output: a feature vector after flatten, else the last conv's map.
FINAL_SHAPES = {
    "googlenet": (1000,),
    "vgg16": (1000,),
    "resnet18": (1000,),
    "resnet50": (1000,),
    "mobilenet_v2": (1000,),
    "one_by_one": (32, 28, 28),
    "one_by_one_naive": (32, 28, 28),
    "one_filter": (1, 64, 64),
    "reduce_192_to_32": (32, 28, 28),
    "nin_cifar10": (10,),
}


@pytest.mark.parametrize("stem", STEMS)
def test_convcost_final_shape(analyzed: Any, stem: str) -> None:
    assert tuple(analyzed(stem).layers[-1].output_shape) == FINAL_SHAPES[stem]
