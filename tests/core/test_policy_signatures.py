"""Tables of cases for the policy key ``signatures: keep | allow-loss`` (issue 13, item 3).

Read in ``defaults`` and in rules, inherited from ``defaults`` like every other key, ``allow-loss`` when nobody
writes it (so a policy from before the key reads as it did), refused with the file, key path, valid values and line.
The editor schema (`schemas/policy.schema.json`) agrees with the reader on every case.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from importer.app.policy_file import load_policy
from importer.core.policy import DEFAULT_POLICY, PolicyError, Rule, parse_policy

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "policy.schema.json"
VALID_POLICY_FILES = sorted((ROOT / "tests" / "data" / "policies" / "valid").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


# --- valid values, inheritance and the default ----------------------------------------------------

_RULES = """\
rules:
  - repositories: ["signed/**"]
{rule}
  - repositories: ["other/**"]
"""

# (id, policy text, {repository: (key path of the rule it gets, signatures)})
VALID_CASES = [
    (
        "absent everywhere: allow-loss",
        "version: 1\n" + _RULES.format(rule="    flatten: false"),
        {
            "signed/a": ("rules[0]", "allow-loss"),
            "other/a": ("rules[1]", "allow-loss"),
            "x": ("defaults", "allow-loss"),
        },
    ),
    (
        "keep in defaults: every rule inherits it",
        "version: 1\ndefaults:\n  signatures: keep\n" + _RULES.format(rule="    match: strict"),
        {"signed/a": ("rules[0]", "keep"), "other/a": ("rules[1]", "keep"), "x": ("defaults", "keep")},
    ),
    (
        "allow-loss written in defaults",
        "version: 1\ndefaults:\n  signatures: allow-loss\n" + _RULES.format(rule="    match: strict"),
        {
            "signed/a": ("rules[0]", "allow-loss"),
            "other/a": ("rules[1]", "allow-loss"),
            "x": ("defaults", "allow-loss"),
        },
    ),
    (
        "a rule overrides keep from defaults",
        "version: 1\ndefaults:\n  signatures: keep\n" + _RULES.format(rule="    signatures: allow-loss"),
        {"signed/a": ("rules[0]", "allow-loss"), "other/a": ("rules[1]", "keep"), "x": ("defaults", "keep")},
    ),
    (
        "keep in one rule only: the next rule inherits defaults, not its neighbour",
        "version: 1\n" + _RULES.format(rule="    signatures: keep"),
        {"signed/a": ("rules[0]", "keep"), "other/a": ("rules[1]", "allow-loss"), "x": ("defaults", "allow-loss")},
    ),
    (
        "quoted and in flow style",
        'version: 1\ndefaults: {signatures: "keep"}\nrules: [{repositories: ["signed/**"], signatures: \'allow-loss\'}]\n',
        {"signed/a": ("rules[0]", "allow-loss"), "x": ("defaults", "keep")},
    ),
    (
        "with a re-import that flattens",
        "version: 1\ndefaults:\n  upstream: docker.io/{path}\n"
        + _RULES.format(rule="    on_violation: reimport\n    flatten: true\n    signatures: keep"),
        {"signed/a": ("rules[0]", "keep"), "other/a": ("rules[1]", "allow-loss")},
    ),
    (
        "on an ignored rule",
        "version: 1\n" + _RULES.format(rule="    ignore: true\n    signatures: keep"),
        {"signed/a": ("rules[0]", "keep"), "other/a": ("rules[1]", "allow-loss")},
    ),
    (
        "from a YAML anchor merged into a rule",
        (
            "version: 1\ndefaults: &base\n  signatures: keep\nrules:\n  - <<: *base\n    repositories: [a]\n"
            "  - repositories: [b]\n    signatures: allow-loss\n"
        ),
        {"a": ("rules[0]", "keep"), "b": ("rules[1]", "allow-loss"), "c": ("defaults", "keep")},
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in VALID_CASES], ids=[c[0] for c in VALID_CASES])
def test_signatures_is_read_and_inherited_from_defaults(text: str, expected: dict[str, tuple[str, str]]) -> None:
    """Each repository's rule carries the signatures mode it sets, else the one of defaults, else allow-loss."""
    policy = parse_policy(text, source="policy.yaml")
    got = {
        repository: (policy.rule_for(repository).key_path, policy.rule_for(repository).signatures)
        for repository in expected
    }
    assert got == expected
    for repository, (_, mode) in expected.items():
        assert policy.rule_for(repository).keeps_signatures is (mode == "keep")


@pytest.mark.parametrize("text", [c[1] for c in VALID_CASES], ids=[c[0] for c in VALID_CASES])
def test_schema_accepts_what_the_reader_accepts(text: str, schema_validator: jsonschema.Draft202012Validator) -> None:
    assert [error.message for error in schema_validator.iter_errors(yaml.safe_load(text))] == []


def test_the_built_in_default_is_allow_loss() -> None:
    """No policy at all, and a Rule built in code without the key, allow the loss: today's behaviour."""
    assert DEFAULT_POLICY.defaults.signatures == "allow-loss"
    assert DEFAULT_POLICY.defaults.keeps_signatures is False
    assert Rule().signatures == "allow-loss"
    assert parse_policy("version: 1").defaults.signatures == "allow-loss"


