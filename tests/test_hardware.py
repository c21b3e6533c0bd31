"""Hardware profiles: the shipped figures against the vendors' published numbers, and validation.

The published figures below are copied from the pages each profile cites (dense
peaks; where a datasheet prints a figure with 2:4 sparsity, its stated halving is
written out). They are independent of the YAML file: a typo in either fails here.
"""

from __future__ import annotations

import re

import pytest

from convcost.errors import SpecError, UsageError
from convcost.hardware import PRECISIONS, get_profile, list_profiles, load_profiles, loads_profiles

T = 10**12
G = 10**9

# (profile, precision or "memory", published value). Sources: the URLs in convcost/hardware.yaml.
PUBLISHED = [
    # NVIDIA H100 datasheet, SXM column; "* Shown with sparsity. Specifications 1/2 lower without sparsity."
    ("h100-sxm", "float32", 67 * T),
    ("h100-sxm", "tf32", 989 * T // 2),
    ("h100-sxm", "float16", 1979 * T // 2),
    ("h100-sxm", "bfloat16", 1979 * T // 2),
    ("h100-sxm", "int8", 3958 * T // 2),
    ("h100-sxm", "memory", 3350 * G),
    # NVIDIA A100 datasheet (dense column; the starred sparse one is twice it)
    ("a100-40gb", "float32", 195 * T // 10),
    ("a100-40gb", "tf32", 156 * T),
    ("a100-40gb", "float16", 312 * T),
    ("a100-40gb", "bfloat16", 312 * T),
    ("a100-40gb", "int8", 624 * T),
    ("a100-40gb", "memory", 1555 * G),
    # Ada whitepaper, Appendix A, RTX 4090 (dense of dense/sparse; FP16 with FP32 accumulate)
    ("rtx4090", "float32", 826 * T // 10),
    ("rtx4090", "tf32", 826 * T // 10),
    ("rtx4090", "float16", 1652 * T // 10),
    ("rtx4090", "bfloat16", 1652 * T // 10),
    ("rtx4090", "int8", 6606 * T // 10),
    ("rtx4090", "memory", 1008 * G),
    # NVIDIA T4 product page
    ("t4", "float32", 81 * T // 10),
    ("t4", "float16", 65 * T),
    ("t4", "int8", 130 * T),
    ("t4", "memory", 320 * G),
    # NVIDIA Jetson Orin Nano "Super" blog table; FP32 = CUDA cores x clock x 2 (one FMA per core per clock)
    ("jetson-orin-nano", "float32", 1024 * 635 * 10**6 * 2),
    ("jetson-orin-nano", "float16", 10 * T),
    ("jetson-orin-nano", "int8", 20 * T),
    ("jetson-orin-nano", "memory", 68 * G),
    ("jetson-orin-nano-super", "float32", 1024 * 1020 * 10**6 * 2),
    ("jetson-orin-nano-super", "float16", 17 * T),
    ("jetson-orin-nano-super", "int8", 33 * T),
    ("jetson-orin-nano-super", "memory", 102 * G),
    # Raspberry Pi BCM2712 documentation (4 x Cortex-A76 at 2.4 GHz, 17GB/s) and the Cortex-A76
    # Software Optimization Guide (2 x 128-bit FMLA per cycle): cores x Hz x FMAs x lanes x 2
    ("raspberry-pi-5", "float32", 4 * 24 * 10**8 * 2 * 4 * 2),
    ("raspberry-pi-5", "float16", 4 * 24 * 10**8 * 2 * 8 * 2),
    ("raspberry-pi-5", "memory", 17 * G),
    # Derived: 10 GPU cores x 128 float32 ALUs x 2 FLOPs per FMA x 1.398 GHz (Apple publishes no FLOP/s)
    ("apple-m2", "float32", 10 * 128 * 2 * 1398 * 10**6),
    ("apple-m2", "memory", 100 * G),
]

# Precisions each vendor publishes no figure for: refused.
UNPUBLISHED = [("t4", "bfloat16"), ("t4", "tf32"), ("jetson-orin-nano", "bfloat16"), ("raspberry-pi-5", "int8"),
               ("raspberry-pi-5", "tf32"), ("apple-m2", "float16"), ("apple-m2", "int8")]


def profiles_by_id():
    return {profile.id: profile for profile in list_profiles()}


def test_shipped_profiles_load_with_a_source_for_every_number():
    profiles = list_profiles()
    assert len({p.id for p in profiles}) == len(profiles)
    assert {p.id for p in profiles} == {pid for pid, _, _ in PUBLISHED}
    for profile in profiles:
        assert profile.name.strip()
        assert profile.precisions and set(profile.precisions) <= set(PRECISIONS)
        figures = [figure for _, figure in profile.peak_ops_per_second] + [profile.memory_bytes_per_second]
        for figure in figures:
            assert isinstance(figure.value, int) and figure.value > 0, profile.id
            assert figure.source.title.strip(), profile.id
            assert re.match(r"^https://\S+$", figure.source.url), (profile.id, figure.source.url)
            if figure.notes.startswith("Derived"):
                assert " x " in figure.notes and " = " in figure.notes, (profile.id, figure.notes)


@pytest.mark.parametrize("profile_id,what,value", PUBLISHED)
def test_shipped_figures_are_the_published_ones(profile_id, what, value):
    profile = profiles_by_id()[profile_id]
    figure = profile.memory_bytes_per_second if what == "memory" else profile.peak(what)
    assert figure.value == value


def test_every_shipped_figure_is_pinned():
    pinned = {(pid, what) for pid, what, _ in PUBLISHED}
    shipped = {(p.id, precision) for p in list_profiles() for precision in p.precisions}
    shipped |= {(p.id, "memory") for p in list_profiles()}
    assert shipped == pinned


@pytest.mark.parametrize("profile_id,precision", UNPUBLISHED)
def test_unpublished_precision_is_refused(profile_id, precision):
    profile = get_profile(profile_id)
    with pytest.raises(UsageError) as info:
        profile.peak(precision)
    message = str(info.value)
    assert f"'{profile_id}'" in message and f"no {precision} peak" in message
    assert ", ".join(profile.precisions) in message


def test_unknown_precision_gets_did_you_mean():
    with pytest.raises(UsageError, match=r"unknown precision 'fp16'.*did you mean 'float16'"):
        get_profile("t4").peak("fp16")


def test_unknown_profile_name_gets_did_you_mean():
    with pytest.raises(UsageError) as info:
        get_profile("h100")
    assert "unknown hardware profile 'h100' (did you mean 'h100-sxm'?)" in str(info.value)
    assert "t4" in str(info.value)
    with pytest.raises(UsageError, match=r"did you mean 'rtx4090'"):
        get_profile("rtx-4090")


GOOD = """\
id: my-board
name: My board
sources:
  sheet: {title: Vendor sheet, url: https://example.com/a.pdf}
peak_ops_per_second:
  float16: {value: 10T, source: sheet}
  int8: {value: "20_000_000_000_000", source: sheet, notes: dense}
memory_bytes_per_second: {value: 68G, source: sheet}
"""


def test_user_profile_file_one_profile(tmp_path):
    path = tmp_path / "my_device.yaml"
    path.write_text(GOOD)
    profile = get_profile(str(path))
    assert profile.id == "my-board"
    assert profile.peak("float16").value == 10 * T
    assert profile.peak("int8").value == 20 * T and profile.peak("int8").notes == "dense"
    assert profile.memory_bytes_per_second.value == 68 * G
    assert profile.memory_bytes_per_second.source.url == "https://example.com/a.pdf"


def test_user_profile_list_and_exact_quantities():
    text = "- " + GOOD.replace("\n", "\n  ").rstrip() + "\n- " + GOOD.replace("my-board", "other").replace(
        "10T", "989.4e12").replace("68G", "3.35e+12").replace("\n", "\n  ").rstrip() + "\n"
    first, second = loads_profiles(text, "two.yaml")
    assert (first.id, second.id) == ("my-board", "other")
    assert second.peak("float16").value == 989_400_000_000_000
    assert second.memory_bytes_per_second.value == 3_350_000_000_000  # a YAML float, read exactly


def test_file_with_two_profiles_is_not_one(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text("- " + GOOD.replace("\n", "\n  ").rstrip() + "\n- "
                    + GOOD.replace("my-board", "b2").replace("\n", "\n  ").rstrip() + "\n")
    assert [p.id for p in load_profiles(path)] == ["my-board", "b2"]
    with pytest.raises(UsageError, match="holds 2 hardware profiles"):
        get_profile(str(path))


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old,new,needle,message", [
    ("value: 68G", "value: lots", "lots", "memory_bytes_per_second: expected a non-negative number"),
    ("value: 10T", "value: 0", "value: 0", "peak_ops_per_second.float16 must be positive"),
    ("value: 10T", "value: 1.5", "value: 1.5", "is not a whole number"),
    ("value: 10T", "value: -3T", "value: -3T", "must not be negative"),
    ("  float16:", "  fp16:", "fp16", "unknown precision 'fp16' (did you mean 'float16'?)"),
    ("source: sheet}\n  int8", "source: shet}\n  int8", "shet", "source 'shet' is not declared under 'sources' "
                                                             "(did you mean 'sheet'?)"),
    ("name: My board", "nmae: My board", "nmae", "unknown key 'nmae' in hardware profile (did you mean 'name'?)"),
    ("url: https://example.com/a.pdf", "url: example.com", "example.com", "url must start with https://"),
    ("id: my-board", "id: My Board", "id: My Board", "'id' must be lower-case"),
])
def test_malformed_user_profile_is_one_line_with_file_and_line(tmp_path, old, new, needle, message):
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        get_profile(str(path))
    rendered = str(info.value)
    assert "\n" not in rendered
    assert rendered.startswith(f"{path}:{line_of(text, needle)}:"), rendered
    assert message in rendered


def test_malformed_yaml_and_missing_keys(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(GOOD + "peak_ops_per_second: [oops\n")
    with pytest.raises(SpecError, match=rf"^{re.escape(str(path))}:\d+:\d+: "):
        load_profiles(path)
    with pytest.raises(SpecError, match="hardware profile has no 'memory_bytes_per_second' key"):
        loads_profiles(GOOD.replace("memory_bytes_per_second: {value: 68G, source: sheet}\n", ""), "x.yaml")
    with pytest.raises(SpecError, match="duplicate hardware profile id 'my-board'"):
        loads_profiles("- " + GOOD.replace("\n", "\n  ").rstrip() + "\n- " + GOOD.replace("\n", "\n  ").rstrip())
    with pytest.raises(SpecError, match="empty"):
        loads_profiles("\n# nothing\n", "empty.yaml")
    with pytest.raises(SpecError, match="cannot read hardware profile"):
        load_profiles(tmp_path / "missing.yaml")
