"""The pipeline gates in examples/ do what they say: their shell steps, run as the CI would run them, against a real
registry.

The GitHub composite action (examples/github-actions/platform-guard-check/action.yml) and the Azure Pipelines steps
template (examples/azure-pipelines/platform-guard-check.yml) are parsed with PyYAML. Their `run:` / `script:` texts
are run exactly as written, with bash as each CI runs it (GitHub: `bash --noprofile --norc -eo pipefail`, Azure:
`bash --noprofile --norc`), in order, with the environment their `env:` mappings give after the inputs or parameters
each case chooses are put in for the `${{ inputs.… }}`, `${{ steps.….outputs.… }}` and `${{ parameters.… }}`
expressions (GitHub's `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY` files as the runner gives them). The `platform-guard` on
PATH is the console script `scripts/setup` installs into this venv (`pip install -e .`). The registry is a real
distribution registry on 127.0.0.1 holding a compliant and a violating image pushed with skopeo.

What only makes sense in CI — installing the CLI from the network, setting up Python, checking out, uploading
artifacts, SARIF and test results — is checked for its structure instead: present, pinned by full commit SHA with the
tag in a comment, wired to the paths and outputs that the steps which run produce.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.images import ImageBuilder, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry, free_port

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "examples/github-actions/platform-guard-check/action.yml"
WORKFLOW = ROOT / "examples/github-actions/workflow.yml"
AZURE_TEMPLATE = ROOT / "examples/azure-pipelines/platform-guard-check.yml"
AZURE_PIPELINE = ROOT / "examples/azure-pipelines/azure-pipelines.yml"
POLICY = ROOT / "examples/policy.yaml"  # team/** falls to its defaults: linux/amd64 required, windows forbidden

GITHUB_BASH = ("bash", "--noprofile", "--norc", "-eo", "pipefail")  # `shell: bash` on a GitHub runner
AZURE_BASH = ("bash", "--noprofile", "--norc")  # `script:` on a Linux agent
CI_ONLY_RUN_STEPS = {"install"}  # pip install from the network: checked for its structure, not run
STEP_SECONDS = 120

# Actions the composite action and the workflow use: owner/name(/path) → the tag their pinned SHA had.
PINNED = {
    "actions/setup-python": "v7.0.0",
    "actions/upload-artifact": "v7.0.0",
    "github/codeql-action/upload-sarif": "v4.36.2",
    "actions/checkout": "v7.0.1",
}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
AZURE_MACRO = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_.]*\)")


# -- the registry and the CLI ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Images:
    """The registry the cases check: team/good:1 (amd64 + arm64) and team/bad:1 (arm64 only)."""

    host: str

    @property
    def good(self) -> str:
        return f"{self.host}/team/good:1"

    @property
    def bad(self) -> str:
        return f"{self.host}/team/bad:1"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    root = tmp_path_factory.mktemp("pipeline-registry")
    builder = ImageBuilder(root / "layout")
    with LocalRegistry(root / "registry") as registry:
        push(builder, multi(builder, ["linux/amd64", "linux/arm64"], seed="good"), registry.host, "team/good", "1")
        push(builder, single(builder, "linux/arm64", seed="bad"), registry.host, "team/bad", "1")
        yield Images(registry.host)


def _cli_bin() -> Path:
    """The venv's bin folder, which must hold the `platform-guard` console script."""
    folder = Path(sys.executable).parent
    if not (folder / "platform-guard").is_file():
        pytest.fail(f"no platform-guard in {folder}: run scripts/setup, which installs the package into .venv "
                    f"(pip install -e .)")
    return folder


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    base = {name: value for name, value in os.environ.items()
            if not name.startswith(("PLATFORM_GUARD_", "PYTHON", "GITHUB_", "RUNNER_", "PG_"))}
    return {**base, "PATH": f"{_cli_bin()}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def _expressions(node: Any) -> Iterator[str]:
    """Every `${{ … }}` in the string values of a parsed YAML document (comments are not values)."""
    if isinstance(node, str):
        yield from EXPRESSION.findall(node)
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value)


