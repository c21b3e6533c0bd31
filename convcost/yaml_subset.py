"""A fast reader for the plain subset of YAML that large specs are written in.

Generated and hand-written specs mostly use block mappings and sequences of
plain words and numbers, with one-line flow collections for options::

    layers:
      - conv: {out: 64, kernel: 3, padding: 1}   # a comment
      - relu
      - concat:
          branches:
            - [pointwise: {out: 32}]
            - []

Reading such text line by line here builds the same located tree as libyaml's
events do in ``spec._TreeBuilder`` (the same values, and the same line and
column for every key, item and collection), about twice as fast. Anything
outside the subset, and anything that would be an error, raises
:class:`Unsupported` and the caller reads the text with libyaml instead: quotes,
anchors, aliases, tags, block scalars, multi-line scalars or flow collections,
complex keys, empty values, tabs, non-ASCII text, directives and document
markers, duplicate keys, deep nesting. So every error message still comes from
the libyaml path. tests/test_yaml_subset.py compares the two readers on every
example, on generated specs and on random documents in and near the subset.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import Location, SpecError
from .spec import LocatedDict, LocatedList

__all__ = ["Unsupported", "read"]

MAX_NESTING = 32  # collections within each other; deeper text goes to libyaml (which checks the limit)

# Any character but these, anywhere (comments included), sends the text to libyaml: the
# subset has no quotes, anchors, aliases, tags, block scalars, directives, complex keys,
# tabs or non-ASCII text. (One negated class: a single fast scan of a large spec.)
_OUTSIDE = re.compile(r"[^\n #$()+,\-./0-9:;<=A-Z\[\]^_a-z{}~]")
# A plain scalar: letters, digits and _ . + - $, not starting with '-' unless a number follows.
_PLAIN = r"(?:-(?=[0-9.]))?[A-Za-z0-9_.+$][A-Za-z0-9_.+\-$]*"
_KEY = re.compile(_PLAIN + r"(?=:(?: |$))")  # a key, followed by ': ' or by ':' at the end of the line
_WORD = re.compile(_PLAIN)
_FLOW = re.compile(r" *(?:([\[\]{},])|(: )|(" + _PLAIN + "))")
# The commonest flow collection, options: {key: value, ...} of plain scalars only.
_FLAT_MAPPING = re.compile(r"\{ *(?:" + _PLAIN + ": " + _PLAIN + "(?: *, *" + _PLAIN + ": " + _PLAIN + r")*)? *\}")
_PAIR = re.compile("(" + _PLAIN + "): (" + _PLAIN + ")")


class Unsupported(Exception):
    """The text is outside the subset (or invalid); read it with libyaml."""


class _Mark:
    """What ``_TreeBuilder.scalar`` reads of a libyaml event, for a plain scalar."""

    __slots__ = ("value", "start_mark", "end_mark", "line", "column")
    tag = None
    implicit = (True, False)
    style = None

    def __init__(self, value: str, line: int, column: int):
        self.value = value
        self.line, self.column = line, column  # 0-based, as libyaml's marks
        self.start_mark = self.end_mark = self


def read(text: str, source: str, scalar: Callable[[Any], Any], max_nodes: int) -> LocatedDict:
    """The located tree of ``text``, whose root must be a block mapping; raises :class:`Unsupported`.

    ``scalar(event)`` turns a plain scalar into its value (``spec._TreeBuilder.scalar``); a
    scalar it refuses, or more than ``max_nodes`` nodes, is left to libyaml to report.
    """
    if _OUTSIDE.search(text) or text.startswith(("---", "...")) or "\n---" in text or "\n..." in text:
        raise Unsupported  # outside the subset, or a document marker
    return _Reader(text, source, scalar, max_nodes).document()


_NO_KEY: Any = object()  # a mapping has no key waiting for its value


class _Block:
    """A block collection still open: its column, container and nesting depth. A mapping's
    ``key`` waits for a value on the lines below (``key:`` ending its line); a sequence
    ``under_key`` is a mapping value written at its key's own indent."""

    __slots__ = ("column", "container", "depth", "is_sequence", "under_key", "key", "key_line")

    def __init__(self, column: int, container: Any, depth: int, is_sequence: bool, under_key: bool = False):
        self.column = column
        self.container = container
        self.depth = depth
        self.is_sequence = is_sequence
        self.under_key = under_key
        self.key: Any = _NO_KEY
        self.key_line = 0


# What the rest of a line holds, from the current column on.
_ITEM, _NODE, _ENTRY = range(3)


