"""Structural checks of the outcomes workbook (infra/app/workbook.bicep, its queries in infra/app/workbook/*.kql).

The Bicep compiler cannot run here, so the template is parsed with pycep-parser and the workbook's content (the
`workbookContent` object that becomes serializedData) is rebuilt from the parse tree, each `loadTextContent` replaced by
the file it loads. Then: the resource is a shared workbook on the Application Insights component that main.bicep
creates; the content has the shape the portal reads (Notebook/1.0; text, parameter and query items); and every query
reads only what the app sends: custom dimension names from importer.adapters.sinks.telemetry.DIMENSIONS, each with the
conversion its type needs, compared only with values the app emits (importer.core.outcome.RESULTS, SIGNATURES,
TRIGGERS), and filtered by the workbook's time range. The last tests break a real query on purpose and show the checks
catch each kind of mistake.

    .venv/bin/python -m pytest tests/infra/test_workbook.py -q
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from importer.adapters.sinks.telemetry import DIMENSION_PREFIX, DIMENSIONS
from importer.core.outcome import RESULTS, SIGNATURES, TRIGGERS, Outcome

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
WORKBOOK_TEMPLATE = INFRA / "app" / "workbook.bicep"
QUERY_FOLDER = WORKBOOK_TEMPLATE.parent / "workbook"
WORKBOOK_TYPE = "Microsoft.Insights/workbooks"
COMPONENT_TYPE = "Microsoft.Insights/components"
TIME_RANGE = "TimeRange"
VISUALIZATIONS = {"table", "barchart", "timechart", "piechart", "linechart", "areachart", "tiles"}
DAY_MS = 86_400_000

# The values a dimension can have, where the code fixes them: a query may compare these dimensions with strings.
KNOWN_VALUES: dict[str, frozenset[str]] = {
    DIMENSION_PREFIX + "result": frozenset(RESULTS),
    DIMENSION_PREFIX + "signatures": frozenset(value for value in SIGNATURES if value is not None),
    DIMENSION_PREFIX + "trigger": frozenset(TRIGGERS),
}


# --- reading the template ------------------------------------------------------------------------------------------


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def expression(node: Any) -> str:
    """A compact text of a pycep expression node (identifiers and strings alike), e.g. `to_lower(applicationInsightsId)`."""
    if isinstance(node, (str, int)):
        return str(node)
    if isinstance(node, dict) and "function" in node:
        function = node["function"]
        arguments = [expression(value) for value in (function.get("parameters") or {}).values() if value is not None]
        return f"{function['type']}({', '.join(arguments)})"
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return f"{expression(operands['operand_1'])}.{expression(operands['operand_2'])}"
    raise AssertionError(f"unexpected expression: {node!r}")


BICEP_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}


def bicep_string(raw: str) -> str:
    """A Bicep single-quoted string's value: pycep keeps the escapes as written (`\\n`, `\\'`, `\\u{…}`)."""

    def unescape(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped.startswith("u{"):
            return chr(int(escaped[2:-1], 16))
        if escaped not in BICEP_ESCAPES:
            raise AssertionError(f"not a Bicep escape: \\{escaped} in {raw!r}")
        return BICEP_ESCAPES[escaped]

    return re.sub(r"\\(u\{[0-9A-Fa-f]+\}|.)", unescape, raw)


def evaluate(node: Any, folder: Path) -> Any:
    """The JSON value of a literal Bicep object as ARM's string() would serialize it; `loadTextContent('f')` becomes
    the text of folder/f. An identifier reads as its name (pycep does not tell it from a string); any other function
    or operator fails the test, so the content stays plain data the test can see whole."""
    if isinstance(node, str):
        return bicep_string(node)
    if node is None or isinstance(node, (bool, int, float)):
        return node
    if isinstance(node, list):
        return [evaluate(item, folder) for item in node]
    if "function" in node:
        function = node["function"]
        assert function["type"] == "load_text_content", f"workbook content calls {function['type']}()"
        parameters = function["parameters"]
        assert parameters.get("encoding") in (None, "utf-8"), parameters
        return (folder / bicep_string(parameters["file_path"])).read_text(encoding="utf-8")
    assert "operator" not in node and "loop_type" not in node, f"workbook content holds an expression: {node!r}"
    return {key.strip("'"): evaluate(value, folder) for key, value in node.items()}


def workbook_resource() -> dict[str, Any]:
    (declaration,) = [resource for resource in parse(WORKBOOK_TEMPLATE)["resources"].values()
                      if resource["type"] == WORKBOOK_TYPE]
    return declaration


@functools.cache
def content() -> dict[str, Any]:
    """serializedData as the deployment sends it (string(workbookContent)), parsed back from JSON."""
    serialized = workbook_resource()["config"]["properties"]["serializedData"]
    assert expression(serialized) == "string(workbookContent)", "serializedData should be string(<a variable>)"
    variables = parse(WORKBOOK_TEMPLATE)["variables"]
    built = evaluate(variables["workbookContent"]["value"], WORKBOOK_TEMPLATE.parent)
    # The parameter item names a variable (timeRangeParameter): put its value in, as Bicep does.
    for item in built["items"]:
        if item["type"] == 9:
            item["content"]["parameters"] = [
                evaluate(variables[name]["value"], WORKBOOK_TEMPLATE.parent) if name in variables else name
                for name in item["content"]["parameters"]]
    return json.loads(json.dumps(built))


def items_of_type(item_type: int) -> list[dict[str, Any]]:
    return [item for item in content()["items"] if item["type"] == item_type]


def queries() -> dict[str, str]:
    """Each query item's KQL, by item name."""
    return {item["name"]: item["content"]["query"] for item in items_of_type(3)}


def loaded_query_files() -> set[str]:
    """The files the template loads with loadTextContent, relative to its folder."""
    text = WORKBOOK_TEMPLATE.read_text(encoding="utf-8")
    return set(re.findall(r"loadTextContent\('([^']+)'\)", text))


QUERY_NAMES = sorted(queries())


# --- checking a query against the telemetry ------------------------------------------------------------------------


def field_kind(name: str) -> str:
    """`list`, `int`, `float` or `str`: how an outcome field reaches customDimensions (lists as JSON array strings)."""
    annotation = str({field.name: field.type for field in dataclasses.fields(Outcome)}[name])
    if annotation.startswith("tuple"):
        return "list"
    for kind in ("int", "float"):
        if re.search(rf"\b{kind}\b", annotation):
            return kind
    return "str"


# The conversions (innermost calls) a dimension of each kind may be read with; isempty / isnotempty test presence,
# whatever the kind.
CONVERSIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "str": (("tostring",),),
    "list": (("parse_json", "tostring"),),
    "int": (("toint",), ("tolong",), ("todouble",), ("toreal",)),
    "float": (("todouble",), ("toreal",)),
}
PRESENCE = {"isempty", "isnotempty"}
DIMENSION_USE = re.compile(r"((?:\w+\(\s*){0,2})customDimensions\.(\w+)")
BINDING = re.compile(r"\b([A-Za-z_]\w*)\s*=\s*(?:\w+\(\s*)+customDimensions\.(\w+)")
DIRECT_COMPARISON = re.compile(
    r"\w+\(\s*customDimensions\.(\w+)\s*\)\s*(?:==|!=|=~|!~)\s*\"([^\"]*)\"")
COLUMN_COMPARISON = re.compile(r"(?<![.\w])([A-Za-z_]\w*)\s*(?:==|!=|=~|!~)\s*\"([^\"]*)\"")
DIRECT_MEMBERSHIP = re.compile(r"\w+\(\s*customDimensions\.(\w+)\s*\)\s+!?in~?\s*\(([^)]*)\)")
COLUMN_MEMBERSHIP = re.compile(r"(?<![.\w])([A-Za-z_]\w*)\s+!?in~?\s*\(([^)]*)\)")
WORKBOOK_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def call_text(chain: tuple[str, ...]) -> str:
    """`parse_json(tostring(…))` for ("parse_json", "tostring")."""
    return "(".join(chain) + "(…" + ")" * len(chain)


def code_of(query: str) -> str:
    """The query without its comment lines."""
    return "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("//"))


def comparisons(query: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The (dimension, string) pairs the query compares, and the problems: a column compared with a string that is
    not read from a dimension, or one name read from two dimensions."""
    code, problems = code_of(query), []
    columns: dict[str, str] = {}
    for column, dimension in BINDING.findall(code):
        if columns.setdefault(column, dimension) != dimension:
            problems.append(f"column {column} reads both {columns[column]} and {dimension}")
    pairs: list[tuple[str, str]] = []
    for dimension, value in DIRECT_COMPARISON.findall(code):
        pairs.append((dimension, value))
    for dimension, listed in DIRECT_MEMBERSHIP.findall(code):
        pairs.extend((dimension, value) for value in re.findall(r'"([^"]*)"', listed))
    column_pairs = [(column, value) for column, value in COLUMN_COMPARISON.findall(code)]
    for column, listed in COLUMN_MEMBERSHIP.findall(code):
        column_pairs.extend((column, value) for value in re.findall(r'"([^"]*)"', listed))
    for column, value in column_pairs:
        if column not in columns:
            problems.append(f'compares {column} with "{value}", but {column} is read from no dimension')
        else:
            pairs.append((columns[column], value))
    return pairs, problems


def query_problems(query: str, visualization: str = "table") -> list[str]:
    """Everything wrong with one workbook query, as sentences; [] when it reads only what the app sends."""
    problems: list[str] = []
    code = code_of(query)
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    if lines[:1] != ["traces"]:
        problems.append("does not start with the traces table")
    if lines[1:2] != ["| where timestamp {TimeRange}"]:
        problems.append("does not filter by the time range first (| where timestamp {TimeRange})")
    unknown_parameters = set(WORKBOOK_PARAMETER.findall(code)) - {TIME_RANGE}
    if unknown_parameters:
        problems.append(f"uses workbook parameters that do not exist: {sorted(unknown_parameters)}")
    if visualization == "timechart" and "bin(timestamp, {TimeRange:grain})" not in code:
        problems.append("a time chart that does not bin by the time range's grain")
    mentioned = set(re.findall(rf"\b{DIMENSION_PREFIX}\w+", query))
    for name in sorted(mentioned - set(DIMENSIONS)):
        problems.append(f"names {name}, which the app does not send")
    if re.search(rf"(?<!customDimensions\.){DIMENSION_PREFIX}\w+", code):
        problems.append("reads a dimension other than as customDimensions.<name>")
    if re.search(r"customDimensions\s*\[", code):
        problems.append("reads customDimensions by index: use customDimensions.<name>")
    for wrappers, dimension in DIMENSION_USE.findall(code):
        if dimension not in DIMENSIONS:
            continue
        kind = field_kind(dimension.removeprefix(DIMENSION_PREFIX))
        calls = tuple(re.findall(r"(\w+)\(", wrappers))
        if calls[-1:] and calls[-1] in PRESENCE or any(calls[-len(chain):] == chain for chain in CONVERSIONS[kind]):
            continue
        found = f"with {call_text(calls[-1:])}" if calls else "without a conversion"
        expected = " or ".join(call_text(chain) for chain in CONVERSIONS[kind])
        problems.append(f"reads {dimension} ({kind}) {found}: use {expected}")
    pairs, comparison_problems = comparisons(query)
    problems.extend(comparison_problems)
    for dimension, value in pairs:
        if dimension not in KNOWN_VALUES:
            problems.append(f'compares {dimension} with "{value}": the test knows no values of that dimension')
        elif value not in KNOWN_VALUES[dimension]:
            problems.append(f'compares {dimension} with "{value}", which the app never sends')
    return problems


# --- the resource and its wiring -----------------------------------------------------------------------------------


def test_workbook_is_a_shared_workbook_on_the_component() -> None:
    """A shared workbook (category workbook) whose sourceId is the component's id, with a GUID name and the tags."""
    resource = workbook_resource()
    config, properties = resource["config"], resource["config"]["properties"]
    assert resource["api_version"] >= "2021-08-01" and not resource["existing"]
    assert expression(config["name"]).startswith("guid(applicationInsightsId, ")
    assert (config["kind"], properties["category"]) == ("shared", "workbook")
    assert expression(properties["sourceId"]) == "to_lower(applicationInsightsId)"
    assert (expression(config["location"]), expression(config["tags"])) == ("location", "tags")
    assert properties["version"] == content()["version"] == "Notebook/1.0"
    assert expression(properties["displayName"]) == "displayName"


def test_main_puts_the_workbook_on_the_monitoring_component() -> None:
    """main.bicep deploys app/workbook.bicep in the app's resource group with the id of the component that
    core/monitoring.bicep creates, the one the Function App sends its telemetry to."""
    main = parse(INFRA / "main.bicep")
    (declaration,) = [module for module in main["modules"].values() if module["detail"]["path"] == "app/workbook.bicep"]
    config = declaration["config"]
    assert expression(config["scope"]) == "appResourceGroup"
    params = config["params"]
    assert expression(params["applicationInsightsId"]) == "monitoring.outputs.applicationInsightsId"
    assert (expression(params["location"]), expression(params["tags"])) == ("location", "tags")
    monitoring = parse(INFRA / "core" / "monitoring.bicep")
    assert expression(monitoring["outputs"]["applicationInsightsId"]["value"]) == "applicationInsights.id"
    assert monitoring["resources"]["applicationInsights"]["type"] == COMPONENT_TYPE
    (app,) = [module for module in main["modules"].values() if module["detail"]["path"] == "app/function-app.bicep"]
    assert (expression(app["config"]["params"]["applicationInsightsConnectionString"])
            == "monitoring.outputs.applicationInsightsConnectionString")


def test_workbook_parameters_are_described() -> None:
    """Every parameter of the template says what it is (the portal and `azd` show these)."""
    for name, declared in parse(WORKBOOK_TEMPLATE)["parameters"].items():
        assert any(decorator["type"] == "description" for decorator in declared["decorators"]), name


# --- the content's shape -------------------------------------------------------------------------------------------


def test_content_is_a_notebook_of_text_parameter_and_query_items() -> None:
    """Notebook/1.0 with text (1), parameter (9) and query (3) items, each named once, and the component as the
    fallback resource."""
    workbook = content()
    assert workbook["version"] == "Notebook/1.0"
    types = [item["type"] for item in workbook["items"]]
    assert set(types) == {1, 3, 9} and types.index(9) < types.index(3), "the parameters come before the queries"
    names = [item["name"] for item in workbook["items"]]
    assert len(names) == len(set(names)), "item names must be unique"
    for item in items_of_type(1):
        assert item["content"]["json"].strip(), item["name"]
    assert workbook["fallbackResourceIds"] == ["applicationInsightsId"]  # the identifier: pycep shows its name
    assert json.loads(json.dumps(workbook)) == workbook


def test_time_range_parameter() -> None:
    """One required time range picker named TimeRange; its choices stay within the workspace's retention."""
    ((item),) = items_of_type(9)
    (parameter,) = item["content"]["parameters"]
    assert (parameter["name"], parameter["type"], parameter["isRequired"]) == (TIME_RANGE, 4, True)
    assert parameter["version"] == item["content"]["version"] == "KqlParameterItem/1.0"
    choices = [choice["durationMs"] for choice in parameter["typeSettings"]["selectableValues"]]
    assert parameter["value"]["durationMs"] in choices
    retention_days = parse(INFRA / "core" / "monitoring.bicep")["parameters"]["retentionInDays"]["default"]
    assert max(choices) <= retention_days * DAY_MS
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", parameter["id"])


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_item_shape(name: str) -> None:
    """Each query item is a logs query (queryType 0) of the Application Insights component, bound to the time range."""
    (item,) = [item for item in items_of_type(3) if item["name"] == name]
    query = item["content"]
    assert query["version"] == "KqlItem/1.0"
    assert isinstance(query["query"], str) and query["query"].strip()
    assert (query["queryType"], query["resourceType"]) == (0, "microsoft.insights/components")
    assert query["visualization"] in VISUALIZATIONS
    assert query["timeContextFromParameter"] == TIME_RANGE
    assert query["title"].strip()


def test_every_query_file_is_in_the_workbook() -> None:
    """The queries are the .kql files beside the template, each loaded once (none forgotten in the folder)."""
    files = {path.relative_to(WORKBOOK_TEMPLATE.parent).as_posix() for path in QUERY_FOLDER.glob("*.kql")}
    assert files and loaded_query_files() == files
    assert len(QUERY_NAMES) == len(files)


# --- the sections the workbook promises ----------------------------------------------------------------------------

# item name: (visualization, outcome fields it must read, (field, value) comparisons it must make)
SECTIONS: dict[str, tuple[str, set[str], set[tuple[str, str]]]] = {
    "outcomes-over-time": ("timechart", {"result"}, set()),
    "outcomes-by-repository": ("table", {"result", "registry", "repository"}, set()),
    "quarantines": ("table", {"result", "reference", "preserved_as", "affected_tags", "actor", "reason"},
                    {("result", "quarantined")}),
    "failures": ("table", {"result", "reference", "error", "attempt"}, {("result", "failed")}),
    "attempts-summary": ("table", {"result", "event_id", "attempt"}, {("result", "retrying")}),
    "attempts-by-event": ("table", {"result", "event_id", "attempt", "error"}, {("result", "retrying")}),
    "latency-over-time": ("timechart", {"duration_ms"}, set()),
    "signatures-lost": ("table", {"signatures", "reference", "new_digest"}, {("signatures", "lost")}),
}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_section(name: str) -> None:
    """Each promised section is there, drawn as promised, reading the fields and filtering on the values it is about."""
    visualization, fields, filters = SECTIONS[name]
    (item,) = [item for item in items_of_type(3) if item["name"] == name]
    query = item["content"]["query"]
    assert item["content"]["visualization"] == visualization
    read = {dimension.removeprefix(DIMENSION_PREFIX) for _, dimension in DIMENSION_USE.findall(code_of(query))}
    assert fields <= read, f"does not read {fields - read}"
    compared = {(dimension.removeprefix(DIMENSION_PREFIX), value) for dimension, value in comparisons(query)[0]}
    assert filters <= compared


def test_repository_table_counts_every_result() -> None:
    """The repository table has a count for every result the app records, so a new result cannot go unseen."""
    compared = {value for dimension, value in comparisons(queries()["outcomes-by-repository"])[0]
                if dimension == DIMENSION_PREFIX + "result"}
    assert compared == set(RESULTS)


def test_latency_percentiles() -> None:
    """Latency is drawn as the 50th, 95th and 99th percentiles of duration_ms."""
    code = code_of(queries()["latency-over-time"])
    assert set(re.findall(r"percentile\(duration_ms, (\d+)\)", code)) == {"50", "95", "99"}
    assert "duration_ms = todouble(customDimensions.platform_guard_duration_ms)" in code


# --- every query against the telemetry -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_reads_only_what_the_app_sends(name: str) -> None:
    """Real dimension names with the right conversions, compared only with values the app sends, within {TimeRange}."""
    (item,) = [item for item in items_of_type(3) if item["name"] == name]
    assert query_problems(item["content"]["query"], item["content"]["visualization"]) == []


def test_conversions_follow_the_outcome_field_types() -> None:
    """The test's idea of each field's type comes from the Outcome dataclass: lists, numbers, strings."""
    assert field_kind("affected_tags") == field_kind("platforms") == "list"
    assert (field_kind("duration_ms"), field_kind("attempt"), field_kind("referrers_copied")) == ("float", "int", "int")
    assert field_kind("result") == field_kind("signatures") == "str"


# A real query broken on purpose: (query item, text to replace, its replacement, what the checks must say).
BROKEN = [
    ("quarantines", "platform_guard_preserved_as", "platform_guard_kept_at",
     "names platform_guard_kept_at, which the app does not send"),
    ("quarantines", '"quarantined"', '"quarantine"',
     'compares platform_guard_result with "quarantine", which the app never sends'),
    ("attempts-summary", 'countif(result == "retrying")', 'countif(result == "retried")',
     'compares platform_guard_result with "retried", which the app never sends'),
    ("signatures-lost", '"lost"', '"missing"',
     'compares platform_guard_signatures with "missing", which the app never sends'),
    ("failures", "| where timestamp {TimeRange}\n", "| where timestamp > ago(1d)\n",
     "does not filter by the time range first (| where timestamp {TimeRange})"),
    ("failures", "toint(customDimensions.platform_guard_attempt)", "tostring(customDimensions.platform_guard_attempt)",
     "reads platform_guard_attempt (int) with tostring(…): use toint(…) or tolong(…) or todouble(…) or toreal(…)"),
    ("quarantines", "parse_json(tostring(customDimensions.platform_guard_affected_tags))",
     "tostring(customDimensions.platform_guard_affected_tags)",
     "reads platform_guard_affected_tags (list) with tostring(…): use parse_json(tostring(…))"),
    ("latency-over-time", "todouble(customDimensions.platform_guard_duration_ms)",
     "customDimensions.platform_guard_duration_ms",
     "reads platform_guard_duration_ms (float) without a conversion: use todouble(…) or toreal(…)"),
    ("failures", 'where tostring(customDimensions.platform_guard_result) == "failed"', 'where outcome == "failed"',
     'compares outcome with "failed", but outcome is read from no dimension'),
    ("outcomes-over-time", "bin(timestamp, {TimeRange:grain})", "bin(timestamp, {Grain})",
     "uses workbook parameters that do not exist: ['Grain']"),
    ("failures", "customDimensions.platform_guard_error", 'customDimensions["platform_guard_error"]',
     "reads customDimensions by index: use customDimensions.<name>"),
]


@pytest.mark.parametrize(("name", "old", "new", "expected"), BROKEN,
                         ids=["unknown-dimension", "unknown-result", "unknown-result-in-countif",
                              "unknown-signatures-value", "no-time-range", "number-as-string", "list-not-parsed",
                              "number-not-converted", "column-from-nowhere", "unknown-parameter", "indexed-dimension"])
def test_checks_catch_a_broken_query(name: str, old: str, new: str, expected: str) -> None:
    """Each kind of mistake in a query (a field the app does not send, a result it never records, a missing time
    range, a wrong conversion, an unknown column or parameter) is reported, so the checks above can fail."""
    item = {item["name"]: item for item in items_of_type(3)}[name]
    query = item["content"]["query"]
    assert old in query
    problems = query_problems(query.replace(old, new, 1), item["content"]["visualization"])
    assert expected in problems, problems


def test_each_query_item_loads_its_own_file() -> None:
    """The content the checks read is what the template loads: each query item holds the text of the file its own
    loadTextContent names."""
    for item in items_of_type(3):
        file = re.search(r"loadTextContent\('([^']+)'\)", WORKBOOK_TEMPLATE.read_text(encoding="utf-8")
                         .split(f"name: '{item['name']}'", 1)[1])
        assert file is not None, item["name"]
        assert (WORKBOOK_TEMPLATE.parent / file.group(1)).read_text(encoding="utf-8") == item["content"]["query"]