@pytest.mark.parametrize("path", VALID_POLICY_FILES, ids=[path.name for path in VALID_POLICY_FILES])
def test_a_policy_file_without_the_key_reads_as_with_allow_loss_written(path: Path) -> None:
    """A policy written before the key existed reads exactly as the same policy with ``signatures: allow-loss``
    written in defaults (defaults and every rule equal, field for field), and every rule allows the loss."""
    text = path.read_text()
    assert "signatures" not in text
    document = yaml.safe_load(text)
    document["defaults"] = {**(document.get("defaults") or {}), "signatures": "allow-loss"}
    before = load_policy(path)
    assert before == parse_policy(yaml.safe_dump(document, sort_keys=False), source=str(path))
    assert {rule.signatures for rule in (before.defaults, *before.rules)} == {"allow-loss"}


# --- refused values ---------------------------------------------------------------------------------

_IN_DEFAULTS = "version: 1\ndefaults:\n  require: [linux/amd64]\n  signatures: {value}\n"
_IN_RULE = "version: 1\nrules:\n  - repositories: [team/**]\n    signatures: {value}\n"
_VALID_VALUES = "must be one of keep, allow-loss"

# (id, policy text, the whole message) — the schema refuses each of these too.
INVALID_CASES = [
    (
        "underscore instead of hyphen in defaults",
        _IN_DEFAULTS.format(value="allow_loss"),
        f"policy.yaml: defaults.signatures: {_VALID_VALUES} (got 'allow_loss') (line 4)",
    ),
    (
        "wrong string in a rule",
        _IN_RULE.format(value="preserve"),
        f"policy.yaml: rules[0].signatures: {_VALID_VALUES} (got 'preserve') (line 4)",
    ),
    (
        "capitalised",
        _IN_RULE.format(value="Keep"),
        f"policy.yaml: rules[0].signatures: {_VALID_VALUES} (got 'Keep') (line 4)",
    ),
    (
        "empty string",
        _IN_DEFAULTS.format(value="''"),
        f"policy.yaml: defaults.signatures: {_VALID_VALUES} (got '') (line 4)",
    ),
    (
        "a number",
        _IN_DEFAULTS.format(value="1"),
        f"policy.yaml: defaults.signatures: {_VALID_VALUES} (got 1) (line 4)",
    ),
    (
        "a list",
        _IN_RULE.format(value="[keep]"),
        f"policy.yaml: rules[0].signatures: {_VALID_VALUES} (got a list) (line 4)",
    ),
    (
        "a mapping",
        _IN_RULE.format(value="{keep: true}"),
        f"policy.yaml: rules[0].signatures: {_VALID_VALUES} (got a mapping) (line 4)",
    ),
    (
        "null",
        _IN_DEFAULTS.format(value="null"),
        f"policy.yaml: defaults.signatures: {_VALID_VALUES} (got null) (line 4)",
    ),
    (
        "empty value",
        _IN_RULE.format(value=""),
        f"policy.yaml: rules[0].signatures: {_VALID_VALUES} (got null) (line 4)",
    ),
    (
        "yes (a YAML 1.1 boolean)",
        _IN_RULE.format(value="yes"),
        f"policy.yaml: rules[0].signatures: {_VALID_VALUES} (got true) (line 4)",
    ),
    (
        "a long string is quoted as a short excerpt",
        _IN_RULE.format(value="keep" * 5000),
        f"policy.yaml: rules[0].signatures: {_VALID_VALUES} (got '{('keep' * 19)[:76]}...) (line 4)",
    ),
    (
        "at the top level",
        "version: 1\nsignatures: keep\n",
        (
            "policy.yaml: signatures: unknown key 'signatures' (it belongs under defaults or in a rule); "
            "known keys: version, defaults, rules, quarantine (line 2)"
        ),
    ),
    (
        "misspelt key in defaults",
        "version: 1\ndefaults:\n  signature: keep\n",
        (
            "policy.yaml: defaults.signature: unknown key 'signature' (did you mean 'signatures'?); "
            "known keys: require, forbid, match, on_violation, upstream, flatten, signatures (line 3)"
        ),
    ),
    (
        "under quarantine",
        "version: 1\nquarantine:\n  mode: move\n  signatures: keep\n",
        "policy.yaml: quarantine.signatures: unknown key 'signatures'; known keys: mode, repository (line 4)",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_a_wrong_signatures_value_is_refused_naming_file_key_values_and_line(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="policy.yaml")
    assert str(refused.value) == message


@pytest.mark.parametrize("text", [c[1] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_schema_refuses_what_the_reader_refuses(text: str, schema_validator: jsonschema.Draft202012Validator) -> None:
    assert not schema_validator.is_valid(yaml.safe_load(text))


# --- the model, built in code --------------------------------------------------------------------------

MODEL_CASES = [
    ("keep", {"signatures": "keep"}, True),
    ("allow-loss", {"signatures": "allow-loss"}, False),
    ("left out", {}, False),
]


@pytest.mark.parametrize(("fields", "keeps"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_keeps_signatures_is_true_for_keep_only(fields: dict[str, str], keeps: bool) -> None:
    assert Rule(**fields).keeps_signatures is keeps  # type: ignore[arg-type]


REFUSED_IN_CODE = [
    (
        "underscore in a rule",
        {"signatures": "allow_loss", "index": 2},
        "rules[2]: signatures must be one of keep, allow-loss (got 'allow_loss')",
    ),
    ("None in defaults", {"signatures": None}, "defaults: signatures must be one of keep, allow-loss (got None)"),
    ("a boolean", {"signatures": True}, "defaults: signatures must be one of keep, allow-loss (got True)"),
]


@pytest.mark.parametrize(("fields", "message"), [c[1:] for c in REFUSED_IN_CODE], ids=[c[0] for c in REFUSED_IN_CODE])
def test_a_rule_built_in_code_refuses_an_unknown_mode(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Rule(**fields)  # type: ignore[arg-type]
    assert str(refused.value) == message