def _expand(value: Any, resolve: Callable[[str], str]) -> str:
    """`value` with every `${{ … }}` replaced by `resolve(expression)`; YAML booleans as the CI renders them."""
    if isinstance(value, bool):
        return str(value)
    return EXPRESSION.sub(lambda match: resolve(match.group(1)), str(value))


# -- reports ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What a report file says, in counts: JUnit (tests, failures, errors) or SARIF (results)."""

    tests: int = 0
    failures: int = 0
    errors: int = 0
    results: int = 0


def _read_report(path: Path) -> Report:
    if path.suffix == ".xml":
        root = ET.parse(path).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        assert suite is not None, path.read_text()
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        return Report(tests=len(cases), failures=len([c for c in cases if c.find("failure") is not None]),
                      errors=len([c for c in cases if c.find("error") is not None]))
    document = json.loads(path.read_text())
    assert document["version"] == "2.1.0"
    [run] = document["runs"]
    return Report(results=len(run["results"]))


def _reports(folder: Path) -> dict[str, Report]:
    return {path.name: _read_report(path) for path in sorted(folder.glob("*")) if path.is_file()} \
        if folder.is_dir() else {}


# -- the GitHub composite action -----------------------------------------------------------------------------------


def _action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text())


@dataclass
class ActionRun:
    """The action's shell steps run in order, as a runner would, until one fails: that step's exit code is the job's."""

    code: int = 0
    failed_step: str | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    log: str = ""


def _github_outputs(path: Path) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, separator, value = line.partition("=")
        assert separator and "<<" not in name, f"unexpected $GITHUB_OUTPUT line {line!r}"
        outputs[name] = value
    return outputs


def run_action(inputs: Mapping[str, str], workdir: Path) -> ActionRun:
    action = _action()
    declared = action["inputs"]
    assert set(inputs) <= set(declared), set(inputs) - set(declared)
    values = {name: str(spec.get("default", "")) for name, spec in declared.items()} | dict(inputs)
    result = ActionRun()

    def resolve(expression: str) -> str:
        parts = expression.split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            return values[parts[1]]
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return result.outputs.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"the test cannot evaluate ${{{{ {expression} }}}} in a run step's env")

    summary = workdir / "step-summary.md"
    for step in action["runs"]["steps"]:
        if "run" not in step or step["id"] in CI_ONLY_RUN_STEPS:
            continue
        step_id = step["id"]
        script = workdir / f"{step_id}.sh"
        script.write_text(step["run"])
        output = workdir / f"{step_id}.output"
        output.write_text("")
        environment = _environment({
            **{name: _expand(value, resolve) for name, value in (step.get("env") or {}).items()},
            "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_PATH": str(workdir / "path"),
            "GITHUB_ACTION_PATH": str(ACTION.parent), "GITHUB_WORKSPACE": str(workdir),
            "RUNNER_TEMP": str(workdir / "runner-temp"),
        })
        done = subprocess.run([*GITHUB_BASH, str(script)], cwd=workdir, env=environment, capture_output=True,
                              text=True, timeout=STEP_SECONDS, check=False)
        result.ran.append(step_id)
        result.outputs[step_id] = _github_outputs(output)
        result.log += f"--- {step_id}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        if done.returncode != 0:
            result.code, result.failed_step = done.returncode, step_id
            break
    return result


@dataclass(frozen=True)
class Case:
    """Inputs (with `{good}`, `{bad}`, `{host}`, `{dead}`, `{policy}` put in), and what must come of them."""

    inputs: Mapping[str, str]
    code: int
    reports: Mapping[str, Report]
    failed_step: str | None = None
    exit_output: str | None = None  # the `exit-code` output when it differs from `code`


def _fill(text: str, images: Images, dead: str) -> str:
    return text.format(good=images.good, bad=images.bad, host=images.host, dead=dead, policy=POLICY)


