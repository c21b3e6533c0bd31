"""Hardware profiles: dense peak operations per second per precision and memory bandwidth, each sourced.

A profile file is YAML: one profile (a mapping) or a list of them. The shipped
profiles are ``convcost/hardware.yaml``; a user's ``my_device.yaml`` has the same
schema (docs/conventions.md, "Memory traffic and the roofline bound")::

    - id: my-board                       # lower case, digits, '.', '_', '-'
      name: My board at 1.2 GHz
      sources:                           # every number names one of these
        sheet: {title: Vendor datasheet rev 3, url: https://example.com/ds.pdf}
      peak_ops_per_second:               # dense, per precision; leave out what is not published
        float16: {value: 10T, source: sheet}
        int8: {value: 20T, source: sheet, notes: "dense; 40T with sparsity"}
      memory_bytes_per_second: {value: 68G, source: sheet}
      notes: anything                    # optional, as is a figure's notes

Quantities are exact integers read by :func:`convcost.units.parse_quantity`: a
plain integer, or a decimal with an SI prefix (``494.5T`` is exactly
494,500,000,000,000; ``Ki``/``Mi``/... are powers of 1024). A value that is not a
positive whole number, an unknown key, a precision outside :data:`PRECISIONS` or
a source that is not declared is a :class:`~convcost.errors.SpecError` naming
file, line and column. A precision a profile does not publish is refused by
:meth:`HardwareProfile.peak` with a :class:`~convcost.errors.UsageError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .errors import Location, SpecError, UsageError, did_you_mean
from .located import LocatedDict, LocatedList
from .reader import read_yaml
from .spec import MAX_FILE_BYTES
from .units import parse_quantity

__all__ = [
    "PRECISIONS",
    "Figure",
    "HardwareProfile",
    "Source",
    "get_profile",
    "list_profiles",
    "load_profiles",
    "loads_profiles",
]

#: Precisions a profile may give a peak for. ``tf32`` is float32 tensors on TF32 tensor cores.
PRECISIONS = ("float32", "tf32", "float16", "bfloat16", "int8")

SHIPPED_FILE = "hardware.yaml"
SHIPPED_SOURCE = "convcost/hardware.yaml"

_PROFILE_KEYS = ("id", "name", "sources", "peak_ops_per_second", "memory_bytes_per_second", "notes")
_REQUIRED_KEYS = ("id", "name", "sources", "peak_ops_per_second", "memory_bytes_per_second")
_FIGURE_KEYS = ("value", "source", "notes")
_SOURCE_KEYS = ("title", "url")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: Common spellings of a precision, suggested (never accepted) in error messages.
_PRECISION_SPELLINGS = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16",
                        "bf16": "bfloat16", "i8": "int8"}


def _suggest_precision(word: str) -> str:
    known = _PRECISION_SPELLINGS.get(word.lower())
    return f" (did you mean '{known}'?)" if known else did_you_mean(word, PRECISIONS)


@dataclass(frozen=True, slots=True)
class Source:
    """Where numbers come from: a title and, for the shipped profiles, the page's URL."""

    key: str
    title: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class Figure:
    """One number of a profile (operations or bytes per second) with its source and notes."""

    value: int
    source: Source
    notes: str = ""
    where: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """A device: dense peak operations per second per precision, and memory bandwidth in bytes per second."""

    id: str
    name: str
    peak_ops_per_second: tuple[tuple[str, Figure], ...]
    memory_bytes_per_second: Figure
    notes: str = ""
    where: Location | None = field(default=None, compare=False)

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(precision for precision, _ in self.peak_ops_per_second)

    def peak(self, precision: str) -> Figure:
        """The peak for ``precision``; a precision the profile does not publish is refused."""
        for known, figure in self.peak_ops_per_second:
            if known == precision:
                return figure
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision {precision!r}{_suggest_precision(precision)}; "
                             f"choose one of {', '.join(PRECISIONS)}")
        raise UsageError(f"hardware profile '{self.id}' ({self.name}) publishes no {precision} peak; "
                         f"it has {', '.join(self.precisions)}")


# --------------------------------------------------------------------------- loading


def list_profiles() -> tuple[HardwareProfile, ...]:
    """The shipped profiles, in file order."""
    return load_profiles()


def load_profiles(path: str | os.PathLike[str] | None = None) -> tuple[HardwareProfile, ...]:
    """Read a profile file (one profile or a list); ``None`` reads the shipped profiles."""
    if path is None:
        text = resources.files("convcost").joinpath(SHIPPED_FILE).read_text(encoding="utf-8")
        return loads_profiles(text, SHIPPED_SOURCE)
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read hardware profile: {exc.strerror or exc}", Location(source)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(f"hardware profile is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit",
                        Location(source))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"hardware profile is not valid UTF-8 (byte {exc.start})", Location(source)) from None
    return loads_profiles(text, source)


def loads_profiles(text: str, source: str = "<string>") -> tuple[HardwareProfile, ...]:
    """Parse profile YAML text; raises :class:`SpecError` with file:line:col on any problem."""
    if not text.strip():
        raise SpecError("hardware profile file is empty", Location(source, 1))
    tree = read_yaml(text, source)
    if isinstance(tree, LocatedDict):
        items: list[Any] = [tree]
        wheres = [tree.where]
    elif isinstance(tree, LocatedList) and tree:
        items = list(tree)
        wheres = [tree.at(index) for index in range(len(tree))]
    else:
        raise SpecError("a hardware profile file holds one profile (a mapping) or a non-empty list of them",
                        Location(source, 1))
    profiles: list[HardwareProfile] = []
    seen: set[str] = set()
    for item, where in zip(items, wheres):
        if not isinstance(item, LocatedDict):
            raise SpecError("each hardware profile must be a mapping with id, name, sources, "
                            "peak_ops_per_second and memory_bytes_per_second", where)
        profile = _profile(item)
        if profile.id in seen:
            raise SpecError(f"duplicate hardware profile id '{profile.id}'", item.at("id"))
        seen.add(profile.id)
        profiles.append(profile)
    return tuple(profiles)


