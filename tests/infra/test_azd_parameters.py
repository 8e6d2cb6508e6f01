"""infra/main.parameters.json as azd reads it: every `${VAR}` is replaced by the raw text of the azd environment value
and the result is then parsed as JSON, so a value with a newline or a quote breaks `azd provision` (issue 14, item 1).

How azd substitutes, read in its source (github.com/Azure/azure-dev, cli/azd/pkg/infra/provisioning/bicep/
bicep_provider.go, `loadParameters` and `evalParamEnvSubst`): each parameter of the file is marshalled back to JSON
text, `{"value":"${NAME=default}"}`, that text goes through github.com/drone/envsubst with a mapping that returns the
environment value (AZURE_PRINCIPAL_ID and AZURE_PRINCIPAL_TYPE come from the signed-in principal), and the result is
unmarshalled; earlier azd versions did the same on the whole file's text. drone/envsubst (parse/parse.go, funcs.go,
template.go) expands only `${…}`: `${NAME}`, `${NAME=word}` and `${NAME:=word}`/`${NAME:-word}` (the word when the value
is empty), writes values unescaped, and in the text around them turns `$$` into `$` and `\\`, `\\/` into `\\`, `/`.
`envsubst` below does exactly that, and refuses any other form so that the simulation cannot silently drift.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from importer.core.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PARAMETERS_FILE = INFRA / "main.parameters.json"

# A policy with what breaks raw substitution: newlines, double quotes, a backslash, a tab, a dollar sign, non-ASCII.
AWKWARD_POLICY = """\
# Policy for "prod" \u2014 quoted, escaped (\\d, \\\\, \\") and multi-line;\tcosts $0 and ${NOT_A_VARIABLE}
version: 1
defaults:
  require: [linux/amd64, "linux/arm64"]
  match: compatible
  on_violation: quarantine
rules:
  - repositories: ["team/legacy/**"]
    ignore: true
quarantine:
  mode: move
  repository: "quarantine/{repository}"
"""

_NAME = r"[A-Za-z0-9_-]+"
_DEFAULTING = re.compile(rf"\$\{{({_NAME})(?:(:?[=-])([^${{}}]*))?\}}")


def envsubst(text: str, environ: Mapping[str, str]) -> str:
    """drone/envsubst as azd calls it: `${NAME}` and the defaulting forms, values inserted raw, `$$`, `\\\\` and `\\/`
    unescaped in the surrounding text. Any other `${` form raises (this file must not need one)."""
    out: list[str] = []
    position = 0
    while position < len(text):
        if text.startswith("${", position):
            match = _DEFAULTING.match(text, position)
            if match is None:
                raise NotImplementedError(f"envsubst form not simulated: {text[position:position + 40]!r}")
            name, operator, word = match.groups()
            value = environ.get(name, "")
            out.append(value if value or operator is None else word)
            position = match.end()
        elif text.startswith(("$$", "\\\\", "\\/"), position):
            out.append(text[position + 1])
            position += 2
        else:
            out.append(text[position])
            position += 1
    return "".join(out)


def azd_parameters(environ: Mapping[str, str]) -> dict[str, Any]:
    """The parameter values azd would send, substituting parameter by parameter (current azd)."""
    parameters = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    resolved = {}
    for name, parameter in parameters.items():
        # Go's json.Marshal: compact, no spaces; the file's values are ASCII so its HTML escaping changes nothing.
        marshalled = json.dumps(parameter, separators=(",", ":"))
        resolved[name] = json.loads(envsubst(marshalled, environ))["value"]
    return resolved


def azd_parameters_whole_file(environ: Mapping[str, str]) -> dict[str, Any]:
    """The same, substituting the whole file's text at once (azd before its per-parameter resolution)."""
    return {name: parameter["value"]
            for name, parameter in json.loads(envsubst(PARAMETERS_FILE.read_text(), environ))["parameters"].items()}


SUBSTITUTIONS = [azd_parameters, azd_parameters_whole_file]


def environment(**overrides: str) -> dict[str, str]:
    """An azd environment as `azd env new` + the documented `azd env set` lines leave it."""
    values = {
        "AZURE_ENV_NAME": "guard-prod", "AZURE_LOCATION": "westeurope", "AZURE_SUBSCRIPTION_ID": "0" * 8,
        "AZURE_PRINCIPAL_ID": "11111111-2222-3333-4444-555555555555", "AZURE_PRINCIPAL_TYPE": "ServicePrincipal",
        "AZURE_REGISTRY_NAME": "myregistry", "AZURE_REGISTRY_RESOURCE_GROUP": "rg-registry",
        "AZURE_ALERT_EMAIL": "platform-oncall@example.com",
    }
    values.update(overrides)
    return values