class _Reader:
    def __init__(self, text: str, source: str, scalar: Callable[[Any], Any], max_nodes: int):
        self.text = text
        self.source = source
        self.scalar = scalar
        self.max_nodes = max_nodes
        self.count = 0
        self.values: dict[str, Any] = {}
        self.flat: dict[str, tuple[tuple[Any, Any, int], ...]] = {}  # flat mapping text -> pairs

    # ------------------------------------------------------------------ values

    def value(self, word: str, line: int, column: int) -> Any:
        """A plain scalar at 1-based ``line`` and 0-based ``column``."""
        self.count += 1
        if self.count > self.max_nodes:
            raise Unsupported
        known = self.values.get(word, self)  # the same few words recur: each read once
        return self.resolve(word, line, column) if known is self else known

    def resolve(self, word: str, line: int, column: int) -> Any:
        known = self.values.get(word, self)
        if known is self:
            try:
                known = self.values[word] = self.scalar(_Mark(word, line - 1, column))
            except SpecError:  # refused (hex integer, merge key, ...): libyaml's path says why
                raise Unsupported from None
        return known

    def opened(self, depth: int) -> None:
        self.count += 1
        if depth > MAX_NESTING or self.count > self.max_nodes:
            raise Unsupported

    # ------------------------------------------------------------------ block

    def document(self) -> LocatedDict:
        """Read the text line by line with a stack of the block collections still open.

        A line continues the innermost open collection whose column is its indent (the
        ones deeper than it end there): a sequence's next ``- item`` or a mapping's next
        ``key:``, or it is the value of a ``key:`` that ended the line before, indented
        deeper (or a sequence at the key's own indent). From there the line is read left
        to right: ``- `` opens a sequence (or its next item), ``key:`` a mapping, and a
        plain scalar or a one-line flow collection ends the line.
        """
        source, stack = self.source, []
        key_at, word_at = _KEY.match, _WORD.fullmatch
        root: LocatedDict | None = None
        top: Any = None
        for number, line in enumerate(self.text.split("\n"), 1):
            if "#" in line:
                hash_at = line.find("#")
                if hash_at and line[hash_at - 1] != " ":
                    raise Unsupported  # '#' inside a scalar
                line = line[:hash_at]
            content = line.rstrip()  # only spaces: other whitespace is outside the subset
            if not content:
                continue
            column = len(content) - len(content.lstrip())
            under_key = False  # the sequence this line opens is a value at its key's indent
            if top is None:  # the first line: the root mapping's first key
                if column or key_at(content) is None:
                    raise Unsupported  # the root must be a block mapping
                self.opened(1)
                root = LocatedDict(Location(source, number, 1))
                top = _Block(0, root, 1, False)
                stack.append(top)
                state = _ENTRY
            elif top.key is not _NO_KEY:  # the value of the key that ended the line before
                if column > top.column:
                    state, depth = _NODE, top.depth + 1
                elif column == top.column and content.startswith("- ", column):
                    state, depth, under_key = _NODE, top.depth + 1, True  # a sequence at the key's indent
                else:
                    raise Unsupported  # an empty value
            else:
                while column < top.column:  # the collections deeper than this line end
                    stack.pop()
                    top = stack[-1]
                if column != top.column:
                    raise Unsupported  # a continuation line
                if not top.is_sequence:
                    state = _ENTRY
                elif content.startswith("-", column):
                    state = _ITEM
                elif top.under_key:  # the next key of the mapping this sequence is a value of
                    stack.pop()
                    top = stack[-1]
                    state = _ENTRY
                else:
                    raise Unsupported
            match = None  # the key at ``column``, once matched
            while True:
                if state == _ITEM:  # the next item of the sequence ``top``, whose '-' is at ``column``
                    if content[column:column + 2] != "- ":
                        raise Unsupported  # '-' alone: an empty or next-line item
                    column += 2
                    while content[column] == " ":  # '-   x': the item starts at x
                        column += 1
                    state, depth = _NODE, top.depth + 1
                if state == _NODE:  # a node at ``column``: the next item of ``top`` or its key's value
                    first = content[column]
                    opens = True  # a block collection, continued from here and on the lines below
                    if first == "-" and (content.startswith("- ", column) or len(content) == column + 1):
                        self.opened(depth)
                        value = LocatedList(Location(source, number, column + 1))
                        where, state = value.where, _ITEM
                    elif first == "[" or first == "{":
                        value, end = self.flow(content, column, number, depth)
                        if end != len(content):
                            raise Unsupported  # text after a flow collection
                        where, opens = value.where, False
                    else:
                        match = key_at(content, column)
                        if match is not None:
                            self.opened(depth)
                            value = LocatedDict(Location(source, number, column + 1))
                            where, state = value.where, _ENTRY
                        elif word_at(content, column) is not None:
                            value = self.value(content[column:], number, column)
                            where, opens = (number, column + 1), False
                        else:
                            raise Unsupported
                    container = top.container  # the next item of ``top``, or its waiting key's value
                    if top.is_sequence:
                        container.append(value)
                        container.item_where.append(where)
                    else:
                        container[top.key] = value
                        container.key_where[top.key] = (top.key_line, top.column + 1)
                        top.key = _NO_KEY
                    if not opens:
                        break
                    top = _Block(column, value, depth, state == _ITEM, under_key)
                    stack.append(top)
                    under_key = False
                    continue
                # _ENTRY: a key of the mapping ``top``, at ``column``
                if match is None:
                    match = key_at(content, column)
                    if match is None:
                        raise Unsupported
                entries = top.container
                key = self.value(match.group(), number, column)
                if key in entries:
                    raise Unsupported  # a duplicate key is libyaml's path's error to report
                start = match.end() + 2  # after ': '
                if start > len(content):  # 'key:' and the value on the lines below
                    top.key, top.key_line = key, number
                    break
                if content[start] in "[{":
                    value, end = self.flow(content, start, number, top.depth + 1)
                    if end != len(content):
                        raise Unsupported
                elif word_at(content, start) is not None:
                    value = self.value(content[start:], number, start)
                else:
                    raise Unsupported  # 'a: b: c', 'a: - b', spaces in a scalar
                entries[key] = value
                entries.key_where[key] = (number, column + 1)
                break
        if top is None or top.key is not _NO_KEY:
            raise Unsupported  # an empty document, or a key without a value at the end
        assert root is not None
        return root

    # ------------------------------------------------------------------ flow

    def flow(self, content: str, column: int, number: int, depth: int) -> tuple[Any, int]:
        """A one-line flow collection starting at ``content[column]``; returns it and where it ends."""
        self.opened(depth)
        opener = content[column]
        where = Location(self.source, number, column + 1)
        if content.startswith("[]", column):
            return LocatedList(where), column + 2
        pairs = None
        if opener == "{":  # options: the same few flat mappings recur, each read once
            end = len(content)
            pairs = self.flat.get(content[column:])  # one ending the line, as most do, read before
            if pairs is None:
                flat = _FLAT_MAPPING.match(content, column)
                if flat is not None:
                    end = flat.end()
                    text = content[column:end]
                    pairs = self.flat.get(text)
                    if pairs is None:
                        pairs = self.flat[text] = self.pairs(text, number, column)
        if pairs is not None:
            self.count += 2 * len(pairs)
            if self.count > self.max_nodes:
                raise Unsupported
            mapping = LocatedDict(where)
            key_where = mapping.key_where
            for key, value, offset in pairs:
                mapping[key] = value
                key_where[key] = (number, column + offset + 1)
            return mapping, end
        collection: Any = LocatedDict(where) if opener == "{" else LocatedList(where)
        closer = "}" if opener == "{" else "]"
        position = column + 1
        first = True
        while True:
            token = _FLOW.match(content, position)
            if token is None:
                raise Unsupported  # includes a collection not closed on its line
            if token.group(1) == closer:
                return collection, token.end()
            if not first:
                if token.group(1) != ",":
                    raise Unsupported
                position = token.end()
                token = _FLOW.match(content, position)
                if token is None:
                    raise Unsupported
                if token.group(1) == closer:  # a trailing comma
                    return collection, token.end()
            first = False
            start = token.start(token.lastindex or 0)
            item, position = self.flow_node(content, token, number, depth + 1)
            after = _FLOW.match(content, position)
            is_pair = after is not None and after.group(2) is not None
            if opener == "{":
                if not is_pair or isinstance(item, (LocatedDict, LocatedList)):
                    raise Unsupported  # a key without a value, or a collection as a key
                if item in collection:
                    raise Unsupported
                value, position = self.flow_node(content, _FLOW.match(content, after.end()), number, depth + 1)
                collection[item] = value
                collection.key_where[item] = (number, start + 1)
            elif is_pair:  # [key: value]: a one-pair mapping, starting at its key
                if isinstance(item, (LocatedDict, LocatedList)):
                    raise Unsupported
                self.opened(depth + 1)
                pair = LocatedDict(Location(self.source, number, start + 1))
                value, position = self.flow_node(content, _FLOW.match(content, after.end()), number, depth + 2)
                pair[item] = value
                pair.key_where[item] = (number, start + 1)
                collection.append(pair)
                collection.item_where.append(pair.where)
            else:
                collection.append(item)
                collection.item_where.append(item.where if isinstance(item, (LocatedDict, LocatedList))
                                             else (number, start + 1))

    def pairs(self, text: str, number: int, column: int) -> tuple[tuple[Any, Any, int], ...]:
        """(key, value, offset of the key in ``text``) of a flat mapping's text."""
        pairs: list[tuple[Any, Any, int]] = []
        keys = set()
        for pair in _PAIR.finditer(text, 1, len(text) - 1):
            key = self.resolve(pair.group(1), number, column + pair.start(1))
            if key in keys:
                raise Unsupported  # a duplicate key: libyaml's path reports it
            keys.add(key)
            pairs.append((key, self.resolve(pair.group(2), number, column + pair.start(2)), pair.start(1)))
        return tuple(pairs)

    def flow_node(self, content: str, token: Any, number: int, depth: int) -> tuple[Any, int]:
        if token is None:
            raise Unsupported
        if token.group(3) is not None:
            return self.value(token.group(3), number, token.start(3)), token.end()
        if token.group(1) in ("[", "{"):
            return self.flow(content, token.start(1), number, depth)
        raise Unsupported  # ',' ']' '}' or ': ' where a value belongs