def get_profile(name_or_path: str | os.PathLike[str]) -> HardwareProfile:
    """A shipped profile by id, or the single profile in a YAML file given by path."""
    name = os.fspath(name_or_path)
    shipped = load_profiles()
    for profile in shipped:
        if profile.id == name:
            return profile
    if name.endswith((".yaml", ".yml")) or os.sep in name or "/" in name or os.path.exists(name):
        profiles = load_profiles(name)
        if len(profiles) != 1:
            raise UsageError(f"{name} holds {len(profiles)} hardware profiles "
                             f"({', '.join(p.id for p in profiles)}); give a file with one profile")
        return profiles[0]
    ids = [profile.id for profile in shipped]
    raise UsageError(f"unknown hardware profile {name!r}{did_you_mean(name, ids)}; "
                     f"shipped profiles: {', '.join(ids)}; or give a YAML file")


# --------------------------------------------------------------------------- validation


def _profile(tree: LocatedDict) -> HardwareProfile:
    _check_keys(tree, _PROFILE_KEYS, "hardware profile")
    for key in _REQUIRED_KEYS:
        if key not in tree:
            raise SpecError(f"hardware profile has no '{key}' key", tree.where)
    profile_id = tree["id"]
    if not isinstance(profile_id, str) or not _ID.match(profile_id):
        raise SpecError(f"'id' must be lower-case letters, digits, '.', '_' or '-', got {profile_id!r}",
                        tree.at("id"))
    name = _text(tree, "name", required=True)
    sources = _sources(tree["sources"], tree.at("sources"))
    peaks_tree = tree["peak_ops_per_second"]
    if not isinstance(peaks_tree, LocatedDict) or not peaks_tree:
        raise SpecError("'peak_ops_per_second' must be a mapping from precision to {value, source}",
                        tree.at("peak_ops_per_second"))
    peaks: list[tuple[str, Figure]] = []
    for precision in peaks_tree:
        if precision not in PRECISIONS:
            raise SpecError(f"unknown precision '{precision}'{_suggest_precision(str(precision))}; "
                            f"choose from {', '.join(PRECISIONS)}", peaks_tree.at(precision))
        peaks.append((precision, _figure(peaks_tree[precision], peaks_tree.at(precision),
                                         f"peak_ops_per_second.{precision}", sources)))
    memory = _figure(tree["memory_bytes_per_second"], tree.at("memory_bytes_per_second"),
                     "memory_bytes_per_second", sources)
    return HardwareProfile(id=profile_id, name=name, peak_ops_per_second=tuple(peaks),
                           memory_bytes_per_second=memory, notes=_text(tree, "notes"), where=tree.where)


def _sources(tree: Any, where: Location) -> dict[str, Source]:
    if not isinstance(tree, LocatedDict) or not tree:
        raise SpecError("'sources' must be a mapping from a short key to {title, url}", where)
    sources: dict[str, Source] = {}
    for key, entry in tree.items():
        if not isinstance(key, str) or not key:
            raise SpecError(f"a source key must be a word, got {key!r}", tree.at(key))
        if not isinstance(entry, LocatedDict):
            raise SpecError(f"source '{key}' must be a mapping with a title and a url", tree.at(key))
        _check_keys(entry, _SOURCE_KEYS, f"source '{key}'")
        url = _text(entry, "url")
        if url and not url.startswith(("https://", "http://")):
            raise SpecError(f"source '{key}': url must start with https:// or http://, got {url!r}", entry.at("url"))
        sources[key] = Source(key=key, title=_text(entry, "title", required=True), url=url)
    return sources


def _figure(tree: Any, where: Location, what: str, sources: dict[str, Source]) -> Figure:
    if not isinstance(tree, LocatedDict):
        raise SpecError(f"{what} must be a mapping {{value, source, notes}}, got {tree!r}", where)
    _check_keys(tree, _FIGURE_KEYS, what)
    for key in ("value", "source"):
        if key not in tree:
            raise SpecError(f"{what} has no '{key}'", tree.where)
    raw = tree["value"]
    try:
        value = parse_quantity(raw, "count")
    except ValueError as exc:
        raise SpecError(f"{what}: {exc}", tree.at("value")) from None
    if value <= 0:
        raise SpecError(f"{what} must be positive, got {raw!r}", tree.at("value"))
    source_key = tree["source"]
    if source_key not in sources:
        raise SpecError(f"{what}: source {source_key!r} is not declared under 'sources'"
                        f"{did_you_mean(str(source_key), sources)}", tree.at("source"))
    return Figure(value=value, source=sources[source_key], notes=_text(tree, "notes"), where=tree.at("value"))


def _check_keys(tree: LocatedDict, allowed: tuple[str, ...], what: str) -> None:
    for key in tree:
        if key not in allowed:
            raise SpecError(f"unknown key '{key}' in {what}{did_you_mean(str(key), allowed)}; "
                            f"allowed: {', '.join(allowed)}", tree.at(key))


def _text(tree: LocatedDict, key: str, *, required: bool = False) -> str:
    if key not in tree:
        if required:
            raise SpecError(f"'{key}' is required", tree.where)
        return ""
    value = tree[key]
    if not isinstance(value, str) or (required and not value.strip()):
        raise SpecError(f"'{key}' must be a{' non-empty' if required else ''} string, got {value!r}", tree.at(key))
    return value
