"""Hostile values for the property suite: text, JSON and YAML that someone else controls, and how to bound a call.

The strategy factories are cached: building a strategy costs far more than drawing from it, and the properties
draw inside the test (`data.draw(...)`), once per example.

    text = data.draw(hostile_text())                 # lone surrogates, control and terminal escapes, huge runs
    value = data.draw(json_values())                 # any JSON value, hostile leaves, a little nesting
    body = dump_json({"id": RawJson(deep_json(980))})   # JSON text with raw pieces spliced in (deep, huge, invalid)
    outcome = bounded(lambda: parse(body), allowed=(EventPayloadError,))   # the result or the allowed error

`bounded` is the one place the properties measure cost: CPU time (`time.process_time`, so a busy machine does not
make it fail), in a fresh thread (a stack as shallow as a server thread's, or `stack_frames` deeper), with the
objects that were there before frozen out of the collector's way; and, when asked, the tracemalloc peak of a second
run. `bounded_in_child` measures in a forked child that is killed after `WALL_SECONDS_PER_CHILD`, for calls that run
regexes: a backtracking regex holds the GIL, and nothing in the process could interrupt it. The bounds are generous
on purpose: they do not time the code, they catch work that grows faster than the input (a quadratic scan, a
backtracking regex, an expanded YAML alias, a walk of every path through shared children).
"""

from __future__ import annotations

import functools
import gc
import json
import multiprocessing
import re
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st

T = TypeVar("T")

SECONDS_PER_INPUT = 2.0  # CPU seconds one input may cost: parsers take milliseconds, blow-ups take minutes
PEAK_BYTES_PER_INPUT = 64 * 1024 * 1024  # tracemalloc peak for one parser input of at most about 1 MiB
WALL_SECONDS_PER_CHILD = 30.0  # a forked call that has not answered by then never will: a shared machine is slow,
# but not 15 times slower than SECONDS_PER_INPUT of CPU

LONE_SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff")
CONTROL_CHARACTERS = (
    *(chr(code) for code in range(0x20)),
    "\x7f",
    *(chr(code) for code in range(0x80, 0xA0)),  # C1: \x9b is CSI on some terminals
    "\u2028",
    "\u2029",
    "\u202e",  # right-to-left override
    "\ufeff",
)
TERMINAL_ESCAPES = ("\x1b[2J", "\x1b[1A\r\x1b[K", "\x1b]0;owned\x07", "\x1b[31m", "\x9b2J", "\r", "\n", "\x08")
# Characters that make identifiers, paths and globs interesting without being hostile themselves.
NAME_CHARACTERS = ("a", "b", "z", "0", "9", "/", ":", "@", ".", "-", "_", "__", "*", "?", "**", "..", "A", "é", " ")
# Units that huge strings repeat: cheap to build, expensive only for code that is not linear in them.
HUGE_UNITS = ("a", "a-", "a/", "ab.", "0", "\ud800", "\x1b[", "é", "*a", "{{", "&", "\\")


# -- text -----------------------------------------------------------------------------------------------------------


@functools.cache
def any_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Any code points at all, lone surrogates included (Hypothesis leaves them out unless asked)."""
    return st.text(st.characters(exclude_categories=()), max_size=max_size)


@functools.cache
def tricky_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Short strings built from surrogates, control characters, terminal escapes and name punctuation."""
    pieces = st.sampled_from((*LONE_SURROGATES, *CONTROL_CHARACTERS, *TERMINAL_ESCAPES, *NAME_CHARACTERS))
    return st.lists(pieces, max_size=max_size).map("".join)


@functools.cache
def huge_text(min_count: int = 1_000, max_count: int = 50_000) -> st.SearchStrategy[str]:
    """One unit repeated thousands of times (100 KiB or so at most: a body of several still fits its size limit)."""
    return st.builds(lambda unit, count: unit * count, st.sampled_from(HUGE_UNITS), st.integers(min_count, max_count))


