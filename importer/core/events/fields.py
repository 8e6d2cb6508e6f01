"""Validating readers for the fields of an event, and the JSON loading every schema starts with.

A reader takes the parent object, the key and the parent's path, and raises `EventError` naming the
place in the body ("events[2].target.digest: ..."); `load_json` raises `EventPayloadError` for the body.

Every string an event carries goes through `read_string`, so none reaches the ledger, a log line or a terminal
unchecked: it must be printable Unicode text (importer/core/safe_text.py: no lone surrogates, control characters,
bidi controls or line separators) of at most `MAX_TEXT_LENGTH` characters (event ids 256, repositories 255; tags
and digests have their own grammar). Bodies nest at most `MAX_JSON_DEPTH` arrays and objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from importer.core.bounded_json import MAX_JSON_DEPTH, JsonTooDeep
from importer.core.bounded_json import loads as load_bounded_json
from importer.core.events.model import EventPayloadError, bare_media_type
from importer.core.reference import MAX_REPOSITORY_LENGTH, is_valid_digest, is_valid_repository, is_valid_tag
from importer.core.safe_text import describe_unsafe, unsafe_character

MAX_BODY_BYTES = 1024 * 1024
MAX_EVENT_ID_LENGTH = 256
MAX_TEXT_LENGTH = 1024  # any other string of an event: origins, media types, user agents, actors, times, URLs


class EventError(Exception):
    """One event is invalid; `str()` is the reason with its path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or '(event)'}: {problem}")


# -- the body ---------------------------------------------------------------------------------------------


def load_json(body: bytes | str, what: str) -> object:
    """Decode a body after checking its size; every failure is an EventPayloadError naming `what`."""
    size = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    if size > MAX_BODY_BYTES:
        raise EventPayloadError(f"{what}: {size} bytes, larger than the {MAX_BODY_BYTES}-byte limit")
    try:
        return load_bounded_json(body, max_depth=MAX_JSON_DEPTH, parse_constant=_refuse_constant)
    except JsonTooDeep as error:
        raise EventPayloadError(f"{what}: {error}") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise EventPayloadError(f"{what}: not valid JSON ({error.msg} at {where})") from None
    except UnicodeError as error:
        raise EventPayloadError(f"{what}: not UTF-8 text ({error})") from None
    except ValueError as error:
        raise EventPayloadError(f"{what}: not valid JSON ({error})") from None


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def content_media_type(content_type: str | None) -> str | None:
    """The bare media type of a Content-Type header; None when absent or blank."""
    if content_type is None or not content_type.strip():
        return None
    return bare_media_type(content_type)


# -- event and target fields ------------------------------------------------------------------------------


def read_event_id(event: Mapping[str, object], path: str) -> str:
    return read_required_string(event, "id", path, max_length=MAX_EVENT_ID_LENGTH)


def is_usable_event_id(value: object) -> bool:
    """Whether `value` would pass as an event id: 1 to 256 characters of printable text."""
    return isinstance(value, str) and text_problem(value, MAX_EVENT_ID_LENGTH) is None and value != ""


def text_problem(value: str, max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """What makes `value` unfit to keep or show (too long, or an unsafe character), or None when it is fit."""
    if len(value) > max_length:
        return f"{show(value)} is {len(value)} characters, longer than {max_length}"
    found = unsafe_character(value)
    if found is not None:
        return f"{show(value)} is not printable text: {describe_unsafe(*found)}"
    return None


def read_repository(target: Mapping[str, object], path: str) -> str:
    value = read_required_string(target, "repository", path, max_length=MAX_REPOSITORY_LENGTH)
    if not is_valid_repository(value):
        raise EventError(join_path(path, "repository"), f"{show(value)} is not a valid repository name")
    return value


def read_tag(target: Mapping[str, object], path: str) -> str | None:
    value = read_string(target, "tag", path)
    if not value:
        return None
    if not is_valid_tag(value):
        raise EventError(join_path(path, "tag"), f"{show(value)} is not a valid tag")
    return value


def read_digest(target: Mapping[str, object], path: str, *, required: bool) -> str | None:
    value = read_required_string(target, "digest", path) if required else read_string(target, "digest", path)
    if value is None:
        return None
    if not is_valid_digest(value):
        raise EventError(
            join_path(path, "digest"),
            f"{show(value)} is not a valid digest"
            " (expected sha256:<64 lower-case hex> or sha512:<128 lower-case hex>)",
        )
    return value


def read_size(target: Mapping[str, object], path: str) -> int | None:
    for key in ("size", "length"):
        value = target.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise EventError(join_path(path, key), f"expected an integer, got {show(value)}")
        if value < 0:
            raise EventError(join_path(path, key), f"{value} is negative")
        return value
    return None


def read_reference_media_types(target: Mapping[str, object], path: str) -> frozenset[str]:
    """Media types of `target.references` (distribution with `includereferences`), lower-cased."""
    references = target.get("references")
    if references is None:
        return frozenset()
    references_path = join_path(path, "references")
    if not isinstance(references, list):
        raise EventError(references_path, f"expected an array, got {json_type(references)}")
    found: set[str] = set()
    for index, reference in enumerate(references):
        item_path = f"{references_path}[{index}]"
        media_type = read_string(as_object(reference, item_path), "mediaType", item_path)
        if media_type is not None:
            found.add(bare_media_type(media_type))
    return frozenset(found)


# -- JSON types -------------------------------------------------------------------------------------------


def as_object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise EventError(path, f"expected an object, got {json_type(value)}")
    return value


def read_object(parent: Mapping[str, object], key: str, path: str) -> Mapping[str, object] | None:
    value = parent.get(key)
    return None if value is None else as_object(value, join_path(path, key))


def read_required_object(parent: Mapping[str, object], key: str, path: str) -> Mapping[str, object]:
    value = read_object(parent, key, path)
    if value is None:
        raise EventError(join_path(path, key), "missing" if key not in parent else "expected an object, got null")
    return value


def read_string(
    parent: Mapping[str, object], key: str, path: str, *, max_length: int = MAX_TEXT_LENGTH
) -> str | None:
    """A string, when present: printable text of at most `max_length` characters (see the module's docstring)."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(join_path(path, key), f"expected a string, got {show(value)}")
    problem = text_problem(value, max_length)
    if problem is not None:
        raise EventError(join_path(path, key), problem)
    return value


def read_required_string(
    parent: Mapping[str, object], key: str, path: str, *, max_length: int = MAX_TEXT_LENGTH
) -> str:
    """A string that must be present and non-empty."""
    value = read_string(parent, key, path, max_length=max_length)
    if value is None:
        raise EventError(join_path(path, key), "missing" if key not in parent else "expected a string, got null")
    if not value:
        raise EventError(join_path(path, key), "empty string")
    return value


# -- paths and messages -----------------------------------------------------------------------------------


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def show(value: object) -> str:
    """A value for an error message: strings quoted, other JSON values by type, both kept short."""
    if isinstance(value, str):
        shown = repr(value)
        return shown if len(shown) <= 80 else shown[:77] + "...'"
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return f"{json_type(value)} {json.dumps(value)}"
    return json_type(value)