def test_the_simulation_reproduces_the_defect() -> None:
    """A raw multi-line policy substituted into a JSON string value is not JSON any more: what `azd env set
    PLATFORM_GUARD_POLICY "$(cat my.yaml)"` did to `azd provision`, and why the file no longer maps a raw policy."""
    template = '{"value":"${PLATFORM_GUARD_POLICY=}"}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(envsubst(template, {"PLATFORM_GUARD_POLICY": AWKWARD_POLICY}))
    assert envsubst('{"a":"$${X}","b":"${X=d}","c":"${Y:-e}"}', {"X": "1"}) == '{"a":"${X}","b":"1","c":"e"}'


@pytest.mark.parametrize("substitute", SUBSTITUTIONS, ids=["per-parameter", "whole-file"])
def test_a_custom_policy_survives_substitution(substitute: Any) -> None:
    """The documented way, `azd env set AZURE_POLICY_BASE64 "$(base64 -w0 my.yaml)"`, keeps the file JSON with any
    policy text, and the template's base64ToString gives back exactly the YAML, which parses."""
    encoded = base64.b64encode(AWKWARD_POLICY.encode()).decode()
    values = substitute(environment(AZURE_POLICY_BASE64=encoded))
    assert values["policyBase64"] == encoded
    decoded = base64.b64decode(values["policyBase64"]).decode()
    assert decoded == AWKWARD_POLICY
    parse_policy(decoded, source="AZURE_POLICY_BASE64")


@pytest.mark.parametrize("substitute", SUBSTITUTIONS, ids=["per-parameter", "whole-file"])
def test_without_a_custom_policy_the_template_reads_infra_policy_yaml(substitute: Any) -> None:
    """Unset, the policy parameter is empty and main.bicep loads infra/policy.yaml itself (loadTextContent at build
    time: the file never passes through azd's substitution)."""
    values = substitute(environment())
    assert values["policyBase64"] == ""
    tree = BicepParser().parse(file_path=INFRA / "main.bicep")
    assert tree["parameters"]["policyBase64"]["default"] == ""
    text = (INFRA / "main.bicep").read_text()
    assert "var policyText = empty(policyBase64) ? loadTextContent('policy.yaml') : base64ToString(policyBase64)" in text


@pytest.mark.parametrize("substitute", SUBSTITUTIONS, ids=["per-parameter", "whole-file"])
def test_every_documented_value_keeps_the_file_json(substitute: Any) -> None:
    """Realistic values for every variable the file maps (a sweep schedule with spaces and stars, globs, an e-mail)
    substitute into valid JSON, and the booleans and numbers arrive as azd converts them."""
    values = substitute(environment(
        AZURE_SWEEP_SCHEDULE="0 0 3 * * *", AZURE_SWEEP_REMEDIATE="true", AZURE_PAUSED_REPOSITORIES="team/legacy/**,x/*",
        AZURE_REGISTRY_SYSTEM_TOPIC_NAME="evgst-shared", AZURE_ALWAYS_READY_INSTANCE_COUNT="1",
        AZURE_KEY_VAULT_RECOVER="true", AZURE_DEPLOYER_DATA_READER="false"))
    assert values["sweepSchedule"] == "0 0 3 * * *"
    assert values["pausedRepositories"] == "team/legacy/**,x/*"
    assert (values["keyVaultRecover"], values["deployerDataReader"], values["sweepRemediate"]) == ("true", "false", "true")
    defaults = substitute(environment())
    assert (defaults["keyVaultRecover"], defaults["deployerDataReader"], defaults["sweepRemediate"]) == (
        "false", "true", "false")
    assert defaults["alwaysReadyInstanceCount"] == "0"


def test_no_parameter_takes_multi_line_text_raw() -> None:
    """No variable of the file is named for a policy or other free text except the base64 one: raw substitution is
    only for single-line values (names, ids, e-mail, schedules, globs)."""
    text = PARAMETERS_FILE.read_text()
    mapped = dict(re.findall(r'"(\w+)": \{\s*"value": "\$\{(\w+)', text))
    assert mapped["policyBase64"] == "AZURE_POLICY_BASE64"
    assert "policy" not in {name.lower() for name in mapped if name != "policyBase64"}
    assert not any("POLICY" in variable for name, variable in mapped.items() if name != "policyBase64")


def test_principal_type_comes_from_azd() -> None:
    """principalType is mapped from AZURE_PRINCIPAL_TYPE, which azd sets from the signed-in principal (User or
    ServicePrincipal), so a pipeline's service principal is not assigned roles typed User (issue 14, item 14)."""
    mapped = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    assert mapped["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert mapped["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE}"
    for principal_type in ("User", "ServicePrincipal"):
        assert azd_parameters(environment(AZURE_PRINCIPAL_TYPE=principal_type))["principalType"] == principal_type
    declared = BicepParser().parse(file_path=INFRA / "main.bicep")["parameters"]["principalType"]
    allowed = {decorator["type"]: decorator["argument"] for decorator in declared["decorators"]}["allowed"]
    assert set(allowed) == {"User", "ServicePrincipal"}