@functools.cache
def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Any of: arbitrary text, tricky text, a huge repeated string."""
    return st.one_of(any_text(max_size), tricky_text(max_size), huge_text())


def mostly(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any], *, valid_share: int = 3
) -> st.SearchStrategy[Any]:
    """`valid` about `valid_share` times in `valid_share + 1`, else `hostile`: inputs that get past the first check."""
    return st.one_of(*([valid] * valid_share), hostile)


def spliced(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid string with a hostile piece put in at the start, the middle or the end."""

    def splice(text: str, piece: str, where: int) -> str:
        cut = (0, len(text) // 2, len(text))[where]
        return text[:cut] + piece + text[cut:]

    return st.builds(splice, valid, st.one_of(tricky_text(4), st.sampled_from(LONE_SURROGATES)), st.integers(0, 2))


# -- JSON -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawJson:
    """A piece of JSON text put into a document as is by `dump_json` (deep nesting, huge arrays, invalid JSON)."""

    text: str


def dump_json(document: Any, *, ensure_ascii: bool = True) -> str:
    """`json.dumps`, with every `RawJson` in the document replaced by its text.

    `ensure_ascii=False` writes lone surrogates as they are, which makes the UTF-8 encoding of the text invalid.
    """
    pieces: list[str] = []

    def placeholder(value: object) -> str:
        if not isinstance(value, RawJson):
            raise TypeError(f"not JSON: {value!r}")
        pieces.append(value.text)
        return f"@@raw-json-{len(pieces) - 1}@@"

    text = json.dumps(document, default=placeholder, ensure_ascii=ensure_ascii)
    for number, piece in enumerate(pieces):
        text = text.replace(f'"@@raw-json-{number}@@"', piece, 1)
    return text


def deep_json(depth: int, *, kind: str = "array") -> str:
    """JSON text nested `depth` levels: `[[[…]]]` or `{"a":{"a":…}}`."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def deep_value(depth: int) -> list[Any]:
    """The same as Python objects, built without recursion: a list nested `depth` levels."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# Depths around the places where something gives up: a nesting limit of 64, Python's recursion limit (json.loads,
# json.dumps and repr all recurse), and far beyond.
NESTING_DEPTHS = (2, 63, 64, 65, 100, 500, 900, 960, 976, 990, 999, 1000, 1001, 1100, 3000, 100_000)
CALLER_FRAMES = (0, 8, 16, 24, 32, 48, 64)  # how deep callers are: a worker thread, a request handler, a CLI


@functools.cache
def nesting_depths() -> st.SearchStrategy[int]:
    """A depth from `NESTING_DEPTHS`, or any depth in the bands around 64 and around the recursion limit."""
    return st.one_of(st.sampled_from(NESTING_DEPTHS), st.integers(55, 75), st.integers(940, 1010))


@functools.cache
def raw_json_pieces() -> st.SearchStrategy[RawJson]:
    """JSON text that json.dumps would never write: deep nesting, huge arrays and numbers, constants, bad syntax."""
    return st.one_of(
        st.builds(deep_json, nesting_depths(), kind=st.sampled_from(("array", "object"))),
        st.builds(lambda count: "[" + ",".join(["0"] * count) + "]", st.integers(100, 5_000)),
        st.builds(lambda count: "[" + ",".join(['{"a":null}'] * count) + "]", st.integers(100, 2_000)),
        st.builds(lambda digits: "1" * digits, st.sampled_from((20, 400, 4_300, 4_301, 50_000))),
        st.sampled_from(("NaN", "Infinity", "-Infinity", "1e999", "-0", "1.0e-999", '"\\ud800"', '"\\udc00\\ud800"')),
        st.sampled_from(('{"a":1,"a":2}', "[1,]", "{", '"\\x41"', "tru", '"a\u0000"')),
    ).map(RawJson)


@functools.cache
def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**63),
        st.integers(max_value=-1),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text(),
    )


