"""The one place that says what kind of error an exception is, and which exit code it ends a command with.

    info = describe_error(error, reference="127.0.0.1:5000/team/app:1")
    info.kind, info.exit_code            # "not_found", 3
    error_document(info)                 # {"error": {"kind": "not_found", "message": "…", "reference": "…"}}

| kind            | raised as                                                        | exit |
|-----------------|------------------------------------------------------------------|------|
| usage           | UsageError (arguments, settings), SettingsError                  | 2    |
| invalid         | ReferenceError: a reference, repository name, tag or host; CopyError: a copy that cannot be made as asked | 2 |
| policy          | PolicyError                                                      | 2    |
| not_found       | NotFound (404)                                                   | 3    |
| unauthorized    | Unauthorized (401, or a 403 without the registry's DENIED code)  | 3    |
| denied          | Unauthorized with the registry's DENIED code                     | 3    |
| timeout         | OutOfTime: a request's deadline or the time limit passed         | 3    |
| unreachable     | TransientRegistryError: refused or broken connections, DNS, 429 and 5xx that outlasted the retries | 3 |
| too_large       | TooLarge                                                         | 3    |
| digest_mismatch | DigestMismatch                                                   | 3    |
| insecure        | InsecureTransportRefused (plain HTTP to a host not allowed it)   | 3    |
| protocol        | ProtocolError: an answer that makes no sense                     | 3    |
| registry        | any other RegistryError (another 4xx)                            | 3    |
| invalid_content | ManifestError, ChartError: a manifest, config or chart that cannot be read | 3 |
| internal        | anything else                                                    | 3    |

The exit codes are the documented ones (docs/design.md, Exit codes): 2 usage or policy error, 3 registry or network
error. An exception that wraps another (`SweepError` from a `RegistryError`) is classified by what it wraps, and
keeps its own message. Kinds are matched on exception types only, never on message text.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from importer.app.settings import SettingsError
from importer.core.manifests import ManifestError
from importer.core.policy import PolicyError
from importer.core.reference import ReferenceError
from importer.entry.commands.common import EXIT_REGISTRY, EXIT_USAGE, UsageError
from importer.ports.deadlines import OutOfTime
from importer.ports.registry import (
    CopyError,
    DigestMismatch,
    InsecureTransportRefused,
    NotFound,
    ProtocolError,
    RegistryError,
    TooLarge,
    TransientRegistryError,
    Unauthorized,
)

USAGE_KINDS = frozenset({"usage", "invalid", "policy"})

# Most specific first: OutOfTime is a TransientRegistryError, every registry class a RegistryError.
_REGISTRY_KINDS: tuple[tuple[type[RegistryError], str], ...] = (
    (NotFound, "not_found"),
    (OutOfTime, "timeout"),
    (TransientRegistryError, "unreachable"),
    (TooLarge, "too_large"),
    (DigestMismatch, "digest_mismatch"),
    (InsecureTransportRefused, "insecure"),
    (ProtocolError, "protocol"),
)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong, as machine output says it."""

    kind: str
    message: str
    reference: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_USAGE if self.kind in USAGE_KINDS else EXIT_REGISTRY

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "reference": self.reference}


def error_kind(error: BaseException) -> str:
    """The kind of `error` (see the module docstring), looking through wrappers to the exception they wrap."""
    seen: set[int] = set()
    current: BaseException | None = error
    found: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = _own_kind(current)
        if found == "usage":  # only a more precise usage kind may replace it
            if kind in USAGE_KINDS and kind != "usage":
                return kind
        elif kind is not None and kind != "usage":
            return kind
        found = found or kind
        # A UsageError made from a ReferenceError or PolicyError (`raise UsageError(str(error)) from None`) still
        # has it as its context: that says more.
        current = current.__cause__ or current.__context__
    return found or "internal"


def _own_kind(error: BaseException) -> str | None:
    if isinstance(error, (UsageError, SettingsError)):
        return "usage"
    if isinstance(error, (ReferenceError, CopyError)):  # a copy that cannot be made as asked (a platform not offered)
        return "invalid"
    if isinstance(error, PolicyError):
        return "policy"
    if isinstance(error, Unauthorized):
        return "denied" if "DENIED" in error.codes else "unauthorized"
    for cls, kind in _REGISTRY_KINDS:
        if isinstance(error, cls):
            return kind
    if isinstance(error, RegistryError):
        return "registry"
    if isinstance(error, (ManifestError, *chart_errors())):
        return "invalid_content"
    return None


def chart_errors() -> tuple[type[Exception], ...]:
    """ChartError once the chart code is loaded (it is loaded only to read a chart, which is what raises it), else
    nothing: for `except` and `isinstance`, without loading the chart code to ask."""
    charts = sys.modules.get("importer.core.charts.model")
    return () if charts is None else (charts.ChartError,)


def describe_error(error: BaseException, *, reference: str | None = None) -> ErrorInfo:
    """The kind, message and reference of `error`, for an error object or an error test case."""
    return ErrorInfo(error_kind(error), str(error), reference)


def error_document(info: ErrorInfo) -> dict[str, Any]:
    """`{"error": {"kind", "message", "reference"}}`: what `-o json` prints instead of a result."""
    return {"error": info.as_dict()}
