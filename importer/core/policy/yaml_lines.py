"""A YAML loader for policy text that remembers the line of every key and item, and refuses duplicate keys.

`load_yaml` gives plain dicts and lists (subclasses that carry their lines); `line_of_key` and `line_of_item` read
those lines back for messages, and give None for values that have none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from importer.core.policy.model import PolicyError


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


class _LineLoader(yaml.SafeLoader):
    """yaml.SafeLoader that keeps line numbers (for messages) and refuses duplicate keys."""


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
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
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
