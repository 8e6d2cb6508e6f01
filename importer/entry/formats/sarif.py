"""SARIF 2.1.0 for code-scanning dashboards (`-o sarif`, `--report FILE.sarif`): one result per problem of each image.

    document = sarif_document(run)      # a JSON-ready dict; json.dumps(document, indent=2) is the output

One run, whose tool.driver is Platform Guard (name, version, informationUri when the installed package declares a
home page, and one rule per problem kind):

| rule  | name                | level   | a result for                                                          |
|-------|---------------------|---------|-----------------------------------------------------------------------|
| PG001 | missing-platform    | error   | a violation: a required platform is not offered                       |
| PG002 | forbidden-platform  | error   | a violation: a forbidden platform is offered                          |
| PG003 | inconsistent-index  | error   | a violation: an index entry disagrees with the image's config         |
| PG004 | unreadable          | warning | an image or tag that could not be read or judged                      |
| PG005 | policy-violation    | error   | any other violation (not an image, not in the registry, unchecked)    |

An image breaking two rules gets two results. Compliant and ignored images get none. Errors of the run itself (the
image or the registry could not be read at all, bad arguments) are error-level tool execution notifications of the
run's invocation, whose `executionSuccessful` is then false.

Locations: a container image is no file. Each result has a logical location (kind `resource`, fullyQualifiedName the
image reference) and, because GitHub code scanning refuses results without one, a physical location: the reference
without its digest as a relative URI, ':' percent-encoded (`127.0.0.1%3A5000/team/app%3A1`), since GitHub refuses
URIs with a scheme and `host:port/…` would read as one; region line 1. `partialFingerprints["platformGuard/v1"]`
(rule and reference) keeps one alert per tag and rule across runs, as GitHub cannot compute one from a file. There is
no `automationDetails`: the uploader's category sets it (github/codeql-action/upload-sarif keeps a file's own). Message
texts from outside have unsafe characters escaped (importer.core.safe_text): dashboards show them to people.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, metadata
from typing import Any
from urllib.parse import quote

from importer import __version__
from importer.core.safe_text import escape_unsafe
from importer.entry.formats.cases import FORBIDDEN, INCONSISTENT, MISSING, OTHER, PROBLEMS, UNREADABLE, Case, Run

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT = "platformGuard/v1"

_RULES: dict[str, dict[str, Any]] = {
    MISSING: {
        "id": "PG001", "level": "error",
        "short": "A required platform is not offered",
        "full": "The image does not offer a platform the policy requires: nodes of that platform cannot run it.",
        "help": "Re-import the image from an upstream that offers every required platform (platform-guard copy "
                "SRC DST --platform …), or build and push a multi-platform index (docker buildx build --platform "
                "linux/amd64,linux/arm64 --push).",
    },
    FORBIDDEN: {
        "id": "PG002", "level": "error",
        "short": "A forbidden platform is offered",
        "full": "The image offers a platform that a forbid pattern of the policy excludes.",
        "help": "Copy the index without the forbidden platforms (platform-guard copy SRC DST --exclude PATTERN).",
    },
    INCONSISTENT: {
        "id": "PG003", "level": "error",
        "short": "An index entry disagrees with its image config",
        "full": "An index entry says one platform while the image config it points at says another; the entry "
                "offers nothing.",
        "help": "Rebuild and push the index so that each entry's platform is its image's.",
    },
    UNREADABLE: {
        "id": "PG004", "level": "warning",
        "short": "The image could not be read or judged",
        "full": "The registry could not be reached or refused, or the manifest or config could not be read.",
        "help": "Check the registry, the credentials and the reference, then run again.",
    },
    OTHER: {
        "id": "PG005", "level": "error",
        "short": "The image violates the policy",
        "full": "The image violates the policy for another reason: it is not a runnable image, it is missing from "
                "the registry, or it cannot be checked where it is.",
        "help": "Read the result's message: it says why.",
    },
}


def _information_uri() -> str | None:
    """The home page the installed package declares (Project-URL `Homepage`), if any."""
    try:
        urls = metadata("platform-guard").get_all("Project-URL") or []
    except PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source") and url.strip().startswith("https://"):
            return url.strip()
    return None


def _driver() -> dict[str, Any]:
    driver: dict[str, Any] = {"name": "Platform Guard", "version": __version__, "semanticVersion": __version__}
    uri = _information_uri()
    if uri:
        driver["informationUri"] = uri
    driver["rules"] = [
        {
            "id": rule["id"],
            "name": kind,
            "shortDescription": {"text": rule["short"]},
            "fullDescription": {"text": rule["full"]},
            "help": {"text": rule["help"]},
            "defaultConfiguration": {"level": rule["level"]},
            "properties": {"tags": ["container-image", "platform"], "problem.severity": rule["level"]},
        }
        for kind, rule in ((kind, _RULES[kind]) for kind in PROBLEMS)
    ]
    return driver


def image_location(reference: str) -> dict[str, Any]:
    """A SARIF location for an image: a relative URI (no scheme, ':' encoded) and a logical location."""
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(escape_unsafe(reference), safe="/@._-~")},
            "region": {"startLine": 1},
        },
        "logicalLocations": [{"name": escape_unsafe(reference.rpartition("/")[2]),
                              "fullyQualifiedName": escape_unsafe(reference), "kind": "resource"}],
    }


def _message(case: Case, kind: str) -> str:
    if kind == MISSING:
        head = f"{case.where} does not offer {', '.join(case.missing)}"
    elif kind == FORBIDDEN:
        head = f"{case.where} offers {', '.join(case.forbidden)}, which the policy forbids"
    elif kind == INCONSISTENT:
        head = f"{case.where} has index entries that disagree with their configs: {'; '.join(case.inconsistent)}"
    elif kind == UNREADABLE:
        head = f"{case.where} could not be read or judged ({case.error_kind or 'error'})"
    else:
        head = f"{case.where} violates the policy"
    return escape_unsafe(f"{head}: {case.message}")


def _result(case: Case, kind: str) -> dict[str, Any]:
    rule = _RULES[kind]
    properties: dict[str, Any] = {
        "reference": case.reference, "platforms": list(case.platforms), "required": list(case.required),
    }
    for name, value in (("missing", case.missing), ("forbidden", case.forbidden),
                        ("inconsistent", case.inconsistent)):
        if value:
            properties[name] = list(value)
    if case.digest:
        properties["digest"] = case.digest
    if case.action:
        properties["action"] = case.action
    if case.error_kind:
        properties["errorKind"] = case.error_kind
    fingerprint = hashlib.sha256(f"{rule['id']}\n{case.where}".encode("utf-8", "surrogatepass")).hexdigest()
    return {
        "ruleId": rule["id"],
        "ruleIndex": PROBLEMS.index(kind),
        "level": rule["level"],
        "message": {"text": _message(case, kind)},
        "locations": [image_location(case.where)],
        "partialFingerprints": {FINGERPRINT: fingerprint},
        "properties": properties,
    }


def sarif_document(run: Run) -> dict[str, Any]:
    """The run as a SARIF 2.1.0 log (see the module docstring)."""
    notifications: list[dict[str, Any]] = []
    for error in run.errors:
        notification: dict[str, Any] = {
            "level": "error", "message": {"text": escape_unsafe(error.message)}, "descriptor": {"id": error.kind},
        }
        if error.reference:
            notification["locations"] = [image_location(error.reference)]
        notifications.append(notification)
    notifications += [{"level": "warning", "message": {"text": escape_unsafe(warning)}} for warning in run.warnings]
    invocation: dict[str, Any] = {"executionSuccessful": not run.errors}
    if run.started_at:
        invocation["startTimeUtc"] = run.started_at
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    sarif_run: dict[str, Any] = {
        "tool": {"driver": _driver()},
        "invocations": [invocation],
        "results": [_result(case, kind) for case in run.cases for kind in case.problems],
    }
    if run.properties:
        sarif_run["properties"] = dict(run.properties)
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [sarif_run]}
