"""A YAML loader for policy text that remembers the line of every key and item, and refuses duplicate keys.

`load_yaml` gives plain dicts and lists (subclasses that carry their lines); `line_of_key` and `line_of_item` read
those lines back for messages, and give None for values that have none.

The work is bounded by the loader itself, whatever the text (within its 1 MiB): collections nested deeper than
MAX_POLICY_NESTING are refused where they start (PyYAML composes recursively: deep nesting was a RecursionError),
and every node composed, every alias and every pair a merge key (`<<`) copies count against MAX_POLICY_NODES
(PyYAML copies a merged mapping's pairs into each mapping that merges it: a chain of merges cost quadratic time and
memory). Either is a PolicyError with the source and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from importer.core.policy.model import MAX_POLICY_NESTING, MAX_POLICY_NODES, PolicyError
from importer.core.yaml_input import BoundedSafeLoader

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineMap(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key."""

    __slots__ = ("key_lines",)

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}


class _LineList(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    __slots__ = ("item_lines",)

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []


class _TooComplex(yaml.YAMLError):
    """The text nests deeper, or holds more nodes, than a policy may: `problem` at `mark`."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = mark.line + 1 if mark is not None else None


class _LineLoader(BoundedSafeLoader):  # scalars PyYAML cannot make are errors with a line
    """yaml.SafeLoader that keeps line numbers (for messages), refuses duplicate keys, and bounds nesting and the
    number of nodes (aliases and merged keys included)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # collections open around the node being composed
        self._merge_depth = 0  # merged mappings being flattened inside one another
        self._nodes = 0

    def _count(self, nodes: int, mark: yaml.Mark | None) -> None:
        self._nodes += nodes
        if self._nodes > MAX_POLICY_NODES:
            raise _TooComplex(
                f"more than {MAX_POLICY_NODES} YAML nodes (values, aliases and merged keys); a policy needs far fewer",
                mark,
            )

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        self._count(1, event.start_mark)
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        self._depth += 1
        try:
            if self._depth > MAX_POLICY_NESTING:
                raise _TooComplex(f"nested more than {MAX_POLICY_NESTING} levels deep; a policy needs 4",
                                  event.start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Resolve merge keys (`<<`) as yaml.SafeLoader does, counting every pair copied against the node budget and
        bounding how deep merged mappings flatten one another."""
        self._merge_depth += 1
        try:
            if self._merge_depth > MAX_POLICY_NESTING:
                raise _TooComplex(f"merge keys (<<) nested more than {MAX_POLICY_NESTING} levels deep",
                                  node.start_mark)
            merged: list[tuple[yaml.Node, yaml.Node]] = []
            merged_keys: set[int] = set()  # PyYAML keeps the first pair for a key object: the same, here
            index = 0
            while index < len(node.value):
                key_node, value_node = node.value[index]
                if key_node.tag != _MERGE_TAG:
                    if key_node.tag == "tag:yaml.org,2002:value":
                        key_node.tag = "tag:yaml.org,2002:str"
                    index += 1
                    continue
                del node.value[index]
                for source in self._merge_sources(node, value_node):
                    self.flatten_mapping(source)
                    self._count(len(source.value), source.start_mark)
                    for pair in source.value:
                        if id(pair[0].value) not in merged_keys:
                            merged_keys.add(id(pair[0].value))
                            merged.append(pair)
            if merged:
                node.value = merged + node.value
        finally:
            self._merge_depth -= 1

    @staticmethod
    def _merge_sources(node: yaml.MappingNode, value_node: yaml.Node) -> list[yaml.MappingNode]:
        """The mappings a merge key's value names (one, or a list of them), else the error yaml.SafeLoader gives."""
        if isinstance(value_node, yaml.MappingNode):
            return [value_node]
        if not isinstance(value_node, yaml.SequenceNode):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"expected a mapping or list of mappings for merging, but found {value_node.id}",
                value_node.start_mark,
            )
        for subnode in value_node.value:
            if not isinstance(subnode, yaml.MappingNode):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"expected a mapping for merging, but found {subnode.id}", subnode.start_mark,
                )
        return list(value_node.value)


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_LineMap]:
    mapping = _LineMap()
    yield mapping
    _refuse_duplicate_keys(node)
    loader.flatten_mapping(node)  # resolves `<<` merge keys, as yaml.safe_load does
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        try:
            mapping[key] = loader.construct_object(value_node)
        except TypeError as error:  # an unhashable key, e.g. a list
            problem = "a key must be a plain value, not a list or a mapping"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark) from error
        mapping.key_lines[key] = key_node.start_mark.line + 1


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    first_line: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            continue
        identity = (key_node.tag, key_node.value)
        line = key_node.start_mark.line + 1
        if identity in first_line:
            problem = f"duplicate key {key_node.value!r} (first at line {first_line[identity]})"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        first_line[identity] = line


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_LineList]:
    sequence = _LineList()
    yield sequence
    sequence.extend(loader.construct_object(child) for child in node.value)
    sequence.item_lines.extend(child.start_mark.line + 1 for child in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str, source: str) -> Any:
    """The YAML document in `text`; PolicyError (naming `source` and the line) when it is not valid YAML."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a yaml.SafeLoader subclass
    except _TooComplex as error:
        raise PolicyError(source, "", error.problem, error.line) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable"
        raise PolicyError(source, "", f"invalid YAML: {problem}", mark.line + 1 if mark else None) from error
    except yaml.YAMLError as error:
        raise PolicyError(source, "", f"invalid YAML: {error}") from error


def line_of_key(mapping: object, key: object) -> int | None:
    """The line of `key` in a mapping `load_yaml` made, or None."""
    return getattr(mapping, "key_lines", {}).get(key)


def line_of_item(sequence: object, index: int) -> int | None:
    """The line of item `index` in a sequence `load_yaml` made, or None."""
    lines = getattr(sequence, "item_lines", [])
    return lines[index] if index < len(lines) else None