GITHUB_CASES = [
    pytest.param(Case({"references": "{good}"}, 0, {"check-1.xml": Report(tests=1)}), id="check-compliant-exits-0"),
    pytest.param(Case({"references": "{bad}"}, 1, {"check-1.xml": Report(tests=1, failures=1)}, "verdict"),
                 id="check-violation-exits-1"),
    pytest.param(Case({"references": "{bad}\n{good}\n"}, 1,
                      {"check-1.xml": Report(tests=1, failures=1), "check-2.xml": Report(tests=1)}, "verdict"),
                 id="two-references-one-report-each-highest-code"),
    pytest.param(Case({"references": "{bad}", "fail-on-violation": "false"}, 0,
                      {"check-1.xml": Report(tests=1, failures=1)}, exit_output="1"),
                 id="violation-reported-without-failing"),
    pytest.param(Case({"audit": "{host}/team/**"}, 1, {"audit.xml": Report(tests=2, failures=1)}, "verdict"),
                 id="audit-junit-one-of-two-violates"),
    pytest.param(Case({"audit": "{host}/team/**", "format": "sarif"}, 1, {"audit.sarif": Report(results=1)},
                      "verdict"), id="audit-sarif-one-result"),
    pytest.param(Case({"references": "{bad}", "format": "sarif"}, 1, {"check.sarif": Report(results=1)}, "verdict"),
                 id="check-sarif-one-result"),
    pytest.param(Case({"references": "{good}", "format": "sarif"}, 0, {"check.sarif": Report(results=0)}),
                 id="check-sarif-compliant-no-result"),
    pytest.param(Case({"references": "{dead}/team/app:1"}, 3, {"check-1.xml": Report(tests=1, errors=1)}, "verdict"),
                 id="unreachable-registry-exits-3"),
    pytest.param(Case({"references": "{good}", "policy": "{policy}.missing"}, 2, {}, "verdict"),
                 id="missing-policy-file-exits-2"),
    pytest.param(Case({"references": "{good}", "audit": "{host}"}, 2, {}, "check"), id="references-and-audit-exit-2"),
    pytest.param(Case({}, 2, {}, "check"), id="nothing-to-check-exits-2"),
    pytest.param(Case({"references": "{good}", "format": "html"}, 2, {}, "check"), id="unknown-format-exits-2"),
    pytest.param(Case({"references": "{good} {bad}", "format": "sarif"}, 2, {}, "check"),
                 id="sarif-with-two-references-exits-2"),
]


@pytest.mark.parametrize("case", GITHUB_CASES)
def test_github_action_gates_on_the_registry(case: Case, images: Images, tmp_path: Path) -> None:
    """The action's steps exit as documented, and the reports say the same in JUnit or SARIF."""
    dead = f"127.0.0.1:{free_port()}"
    reports = tmp_path / "reports"
    inputs = {"policy": str(POLICY), "reports-directory": str(reports)} | {
        name: _fill(value, images, dead) for name, value in case.inputs.items()}
    run = run_action(inputs, tmp_path)
    assert (run.code, run.failed_step) == (case.code, case.failed_step), run.log
    assert _reports(reports) == dict(case.reports), run.log
    if run.failed_step == "check":
        return  # a usage error of the inputs: nothing was run
    check = run.outputs["check"]
    assert check["exit-code"] == (case.exit_output or str(case.code)), run.log
    assert check["reports-directory"] == str(reports)
    sarif = [name for name in case.reports if name.endswith(".sarif")]
    assert check.get("sarif-file", "") == (str(reports / sarif[0]) if sarif else "")
    assert run.ran == ["check", "verdict"]
    commands = 1 if inputs.get("audit") else len(inputs["references"].split())
    rows = [line for line in (tmp_path / "step-summary.md").read_text().splitlines() if line.startswith("| `")]
    codes = (f" | {case.exit_output or case.code} |", " | 0 |")  # each row: that command's own exit code
    assert len(rows) == commands and all(line.endswith(codes) for line in rows), rows


