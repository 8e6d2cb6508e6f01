"""docs/deploy.md against the templates: what it tells the infra engineer to type must work with them (issue 14).

The guide is what people copy from, so the defects of issue 14 that lived in it are checked here: a raw policy passed
through azd (item 1), the deployer's roles (item 2), a copy-paste line that claimed the registry's permissions mode
(item 13), and the roles it lists against the roles the templates assign.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.infra.test_infra import BUILT_IN_ROLES, ROLE_ASSIGNMENTS

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "deploy.md").read_text()


def section(title: str) -> str:
    """The text of the guide's section whose heading contains title, up to the next heading of the same or a higher
    level (a `#` line inside a fenced code block is a shell comment, not a heading)."""
    lines, fenced, taken, level = [], False, False, 0
    for line in GUIDE.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"^(#+) ", line)
        if heading and taken and len(heading[1]) <= level:
            break
        if taken:
            lines.append(line)
        elif heading and title in line:
            taken, level = True, len(heading[1])
    assert taken, title
    return "\n".join(lines)


def azd_env_sets() -> list[str]:
    return re.findall(r"azd env set [^\n]*", GUIDE)


def test_no_azd_value_carries_raw_file_text() -> None:
    """No `azd env set` passes a file's text (`$(cat …)`, `Get-Content`): azd pastes values raw into JSON. The policy
    goes base64-encoded, in AZURE_POLICY_BASE64."""
    for line in azd_env_sets():
        assert "$(cat" not in line and "Get-Content" not in line, line
    setting_a_policy = [line for line in azd_env_sets()
                         if "POLICY" in line and not re.search(r'POLICY\w* ""', line)]
    assert setting_a_policy
    for line in setting_a_policy:
        assert "AZURE_POLICY_BASE64" in line, line
        assert "base64 -" in line or "ToBase64String" in line, line


def test_the_permissions_mode_is_not_a_setting() -> None:
    """No copy-paste line sets the registry's permissions mode (pasted for the wrong mode, it left the app without
    registry rights); the guide shows how to read the mode, for information only."""
    assert not [line for line in azd_env_sets() if "ABAC" in line.upper()]
    assert "az acr show -n myregistry --query roleAssignmentMode -o tsv" in GUIDE
    assert "LegacyRegistryPermissions" in GUIDE and "AbacRepositoryPermissions" in GUIDE


def test_prerequisites_name_the_deployers_roles() -> None:
    """The deployer needs Contributor and Role Based Access Control Administrator (or Owner) on the subscription, and
    no longer roleDefinitions/write: no custom role is created or deleted anywhere in the guide."""
    roles = section("The roles you need")
    for role in ("Contributor", "Role Based Access Control Administrator", "Owner"):
        assert f"**{role}**" in roles, role
    assert "az role definition" not in section("Roll back and remove")
    assert "az role definition create" not in GUIDE
    assert "custom role" not in section("What each resource is for").lower()


def test_the_guide_lists_exactly_the_roles_the_templates_assign() -> None:
    """Every built-in role a template assigns is in "Who may do what", and that table names no other."""
    table = section("Who may do what")
    listed = {name for name in BUILT_IN_ROLES if re.search(rf"\b{re.escape(name)}\b", table)}
    assigned = {row.role for row in ROLE_ASSIGNMENTS}
    assert assigned <= listed, f"assigned but not listed: {assigned - listed}"
    assert listed <= assigned, f"listed but not assigned: {listed - assigned}"


def test_validating_the_templates_says_why_there_is_no_bicep_build() -> None:
    """The guide says that the Bicep CLI cannot be installed from the registries this project reaches, and what
    checks the templates instead."""
    text = section("Validating the templates")
    assert "Bicep CLI cannot be installed" in text
    assert "bash scripts/check-infra" in text and "tests/infra" in text
    assert "az bicep build" in text


def test_smoke_check_runs_doctor_with_the_apps_settings() -> None:
    """The smoke check runs `python -m importer doctor` on the app's own settings and lists the app identity's roles:
    it says plainly that the managed identity cannot be used from outside Azure."""
    text = section("Smoke check")
    assert "python -m importer doctor" in text or '"-m", "importer", "doctor"' in text
    assert '"az", "functionapp", "config", "appsettings", "list"' in text
    assert 'az role assignment list --assignee "$AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID" --all' in text
    assert "cannot sign in as the app" in text
