"""convcost.record.Record behaves as ``@dataclass(frozen=True, slots=True)`` does.

The same class body is compiled twice, once as a dataclass and once as a record,
and the two are compared on construction, defaults, errors, equality, hashing,
repr, immutability, replace() and pickling. Then every record class of the package
is checked for the properties the code relies on (slots, field order, frozen).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import convcost
from convcost.record import FrozenInstanceError, Record, fields, replace

BODY = '''
    """A test value."""

    name: str
    size: int
    shape: tuple = ()
    scale: float = 1.0
    LIMIT: ClassVar[int] = 100

    def __post_init__(self) -> None:
        if self.size > self.LIMIT:
            raise ValueError(f"size {self.size} over {self.LIMIT}")

    @property
    def double(self) -> int:
        return 2 * self.size
'''


def _twins() -> tuple[type, type]:
    # __name__: dataclasses recognises a string "ClassVar[...]" through the class's module,
    # which must have ClassVar imported (this one does).
    namespace: dict[str, Any] = {"dataclass": dataclasses.dataclass, "Record": Record, "ClassVar": ClassVar,
                                 "__name__": __name__}
    exec("@dataclass(frozen=True, slots=True)\nclass Value:" + BODY
         + "\nDataclassValue = Value\n"
         + "class Value(Record):" + BODY + "\nRecordValue = Value\n", namespace)
    return namespace["DataclassValue"], namespace["RecordValue"]


DataclassValue, RecordValue = _twins()
CALLS = [
    ((), {}),
    (("a",), {}),
    (("a", 1), {}),
    (("a", 1, (2, 3)), {}),
    (("a", 1, (2,), 0.5), {}),
    (("a", 1, (2,), 0.5, "extra"), {}),
    (("a",), {"size": 3}),
    ((), {"name": "b", "size": 4, "scale": 2.0}),
    (("a", 1), {"size": 2}),
    (("a", 1), {"colour": "red"}),
    ((), {"size": 1}),
    (("a", 101), {}),
]


def _outcome(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        value = cls(*args, **kwargs)
    except (TypeError, ValueError) as error:
        return type(error).__name__
    return repr(value).replace("DataclassValue", "Value"), hash(value), value.double


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_construction_matches_dataclass(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    assert _outcome(RecordValue, args, kwargs) == _outcome(DataclassValue, args, kwargs)


@given(st.text(max_size=5), st.integers(-5, 100), st.lists(st.integers(), max_size=3).map(tuple),
       st.floats(allow_nan=False))
def test_eq_hash_repr_match_dataclass(name: str, size: int, shape: tuple, scale: float) -> None:
    ours, theirs = RecordValue(name, size, shape, scale), DataclassValue(name, size, shape, scale)
    assert repr(ours) == repr(theirs)
    assert hash(ours) == hash(theirs) == hash((name, size, shape, scale))
    assert ours == RecordValue(name, size, shape=shape, scale=scale)
    assert ours != RecordValue(name + "x", size, shape, scale)
    assert ours != theirs  # different classes never compare equal, as with dataclasses
    assert (ours == (name, size, shape, scale)) is False


def test_frozen_slots_and_defaults() -> None:
    value = RecordValue("a", 1)
    with pytest.raises(FrozenInstanceError):
        value.size = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del value.name  # type: ignore[misc]
    with pytest.raises((AttributeError, FrozenInstanceError)):
        value.other = 3  # type: ignore[attr-defined]
    assert not hasattr(value, "__dict__")
    assert RecordValue._storage.__slots__ == ("name", "size", "shape", "scale") and RecordValue.__slots__ == ()
    assert fields(RecordValue) == fields(value) == tuple(f.name for f in dataclasses.fields(DataclassValue))
    assert RecordValue.LIMIT == 100  # ClassVar: a class attribute, not a field
    assert RecordValue.__match_args__ == DataclassValue.__match_args__


def test_replace_matches_dataclasses_replace() -> None:
    ours, theirs = RecordValue("a", 1, (2,)), DataclassValue("a", 1, (2,))
    assert repr(replace(ours, size=5)) == repr(dataclasses.replace(theirs, size=5))
    assert ours.size == 1  # unchanged
    with pytest.raises(ValueError):
        replace(ours, size=1000)  # __post_init__ runs again
    with pytest.raises(TypeError):
        replace(ours, colour="red")


def test_pickle_and_copy_round_trip() -> None:
    from convcost.errors import Location
    from convcost.layers import Conv

    conv = Conv(2, 16, 32, (3, 3), (1, 1), (1, 1), (1, 1), bias=False)
    for value in (Location("net.yaml", 3, 5), conv, RecordValue("a", 1, (2, 3), 0.5)):
        assert copy.copy(value) == value == copy.deepcopy(value)
    for value in (Location("net.yaml", 3, 5), conv):
        assert pickle.loads(pickle.dumps(value)) == value


def test_declaration_errors() -> None:
    with pytest.raises(TypeError, match="without a default follows"):
        class Bad(Record):
            first: int = 1
            second: int

    class Base(Record):
        a: int

    with pytest.raises(TypeError, match="already declared"):
        class Again(Base):
            a: int

    class Child(Base):
        b: int = 2

    assert fields(Child) == ("a", "b") and repr(Child(1)) == "test_declaration_errors.<locals>.Child(a=1, b=2)"
    child = Child(1, 3)
    assert (child.a, child.b) == (1, 3) and isinstance(child, Base) and not hasattr(child, "__dict__")
    with pytest.raises(FrozenInstanceError):
        child.a = 2  # type: ignore[misc]

    for extra in ("def __init__(self, a): pass", "def __post_init__(self): pass"):
        with pytest.raises(TypeError, match="own __new__"):
            exec(f"class Both(Record):\n    a: int\n    def __new__(cls, a): pass\n    {extra}\n", {"Record": Record})


def test_own_new_builds_through_the_storage_class() -> None:
    class Point(Record):
        x: int
        y: int = 0

        def __new__(cls, x: int, y: int = 0) -> Point:
            self = object.__new__(cls._storage)
            self.x = x
            self.y = y
            self.__class__ = cls
            return self

    point = Point(1, 2)
    assert type(point) is Point and point == Point(1, 2) != Point(2, 1) and hash(point) == hash(Point(1, 2))
    assert repr(point) == "test_own_new_builds_through_the_storage_class.<locals>.Point(x=1, y=2)"
    assert replace(point, y=5) == Point(1, 5) and copy.deepcopy(point) == point
    with pytest.raises(FrozenInstanceError):
        point.x = 9  # type: ignore[misc]
    assert not hasattr(point, "__dict__")
    with pytest.raises(TypeError, match="cannot be extended"):  # its __new__ would not set the new fields
        class Point3(Point):
            z: int = 0


def _package_records() -> list[type]:
    for info in pkgutil.walk_packages(convcost.__path__, "convcost."):
        if not info.name.endswith(".__main__"):  # running it would start the CLI
            importlib.import_module(info.name)
    found: list[type] = []
    pending = list(Record.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("convcost."):
            found.append(cls)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


PACKAGE_RECORDS = _package_records()


def test_package_defines_its_value_objects_as_records() -> None:
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in PACKAGE_RECORDS}
    assert {"convcost.layers.Conv", "convcost.costs.LayerCost", "convcost.network.Node",
            "convcost.errors.Location", "convcost.spec.Spec"} <= names
    assert len(names) >= 35


@pytest.mark.parametrize("cls", PACKAGE_RECORDS, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_every_package_record_is_slotted_and_ordered_as_declared(cls: type) -> None:
    annotations = inspect.get_annotations(cls)
    declared = tuple(name for name, annotation in annotations.items() if not str(annotation).startswith("ClassVar"))
    assert fields(cls) == declared
    own = tuple(name for name in declared if name in cls._storage.__dict__)
    assert cls._storage.__slots__ == own and cls.__slots__ == ()  # the fields are the storage's slots
    assert "__dict__" not in dir(cls)
    assert all(type(inspect.getattr_static(cls, name)).__name__ == "member_descriptor" for name in declared)


OWN_NEW = [cls for cls in PACKAGE_RECORDS if "__new__" in cls.__dict__]


def test_hot_records_have_their_own_new():
    names = {cls.__qualname__ for cls in OWN_NEW}
    assert {"Location", "Node", "LayerCost", "Group"} <= names
    assert not [cls for cls in PACKAGE_RECORDS if "__init__" in cls.__dict__ and cls.__init__ is not object.__init__]


@pytest.mark.parametrize("cls", OWN_NEW, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_own_new_sets_every_field_with_the_declared_defaults(cls: type) -> None:
    assert cls._post_init is None  # an own __new__ does not run __post_init__ checks
    parameters = list(inspect.signature(cls.__new__).parameters.values())[1:]
    assert tuple(parameter.name for parameter in parameters) == fields(cls)
    declared = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    assert declared == cls._defaults
    # every field set from its own argument: distinct markers come back in order, frozen
    markers = tuple(object() for _ in parameters)
    for value in (cls(*markers), cls(**dict(zip(fields(cls), markers)))):
        assert type(value) is cls and not hasattr(value, "__dict__")
        assert tuple(getattr(value, name) for name in fields(cls)) == markers
        with pytest.raises(FrozenInstanceError):
            setattr(value, fields(cls)[0], None)
        assert copy.copy(value) == value
    if declared:  # defaults fill in when omitted
        required = len(parameters) - len(declared)
        partial = cls(*markers[:required])
        assert tuple(getattr(partial, name) for name in fields(cls)[required:]) == tuple(declared.values())
    with pytest.raises(TypeError):
        cls(*markers, None)  # one argument too many