def _uses_steps(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {step["uses"].split("@")[0]: step for step in steps if "uses" in step}


def _pins(text: str) -> dict[str, tuple[str, str]]:
    """`uses: owner/name@sha # tag` lines of a file: name → (sha, tag)."""
    return {match.group(1): (match.group(2), match.group(3))
            for match in re.finditer(r"uses:\s*([\w./-]+)@(\S+)(?:\s*#\s*(\S+))?", text)}


@pytest.mark.parametrize(
    "path",
    [pytest.param(ACTION, id="composite-action"), pytest.param(WORKFLOW, id="example-workflow")],
)
def test_github_actions_are_pinned_by_full_sha_with_the_tag(path: Path) -> None:
    pins = {name: pin for name, pin in _pins(path.read_text()).items() if not name.startswith("./")}
    assert pins, path
    for name, (sha, tag) in pins.items():
        assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{name}@{sha}: pin a full commit SHA"
        assert tag == PINNED[name], f"{name}: the comment says {tag}, the pin is {PINNED[name]}'s SHA"


@pytest.mark.parametrize(
    ("uses", "check"),
    [
        pytest.param("actions/setup-python",
                     lambda step: step["if"] == "inputs.python-version != ''"
                     and step["with"] == {"python-version": "${{ inputs.python-version }}"}, id="setup-python"),
        pytest.param("actions/upload-artifact",
                     lambda step: step["with"]["path"] == "${{ steps.check.outputs.reports-directory }}"
                     and step["with"]["name"] == "${{ inputs.artifact-name }}" and "if" not in step,
                     id="upload-artifact-always-after-check"),
        pytest.param("github/codeql-action/upload-sarif",
                     lambda step: step["if"] == "steps.check.outputs.sarif-file != ''"
                     and step["with"]["sarif_file"] == "${{ steps.check.outputs.sarif-file }}"
                     and step["with"]["category"] == "${{ inputs.sarif-category }}", id="upload-sarif-when-written"),
    ],
)
def test_github_action_ci_steps_are_wired(uses: str, check: Callable[[dict[str, Any]], bool]) -> None:
    """The steps that only run in CI take the inputs and the outputs the shell steps produce."""
    steps = _action()["runs"]["steps"]
    step = _uses_steps(steps)[uses]
    assert check(step), step
    order = [s.get("id") for s in steps]
    if uses != "actions/setup-python":
        assert order.index(step["id"]) > order.index("check") and order.index(step["id"]) < order.index("verdict")


def test_github_action_installs_the_cli_into_a_venv_on_path() -> None:
    """The install step (network: not run here) installs `source`, by default the action's own repository, into a
    venv whose bin goes on the PATH of the later steps, and every expression the action uses names something real."""
    action = _action()
    steps = action["runs"]["steps"]
    [install] = [step for step in steps if step.get("id") == "install"]
    assert install["env"] == {"PG_SOURCE": "${{ inputs.source }}"}
    text = install["run"]
    assert 'source="${PG_SOURCE:-$GITHUB_ACTION_PATH/../../..}"' in text
    assert re.search(r'pip install .*"\$source"', text) and '>> "$GITHUB_PATH"' in text
    default_source = (ACTION.parent / "../../..").resolve()
    project = tomllib.loads((default_source / "pyproject.toml").read_text())["project"]
    assert project["name"] == "platform-guard" and "platform-guard" in project["scripts"]
    # No expression inside a script (injection); every expression in env, with, if and outputs names a declared
    # input or a step id that writes that output.
    assert all("${{" not in step.get("run", "") for step in steps)
    ids = {step["id"] for step in steps}
    for expression in _expressions(action):
        parts = expression.split(".")
        if parts[0] == "inputs":
            assert parts[1] in action["inputs"], expression
        else:
            assert parts[0] == "steps" and parts[1] in ids and parts[2] == "outputs", expression
    assert {name: spec["value"] for name, spec in action["outputs"].items()} == {
        name: f"${{{{ steps.check.outputs.{name} }}}}" for name in ("exit-code", "reports-directory", "sarif-file")}


def test_example_workflow_uses_the_action_with_declared_inputs() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    declared = set(_action()["inputs"])
    used = [step for job in workflow["jobs"].values() for step in job["steps"]
            if step.get("uses") == "./examples/github-actions/platform-guard-check"]
    assert len(used) == 2
    for step in used:
        assert set(step["with"]) <= declared, set(step["with"]) - declared
        assert (ROOT / step["with"]["policy"]).is_file()
    sarif_jobs = [job for job in workflow["jobs"].values()
                  if any(step.get("with", {}).get("format") == "sarif" for step in job["steps"])]
    assert sarif_jobs and all(job["permissions"]["security-events"] == "write" for job in sarif_jobs)
    assert workflow["permissions"] == {"contents": "read"}


# -- the Azure Pipelines template ----------------------------------------------------------------------------------


def _template() -> dict[str, Any]:
    return yaml.safe_load(AZURE_TEMPLATE.read_text())


@dataclass
class PipelineRun:
    code: int = 0
    failed_step: str | None = None
    log: str = ""


def run_template(parameters: Mapping[str, Any], workdir: Path) -> PipelineRun:
    template = _template()
    declared = {parameter["name"]: parameter for parameter in template["parameters"]}
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    values = {name: spec["default"] for name, spec in declared.items() if "default" in spec} | dict(parameters)

    def resolve(expression: str) -> str:
        kind, _, name = expression.partition(".")
        assert kind == "parameters", f"the test cannot evaluate ${{{{ {expression} }}}}"
        return _expand(values[name], resolve)

    result = PipelineRun()
    for step in template["steps"]:
        if "script" not in step or step["name"] in CI_ONLY_RUN_STEPS:
            continue
        script = workdir / f"{step['name']}.sh"
        script.write_text(step["script"])
        environment = _environment({name: _expand(value, resolve) for name, value in (step.get("env") or {}).items()}
                                   | {"AGENT_TEMPDIRECTORY": str(workdir / "agent-temp")})
        done = subprocess.run([*AZURE_BASH, str(script)], cwd=workdir, env=environment, capture_output=True,
                              text=True, timeout=STEP_SECONDS, check=False)
        result.log += f"--- {step['name']}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        if done.returncode != 0:
            result.code, result.failed_step = done.returncode, step["name"]
            break
    return result


AZURE_CASES = [
    pytest.param(Case({"references": "{good}"}, 0, {"check-1.xml": Report(tests=1)}), id="check-compliant-exits-0"),
    pytest.param(Case({"references": "{bad}"}, 1, {"check-1.xml": Report(tests=1, failures=1)}, "check"),
                 id="check-violation-exits-1"),
    pytest.param(Case({"references": "{bad}\n{good}"}, 1,
                      {"check-1.xml": Report(tests=1, failures=1), "check-2.xml": Report(tests=1)}, "check"),
                 id="two-references-one-report-each-highest-code"),
    pytest.param(Case({"references": "{bad}", "failOnViolation": False}, 0,
                      {"check-1.xml": Report(tests=1, failures=1)}), id="violation-reported-without-failing"),
    pytest.param(Case({"audit": "{host}/team/**"}, 1, {"audit.xml": Report(tests=2, failures=1)}, "check"),
                 id="audit-one-of-two-violates"),
    pytest.param(Case({"references": "{dead}/team/app:1", "failOnViolation": False}, 3,
                      {"check-1.xml": Report(tests=1, errors=1)}, "check"), id="unreachable-registry-exits-3"),
    pytest.param(Case({"references": "{good}", "policy": "{policy}.missing"}, 2, {}, "check"),
                 id="missing-policy-file-exits-2"),
    pytest.param(Case({"references": "{good}", "audit": "{host}"}, 2, {}, "check"), id="references-and-audit-exit-2"),
]


@pytest.mark.parametrize("case", AZURE_CASES)
def test_azure_template_gates_on_the_registry(case: Case, images: Images, tmp_path: Path) -> None:
    """The template's check step exits as documented, and the JUnit files it leaves are what PublishTestResults
    picks up (its testResultsFiles pattern in its searchFolder)."""
    dead = f"127.0.0.1:{free_port()}"
    reports = tmp_path / "reports"
    parameters: dict[str, Any] = {"source": "unused: the install step is not run", "policy": str(POLICY),
                                  "reportsDirectory": str(reports)}
    parameters |= {name: _fill(value, images, dead) if isinstance(value, str) else value
                   for name, value in case.inputs.items()}
    run = run_template(parameters, tmp_path)
    assert (run.code, run.failed_step) == (case.code, case.failed_step), run.log
    assert _reports(reports) == dict(case.reports), run.log
    [publish] = [step for step in _template()["steps"] if step.get("task") == "PublishTestResults@2"]
    pattern = publish["inputs"]["testResultsFiles"]
    assert sorted(name for name in case.reports if fnmatch.fnmatch(name, pattern)) == sorted(case.reports)


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        pytest.param("UsePythonVersion@0", {"inputs": {"versionSpec": "${{ parameters.pythonVersion }}",
                                                       "addToPath": True}}, id="use-python"),
        pytest.param("PublishTestResults@2", {
            "condition": "succeededOrFailed()",
            "inputs": {"testResultsFormat": "JUnit", "testResultsFiles": "*.xml",
                       "searchFolder": "${{ parameters.reportsDirectory }}", "mergeTestResults": True,
                       "testRunTitle": "Platform Guard", "failTaskOnFailedTests": False,
                       "failTaskOnMissingResultsFile": False}}, id="publish-test-results-junit"),
        pytest.param("PublishPipelineArtifact@1", {
            "condition": "succeededOrFailed()",
            "inputs": {"targetPath": "${{ parameters.reportsDirectory }}",
                       "artifact": "${{ parameters.artifactName }}"}}, id="publish-artifact"),
    ],
)
def test_azure_template_ci_tasks_are_wired(task: str, expected: Mapping[str, Any]) -> None:
    steps = _template()["steps"]
    [step] = [s for s in steps if s.get("task") == task]
    assert {key: step[key] for key in expected} == dict(expected)
    names = [s.get("name") or s.get("task") for s in steps]
    if task != "UsePythonVersion@0":
        assert names.index(task) > names.index("check")


