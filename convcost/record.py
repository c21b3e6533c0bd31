"""Frozen value objects without run-time code generation.

A record is declared like a frozen, slotted dataclass::

    class Location(Record):
        file: str
        line: int = 0

and behaves like one: keyword or positional construction with defaults,
``__post_init__`` checks, immutability (``FrozenInstanceError`` on assignment),
``__slots__``, field-wise ``==`` and ``hash`` within one class, a dataclass-style
``repr`` and :func:`replace`. tests/test_record.py checks each of these against
``dataclasses`` itself for every record class in the package.

Why not ``@dataclass(frozen=True, slots=True)``: on Python 3.11 each dataclass
compiles six generated methods with ``exec`` when its module is imported, about
0.9 ms a class. convcost defines 28 on the path of ``convcost analyze``, which
made dataclass creation alone ~24 ms of a ~200 ms run, and the start-up target
(docs/performance.md) leaves ~30 ms for everything convcost does. Here the
methods are ordinary functions compiled once into the package's bytecode; a
record class costs about what a plain class costs to create.

Layout: a record's fields are the slots of a plain class, ``cls._storage``,
that the record class extends without adding any; the record class adds the
frozen ``__setattr__``. A record made hundreds of thousands of times in a large
spec (Location, Node, LayerCost, Group, Block) writes its own ``__new__``: it
fills a blank ``_storage`` object with ordinary attribute stores, then makes it
an instance of the record class (``__class__`` assignment; the layouts are the
same). That is 1.3-3 times cheaper than setting each field through
``object.__setattr__``, as a frozen class's ``__init__`` must (Location 936 ->
524 ns, LayerCost 2,935 -> 986 ns). Such a
``__new__`` must set every field, in order, with the declared defaults, and the
class may not have ``__init__`` or ``__post_init__``; tests/test_record.py
checks every record of the package that has one.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from operator import attrgetter
from typing import Any, Callable, ClassVar, TypeVar

try:
    from typing import dataclass_transform  # Python >= 3.11: type checkers read records as dataclasses
except ImportError:  # pragma: no cover - Python 3.10
    def dataclass_transform(**_: Any) -> Callable[[type], type]:
        return lambda cls: cls

__all__ = ["FrozenInstanceError", "Record", "fields", "replace", "set_field"]

#: Sets one field of a record under construction (the generic ``__init__`` uses it).
set_field = object.__setattr__
_R = TypeVar("_R", bound="Record")


def _is_class_var(annotation: Any) -> bool:
    # Annotations are strings under ``from __future__ import annotations``.
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _values_getter(fields: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function from a record to its field values as a tuple (one C call for two fields or more)."""
    if len(fields) > 1:
        return attrgetter(*fields)
    if fields:
        getter = attrgetter(fields[0])
        return lambda record: (getter(record),)
    return lambda record: ()


class _RecordMeta(type):
    """Turns annotated class attributes into slots, keeping their values as defaults."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> _RecordMeta:
        annotations = namespace.get("__annotations__", {})
        own = tuple(field for field, annotation in annotations.items() if not _is_class_var(annotation))
        inherited: tuple[str, ...] = ()
        defaults: dict[str, Any] = {}
        for base in bases:
            if isinstance(base, _RecordMeta) and base._fields:
                if inherited:
                    raise TypeError(f"{name}: a record extends at most one record with fields")
                inherited, defaults = base._fields, dict(base._defaults)
        if own and any(isinstance(base, _RecordMeta) and "__new__" in base.__dict__ for base in bases):
            raise TypeError(f"{name}: a record with its own __new__ cannot be extended with fields")
        for field in own:
            if field in inherited:
                raise TypeError(f"{name}: field {field!r} is already declared by a base record")
            if field in namespace:
                defaults[field] = namespace.pop(field)  # a slot cannot also be a class attribute
            elif defaults:
                raise TypeError(f"{name}: field {field!r} without a default follows a field with one")
        if "__new__" in namespace:  # a hot record's own constructor (see the module docstring)
            if "__init__" in namespace or "__post_init__" in namespace:
                raise TypeError(f"{name}: a record with its own __new__ has no __init__ or __post_init__")
            namespace["__init__"] = object.__init__  # __new__ has set every field
        namespace["__slots__"] = ()
        if own:  # the fields are the slots of a plain class the record extends
            parent = next((base._storage for base in bases if isinstance(base, _RecordMeta) and base._fields), object)
            storage = type(f"{name}Fields", (parent,), {"__slots__": own, "__module__": namespace.get("__module__")})
            bases = (storage, *bases)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if own:
            cls._storage = storage
        cls._fields = inherited + own
        cls._defaults = defaults
        cls.__match_args__ = cls._fields
        # The field values as a tuple, read in C: what eq and hash compare.
        cls._get_values = staticmethod(_values_getter(cls._fields))
        cls._post_init = getattr(cls, "__post_init__", None)  # checks, run after the fields are set
        return cls


@dataclass_transform(eq_default=True, frozen_default=True)
class Record(metaclass=_RecordMeta):
    """Base of convcost's immutable value objects (see the module docstring)."""

    __slots__ = ()
    _storage: ClassVar[type] = object  # the plain class holding the fields as slots
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _post_init: ClassVar[Callable[[Any], None] | None] = None
    _get_values: ClassVar[Callable[[Any], tuple[Any, ...]]] = staticmethod(lambda record: ())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if kwargs or len(args) != len(fields):
            args = self._bind(args, kwargs)
        for field, value in zip(fields, args):
            set_field(self, field, value)
        if self._post_init is not None:
            self._post_init()

    @classmethod
    def _bind(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """Positional and keyword arguments -> one value per field, with defaults (as dataclasses do)."""
        fields, name = cls._fields, cls.__qualname__
        if len(args) > len(fields):
            raise TypeError(f"{name}() takes {len(fields)} positional arguments but {len(args)} were given")
        values = dict(zip(fields, args))
        for key, value in kwargs.items():
            if key not in fields:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            values[key] = value
        missing = [field for field in fields if field not in values and field not in cls._defaults]
        if missing:
            raise TypeError(f"{name}() missing {len(missing)} required argument(s): "
                            + ", ".join(repr(field) for field in missing))
        return tuple(values[field] if field in values else cls._defaults[field] for field in fields)

    def _values(self) -> tuple[Any, ...]:
        return self._get_values(self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._get_values(self) == other._get_values(other)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._get_values(self))

    def __repr__(self) -> str:
        inner = ", ".join(f"{field}={getattr(self, field)!r}" for field in self._fields)
        return f"{self.__class__.__qualname__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, self._values()


def fields(record: Record | type[Record]) -> tuple[str, ...]:
    """The field names of a record (class or instance), in declaration order."""
    return record._fields


def replace(record: _R, **changes: Any) -> _R:
    """A copy of ``record`` with some fields changed; ``__post_init__`` checks run again."""
    values = dict(zip(record._fields, record._values()))
    for key in changes:
        if key not in values:
            raise TypeError(f"{record.__class__.__qualname__}() got an unexpected keyword argument {key!r}")
    values.update(changes)
    return record.__class__(**values)