@functools.cache
def json_values(*, with_raw: bool = True) -> st.SearchStrategy[Any]:
    """Any JSON value with hostile leaves, a little nesting, and (unless `with_raw=False`) raw pieces of JSON text."""
    leaves = st.one_of(json_scalars(), raw_json_pieces()) if with_raw else json_scalars()
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text(12), children, max_size=4),
        max_leaves=10,
    )


# -- documents of a known shape ------------------------------------------------------------------------------------

ABSENT = object()  # a key left out of the object


class Shapes:
    """Builds the objects of a document: every value valid (`hostile=False`), or each one maybe hostile.

        shapes = Shapes(hostile=True)
        target = shapes.obj({"repository": shapes.field(REPOSITORIES), "tag": shapes.field(TAGS)})
    """

    def __init__(self, *, hostile: bool, raw_json: bool = True) -> None:
        self.hostile = hostile
        self.values = json_values(with_raw=raw_json)  # raw JSON text only where the document becomes JSON text

    def field(self, valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        """A field's value: usually valid, else a valid string with a hostile piece in it, hostile JSON, or absent."""
        if not self.hostile:
            return valid
        return mostly(valid, st.one_of(self.values, st.just(ABSENT), spliced(valid.map(str))), valid_share=4)

    def obj(
        self,
        fields: dict[str, st.SearchStrategy[Any]],
        *,
        optional: dict[str, st.SearchStrategy[Any]] | None = None,
        extra: bool = True,
    ) -> st.SearchStrategy[Any]:
        """An object of `fields` and maybe of `optional` ones (absent ones left out), maybe with unknown keys, maybe
        not an object at all."""
        shaped = st.fixed_dictionaries(fields, optional=optional or {}).map(
            lambda values: {k: v for k, v in values.items() if v is not ABSENT}
        )
        if not self.hostile:
            return shaped
        if extra:
            shaped = st.builds(lambda known, unknown: {**unknown, **known}, shaped,
                               st.dictionaries(hostile_text(12), self.values, max_size=2))
        return mostly(shaped, self.values, valid_share=6)


@functools.cache
def corruptions(*, raw_json: bool = True) -> st.SearchStrategy[Any]:
    """What one corrupted value becomes (ABSENT: the key is removed; raw JSON text only if `raw_json`)."""
    return st.one_of(
        st.sampled_from(LONE_SURROGATES),
        tricky_text(6),
        huge_text(),
        *([raw_json_pieces()] if raw_json else []),
        json_values(with_raw=False),
        st.just(ABSENT),
    )


@st.composite
def one_value_corrupted(
    draw: st.DrawFn, document: Any, *, favoured: frozenset[str] = frozenset(), raw_json: bool = True
) -> Any:
    """`document` with one value somewhere in it replaced by a hostile one (or removed), or spliced if a string.

    Half the time the value is one under a `favoured` key, when the document has one: an otherwise valid document
    gets past the first checks and reaches the validation of that one value.
    """
    places = list(_places(document, ()))
    if not places:
        return document
    keys = sorted({place[-1] for place in places if place[-1] in favoured})
    if keys and draw(st.booleans(), label="corrupt a favoured key"):
        key = draw(st.sampled_from(keys), label="favoured key")  # each key as likely, however often it occurs
        places = [place for place in places if place[-1] == key]
    path = draw(st.sampled_from(places), label="corrupted place")
    original = _at(document, path)
    hostile = corruptions(raw_json=raw_json)
    replacement = draw(st.one_of(hostile, spliced(st.just(original))) if isinstance(original, str) else hostile,
                       label="corrupted value")
    return _replaced(document, path, replacement)


def _places(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _replaced(value: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    """A copy of `value` with the value at `path` replaced (or removed, for ABSENT); the rest is shared."""
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    inner = _replaced(copy[head], rest, replacement)
    if inner is ABSENT:
        del copy[head]
    else:
        copy[head] = inner
    return copy


# -- YAML -----------------------------------------------------------------------------------------------------------


def yaml_alias_bomb(levels: int, fanout: int, *, name: str = "bomb") -> str:
    """A YAML document whose `name` expands to fanout**levels strings through aliases (tiny as text)."""
    lines = [f'l0: &l0 ["{"x" * 8}"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fanout) + "]")
    lines.append(f"{name}: *l{levels}")
    return "\n".join(lines) + "\n"


def yaml_deep(depth: int, *, kind: str = "flow") -> str:
    """YAML nested `depth` levels: flow `[[[…]]]`, or block mappings indented one space a level."""
    if kind == "flow":
        return "[" * depth + "]" * depth
    return "".join(" " * level + "a:\n" for level in range(depth)) + " " * depth + "b: 1\n"


@functools.cache
def yaml_hazards() -> st.SearchStrategy[str]:
    """YAML text to put where a value goes: what a safe loader still builds, and what would expand or recurse later.

    Deep flow nesting, huge numbers (Python refuses to convert integers of over 4,300 digits), unsafe and odd tags,
    merge keys, duplicate and complex keys, recursive and undefined aliases, escapes, a huge quoted string.
    """
    return st.one_of(
        st.builds(lambda depth: yaml_deep(depth).strip(), st.sampled_from((31, 32, 33, 50, 64, 65, 500, 990, 5_000))),
        st.sampled_from(("1" * 5_000, "-" + "9" * 4_301, "0x" + "f" * 5_000, "0o" + "7" * 5_000, "1e999", ".nan",
                         "-.inf", "1_000_000", "0b" + "1" * 20_000, "190:20:30", "2001-12-14t21:59:43.10-05:00")),
        st.sampled_from(("!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!!binary aGk=",
                         "!!set {a, b}", "!!timestamp 2001-13-45", "!!omap [a: 1]", "!!str", "!ruby/object {}",
                         "{<<: {a: 1}}", "{a: 1, a: 2}", "[? a]", "{? [a]: 1}", "&x [*x]", "*undefined", "'\\ud800'",
                         '"\\ud800"', '"\\x1b[2J"', "|\n  text", "\t- x", "{: }", "[, ]", "- - - -")),
        huge_text().map(lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    )


# -- identifiers --------------------------------------------------------------------------------------------------


def is_scalar_values_only(text: str) -> bool:
    """True when `text` holds no lone surrogate: it can be encoded, stored and printed as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# What a terminal acts on or a viewer reorders, and what has no UTF-8 form: C0 and C1 controls and DEL, the line and
# paragraph separators, bidi embeddings, overrides and isolates, lone surrogates (docs/security.md, the event rule).
UNSAFE_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x202E), (0x2066, 0x2069), (0xD800, 0xDFFF))


_UNSAFE = re.compile("[" + "".join(f"{chr(first)}-{chr(last)}" for first, last in UNSAFE_RANGES) + "]")


def unsafe_characters_in(text: str) -> list[str]:
    """The unsafe characters in `text` (at most five), escaped, for assertion messages; [] when there is none."""
    return [ascii(match.group()) for match, _ in zip(_UNSAFE.finditer(text), range(5), strict=False)]


# -- cost -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cost:
    """What one call cost: CPU seconds, and the tracemalloc peak when it was measured."""

    seconds: float
    peak_bytes: int | None


def measured(call: Callable[[], T], *, memory: bool, stack_frames: int = 0) -> tuple[T | BaseException, Cost]:
    """Run `call` in a fresh thread, `stack_frames` frames down; its result (or the exception it raised) and its cost.

    A fresh thread starts with an empty stack, as a server's request thread does: how deep the parsers may recurse
    then depends on the input and on `stack_frames` (how deep a caller already is), not on pytest and Hypothesis.
    """
    outcome: list[T | BaseException] = []

    def run() -> None:
        try:
            outcome.append(_frames_down(stack_frames, call))
        except Exception as error:  # noqa: BLE001 - returned for the caller to judge
            outcome.append(error)

    tracing = memory and not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
    elif memory:
        tracemalloc.reset_peak()
    # The garbage collector walks every object the process holds (pytest's, Hypothesis', earlier examples'): frozen,
    # they are left out, and a collection the call triggers costs what the call's own objects cost.
    gc.freeze()
    started = time.process_time()
    try:
        worker = threading.Thread(target=run, name="bounded-call", daemon=True)  # a hung call never blocks exit
        worker.start()
        worker.join()
        seconds = time.process_time() - started
    finally:
        gc.unfreeze()
    peak = tracemalloc.get_traced_memory()[1] if memory else None
    if tracing:
        tracemalloc.stop()
    assert outcome, "the call ended its thread without returning or raising an Exception"
    return outcome[0], Cost(seconds, peak)


def _frames_down(frames: int, call: Callable[[], T]) -> T:
    return _frames_down(frames - 1, call) if frames > 0 else call()


def bounded(
    call: Callable[[], T],
    *,
    allowed: tuple[type[Exception], ...],
    seconds: float = SECONDS_PER_INPUT,
    peak_bytes: int | None = PEAK_BYTES_PER_INPUT,
    stack_frames: int = 0,
    what: str = "input",
) -> T | Exception:
    """The result of `call`, or the documented error it raised (one of `allowed`), within the bounds.

    Any other exception is raised again (the property fails on it); a call over `seconds` of CPU fails with what it
    cost. With `peak_bytes` (None: not measured) the call runs a second time under tracemalloc, which slows
    allocation-heavy code several times over, and fails past that peak: so `call` must be free of side effects.
    `stack_frames`: run the call that many frames down a fresh thread's stack, as a caller deep in a server would.
    """
    outcome, cost = measured(call, memory=False, stack_frames=stack_frames)
    if isinstance(outcome, BaseException) and not isinstance(outcome, allowed):
        raise outcome
    assert cost.seconds <= seconds, f"{what}: {cost.seconds:.2f} s of CPU, over the {seconds} s bound"
    if peak_bytes is not None:
        _, traced = measured(call, memory=True, stack_frames=stack_frames)
        assert traced.peak_bytes is not None and traced.peak_bytes <= peak_bytes, (
            f"{what}: peak {traced.peak_bytes / 2**20:.1f} MiB, over the {peak_bytes / 2**20:.0f} MiB bound"
        )
    return outcome


def bounded_in_child(
    call: Callable[[], T],
    *,
    allowed: tuple[type[Exception], ...],
    seconds: float = SECONDS_PER_INPUT,
    wall_seconds: float = WALL_SECONDS_PER_CHILD,
    what: str = "input",
) -> T | Exception:
    """`bounded` (without the memory bound) in a forked child process that is killed after `wall_seconds`.

    For calls that may never come back to Python: a regex backtracking in C holds the GIL for as long as it runs,
    so no timeout in this process could interrupt it, and a regression would hang the run instead of failing it.
    The result and any exception travel back pickled (the child's traceback does not: its repr says what it was).
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        outcome, cost = measured(call, memory=False)
        try:
            sender.send((outcome, cost))
        except Exception as error:  # noqa: BLE001 - an unpicklable result: say what it was instead
            sender.send((AssertionError(f"unpicklable outcome {type(outcome).__name__}: {error}"), cost))

    process = context.Process(target=child, name="bounded-child", daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(wall_seconds):
            raise AssertionError(f"{what}: no answer within {wall_seconds} s of wall time (the child was killed)")
        outcome, cost = receiver.recv()
    finally:
        process.kill()
        process.join(timeout=10)
        receiver.close()
    if isinstance(outcome, BaseException) and not isinstance(outcome, allowed):
        raise outcome
    assert cost.seconds <= seconds, f"{what}: {cost.seconds:.2f} s of CPU, over the {seconds} s bound"
    return outcome


def scaled_examples(share: float) -> int:
    """`share` of the profile's examples (at least 3): for properties whose one example costs a lot more."""
    return max(3, round(settings.default.max_examples * share))