def test_azure_template_install_step_and_expressions() -> None:
    """The install step (network: not run here) puts a venv with `source` installed on PATH; scripts hold no template
    expression or macro (values come through env), and every expression names a declared parameter."""
    template = _template()
    declared = {parameter["name"] for parameter in template["parameters"]}
    [install] = [step for step in template["steps"] if step.get("name") == "install"]
    assert install["env"] == {"PG_SOURCE": "${{ parameters.source }}"}
    assert re.search(r'pip install .*"\$PG_SOURCE"', install["script"])
    assert "##vso[task.prependpath]$venv/bin" in install["script"]
    assert [p["name"] for p in template["parameters"] if "default" not in p] == ["source"]  # required: no guess
    for step in template["steps"]:
        text = step.get("script", "")
        assert "${{" not in text and not AZURE_MACRO.search(text), step.get("name")
    for expression in _expressions(template):
        kind, _, name = expression.partition(".")
        assert kind == "parameters" and name in declared, expression


def test_azure_example_pipeline_uses_the_template_with_declared_parameters() -> None:
    pipeline = yaml.safe_load(AZURE_PIPELINE.read_text())
    declared = {parameter["name"] for parameter in _template()["parameters"]}
    used = [step for job in pipeline["jobs"] for step in job["steps"]
            if step.get("template") == "platform-guard-check.yml"]
    assert used
    for step in used:
        assert "source" in step["parameters"] and set(step["parameters"]) <= declared
