"""YAML that others wrote (Helm charts, policy files), read within bounds that keep every later step linear in its size.

    document = load_outside_yaml(raw)            # bytes or str; yaml.YAMLError when refused
    describe_yaml_error(error)                   # "a number of 5002 characters, over the 1000 allowed (line 2, …)"
    class PolicyLoader(BoundedSafeLoader): ...   # the scalar rules under a loader with constructors of its own

`yaml.safe_load` runs no code, but it does not bound work. An alias stands for the whole value its anchor names, so
a few hundred bytes of anchors stand for 10**9 values: PyYAML shares them, so loading is cheap, but whatever walks
the result afterwards — a `repr` in an error message, a walk over chart values — expands them (a chart's `name: *a8`
once made an error message of gigabytes). YAML 1.1 integers (`0x…`, base 60 `1:30:…`) can be of any size, base 60
at a cost quadratic in its length, and Python refuses to write out one of more than 4300 digits; an impossible date
or an explicit tag that does not fit (`!!bool maybe`) raises an exception that is not a YAMLError at all.

`BoundedSafeLoader` is `yaml.SafeLoader` with rules for scalars, each refusal a MarkedYAMLError naming the line:

- numbers written in at most `MAX_YAML_INTEGER_CHARACTERS` (1000) characters: an integer, and a plain scalar that
  only a number's characters make up (the YAML 1.1 patterns that would type it keep regex state for every
  character, about 45 bytes each); longer ones are refused (`YamlBoundError`), not typed.
- a constructor that fails (`!!bool maybe`, `!!float abc`, `2001-13-45`) is a ConstructorError naming the value,
  cut short and escaped.

`load_outside_yaml` (charts) adds, on libyaml's parser when PyYAML has it (several times faster; it also refuses
nesting past 1000 levels), a bound on expansion, each refusal a `YamlBoundError`:

- at most `MAX_YAML_NODES` (1,000,000) nodes and `MAX_YAML_CHARACTERS` (10 MiB) of scalar text in one document,
  counting every alias as a copy of what it names. The count runs on the composed node graph before anything is
  constructed, visiting each node once, so it costs time linear in the text; merge keys (`<<: *base`) count the
  mapping they merge in. Without aliases, a file of at most 5 MiB (a chart's limit per file) is within the
  character limit, and within the node limit unless it holds over a million values.
- no alias inside the value it names (`&a [*a]`: a structure that contains itself, infinite once expanded). Helm's
  YAML library (go-yaml) refuses these too, and bounds alias expansion in the same spirit.

A policy never expands its aliases, and `importer.core.policy.yaml_lines` counts every node and alias it composes
against a budget of its own; it uses `BoundedSafeLoader` for the scalar rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from importer.core.excerpts import excerpt, excerpt_text

__all__ = [
    "MAX_YAML_CHARACTERS",
    "MAX_YAML_INTEGER_CHARACTERS",
    "MAX_YAML_NODES",
    "BoundedSafeLoader",
    "YamlBoundError",
    "describe_yaml_error",
    "load_outside_yaml",
]

MAX_YAML_NODES = 1_000_000
MAX_YAML_CHARACTERS = 10 * 1024 * 1024
MAX_YAML_INTEGER_CHARACTERS = 1000
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_NUMBER_START = frozenset("+-.0123456789")
_NUMBER_CHARACTERS = frozenset("0123456789_:.+-eExXoObBabcdefABCDEF")
# What a constructor raises for a value it cannot make (PyYAML lets these through as they are).
_CONSTRUCTOR_FAILURES = (ValueError, KeyError, AttributeError, TypeError, OverflowError, IndexError)


class YamlBoundError(ConstructorError):
    """A document refused by a bound of this module (it may be valid YAML): its problem says which, with the line."""


class _ScalarRules:
    """The scalar rules, for a loader class that also derives from a yaml parser, SafeConstructor and Resolver."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if (kind is yaml.ScalarNode and implicit[0] and len(value) > MAX_YAML_INTEGER_CHARACTERS
                and value[0] in _NUMBER_START and _NUMBER_CHARACTERS.issuperset(value)):
            return f"{_YAML_TAG_PREFIX}int"  # refused by _bounded_integer, with the line, before any regex runs
        return super().resolve(kind, value, implicit)  # type: ignore[misc,no-any-return]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except _CONSTRUCTOR_FAILURES as error:
            what = excerpt(node.value) if isinstance(node, yaml.ScalarNode) else f"this {node.id}"
            tag = node.tag.removeprefix(_YAML_TAG_PREFIX) if node.tag else "value"
            detail = f": {excerpt_text(str(error), 120)}" if isinstance(error, ValueError) else ""
            raise ConstructorError(None, None, f"{what} is not a valid {excerpt_text(tag, 60)}{detail}",
                                   node.start_mark) from None


