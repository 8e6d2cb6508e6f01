"""The command that would deal with a swept tag by hand, carried in `SweepItem.suggestion` (and the --json report).

    suggested_command(item, policy, "policy.yaml")    # a failed tag of 127.0.0.1:5000/team/app:1 gives
    # 'python -m importer check 127.0.0.1:5000/team/app:1 --policy policy.yaml'

Re-import violations get a `copy` from the upstream the policy names; quarantine violations an `audit --remediate`
of the repository; failures and anything else pending a `check`; a quarantined tag preserved under a tag a `release`.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from importer.app.sweep.model import SweepItem
from importer.core.policy import Policy


def suggested_command(item: SweepItem, policy: Policy, policy_hint: str | None = None) -> str | None:
    """The command that would deal with `item` by hand, or None when there is nothing to do."""
    policy_option = f" --policy {shlex.quote(policy_hint)}" if policy_hint else ""
    tagged = f"{item.registry}/{item.repository}:{item.tag}"
    if item.result == "quarantined" and item.preserved_as and "@" not in item.preserved_as:
        return f"python -m importer release {item.preserved_as}{policy_option}"  # put back if it was wanted
    if item.status == "failed":
        return f"python -m importer check {tagged}{policy_option}"
    if item.status != "violation" or not item.pending:
        return None
    if item.result is None and item.action == "reimport":
        rule = policy.rule_for(item.repository)
        upstream = rule.upstream_for(item.repository)
        if upstream is not None:
            command = ["python", "-m", "importer", "copy", f"{upstream}:{item.tag}", tagged]
            if rule.flatten and len(rule.require) == 1:
                command += ["--platform", str(rule.require[0]), "--flatten"]
            for pattern in rule.forbid:
                command += ["--exclude", pattern]
            return " ".join(shlex.quote(part) for part in command)
    if item.result is None and item.action == "quarantine":
        return f"python -m importer audit {item.registry}/{item.repository}{policy_option} --remediate"
    return f"python -m importer check {tagged}{policy_option}"


def with_suggestion(item: SweepItem, policy: Policy, policy_hint: str | None) -> SweepItem:
    """`item` with its suggested command, if it has one."""
    suggestion = suggested_command(item, policy, policy_hint)
    return item if suggestion is None else replace(item, suggestion=suggestion)