class _ExpansionBound:
    """Refuses a document whose expansion is over the limits, before constructing it."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()  # type: ignore[attr-defined]
        if node is None:
            return None
        check_expansion(node)
        return self.construct_document(node)  # type: ignore[attr-defined]


class BoundedSafeLoader(_ScalarRules, yaml.SafeLoader):
    """yaml.SafeLoader with the scalar rules of this module: number length, constructor failures with the line."""


def _bounded_integer(loader: SafeConstructor, node: yaml.ScalarNode) -> int:
    if len(node.value) > MAX_YAML_INTEGER_CHARACTERS:
        raise YamlBoundError(
            None, None, f"a number of {len(node.value)} characters, over the {MAX_YAML_INTEGER_CHARACTERS} allowed",
            node.start_mark,
        )
    return SafeConstructor.construct_yaml_int(loader, node)


BoundedSafeLoader.add_constructor(f"{_YAML_TAG_PREFIX}int", _bounded_integer)


class _OutsideLoader(_ExpansionBound, BoundedSafeLoader):
    """What `load_outside_yaml` reads with where PyYAML has no libyaml."""


_OutsideLoaderClass: type[yaml.SafeLoader] = _OutsideLoader
if getattr(yaml, "__with_libyaml__", False):

    class _OutsideCLoader(_ExpansionBound, _ScalarRules, yaml.CSafeLoader):  # type: ignore[name-defined,misc]
        """The same rules on libyaml's parser."""

    _OutsideCLoader.add_constructor(f"{_YAML_TAG_PREFIX}int", _bounded_integer)
    _OutsideLoaderClass = _OutsideCLoader


def load_outside_yaml(raw: bytes | str) -> Any:
    """The one YAML document in `raw`, read within all the bounds of this module (on libyaml's parser when PyYAML
    has it); yaml.YAMLError when it is not YAML or is refused.

    RecursionError still means the document nests too deeply for the constructor; the caller names the file.
    """
    return yaml.load(raw, Loader=_OutsideLoaderClass)  # noqa: S506 - a SafeLoader or CSafeLoader subclass


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """What is wrong and where, for a message: "expected ',' or ']', but got '<stream end>' (line 2, column 1)"."""
    if isinstance(error, yaml.MarkedYAMLError):
        parts = [part for part in (error.context, error.problem) if part]
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return excerpt_text(": ".join(parts) or "unreadable") + where
    return excerpt_text(" ".join(str(error).split()))


# --- the expansion count -------------------------------------------------------------------------------------------


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that, with its aliases expanded, is over `MAX_YAML_NODES` nodes or `MAX_YAML_CHARACTERS`.

    Each distinct node is measured once (an alias is the very node its anchor names, so its measure is reused):
    time and memory linear in the graph, never in its expansion. Refuses an alias inside the value it names.
    """
    if isinstance(root, yaml.ScalarNode):
        _check_totals(root, 1, len(root.value))
        return
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, characters) of its expansion
    open_nodes: set[int] = set()
    # Each frame: the node, its children still to visit, and the nodes and characters counted so far.
    frames: list[tuple[yaml.Node, Iterator[yaml.Node], list[int]]] = [(root, _children(root), [1, 0])]
    open_nodes.add(id(root))
    while frames:
        node, children, totals = frames[-1]
        child = next(children, None)
        if child is None:
            frames.pop()
            open_nodes.discard(id(node))
            measured[id(node)] = (totals[0], totals[1])
            if frames:
                _add(frames[-1], totals[0], totals[1])
            continue
        if isinstance(child, yaml.ScalarNode):
            _add(frames[-1], 1, len(child.value))
        elif id(child) in measured:
            _add(frames[-1], *measured[id(child)])
        elif id(child) in open_nodes:
            raise YamlBoundError(None, None, "a structure that contains itself: an alias inside the value it names",
                                 child.start_mark)
        else:
            open_nodes.add(id(child))
            frames.append((child, _children(child), [1, 0]))


def _add(frame: tuple[yaml.Node, Iterator[yaml.Node], list[int]], nodes: int, characters: int) -> None:
    totals = frame[2]
    totals[0] += nodes
    totals[1] += characters
    _check_totals(frame[0], totals[0], totals[1])


def _check_totals(node: yaml.Node, nodes: int, characters: int) -> None:
    if nodes > MAX_YAML_NODES:
        problem = f"this value expands to more than {MAX_YAML_NODES} YAML nodes, counting each alias as a copy"
    elif characters > MAX_YAML_CHARACTERS:
        problem = f"this value expands to more than {MAX_YAML_CHARACTERS} characters, counting each alias as a copy"
    else:
        return
    raise YamlBoundError(None, None, problem, node.start_mark)
