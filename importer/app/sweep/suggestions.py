"""What to do about a swept tag: the command that deals with it by hand (`SweepItem.suggestion`) and, in words, what
fixing it means (`SweepItem.remedy`); both are in the --json report and the rendered ones.

    suggested_command(item, "policy.yaml")            # a violation of 127.0.0.1:5000/team/app:1 to re-import gives
    # 'platform-guard audit 127.0.0.1:5000/team/app:1 --policy policy.yaml --remediate'
    remedy(item, policy)                              # 're-import from docker.io/library/nginx'

A violation the event path would re-import or quarantine gets an `audit REGISTRY/REPOSITORY:TAG --remediate`: it
sweeps that one tag and hands it to the pipeline, so exactly that tag is fixed, with every safety rule the event path
has (preservation, the loop guard, the recorded outcome), and a re-import whose upstream lacks the tag is quarantined
as an event's would be. Naming the registry on the command line is what lets `--remediate` change it
(importer/entry/commands/audit.py), so the command runs as printed. Failures and anything else pending get a `check`;
a quarantined tag preserved under a tag a `release`. Every command starts with the installed program's name
(importer.core.program).
"""

from __future__ import annotations

from dataclasses import replace

from importer.app.sweep.model import SweepItem
from importer.core.policy import Policy
from importer.core.program import command_line


def _policy_words(policy_hint: str | None) -> tuple[str, ...]:
    return ("--policy", policy_hint) if policy_hint else ()


def suggested_command(item: SweepItem, policy_hint: str | None = None) -> str | None:
    """The command that would deal with `item` by hand, or None when there is nothing to do."""
    tagged = f"{item.registry}/{item.repository}:{item.tag}"
    if item.result == "quarantined" and item.preserved_as and "@" not in item.preserved_as:
        return command_line("release", item.preserved_as, *_policy_words(policy_hint))  # put back if it was wanted
    if item.status == "failed":
        return command_line("check", tagged, *_policy_words(policy_hint))
    if item.status != "violation" or not item.pending:
        return None
    if item.result is None and item.action in ("reimport", "quarantine"):
        return command_line("audit", tagged, *_policy_words(policy_hint), "--remediate")
    return command_line("check", tagged, *_policy_words(policy_hint))


def repository_command(registry: str, repository: str, policy_hint: str | None = None) -> str:
    """The command that sweeps one repository again (a dry run), e.g. once its tags can be listed."""
    return command_line("audit", f"{registry}/{repository}", *_policy_words(policy_hint))


def remedy(item: SweepItem, policy: Policy) -> str | None:
    """What fixing a violation means, in a few words that are the same for every tag fixed the same way; None for a
    tag that is not a violation."""
    if item.status != "violation":
        return None
    if item.action == "reimport":
        upstream = policy.rule_for(item.repository).upstream_for(item.repository)  # the rule matches: no ValueError
        return f"re-import from {upstream}" if upstream else "re-import"
    if item.action == "quarantine":
        quarantine = policy.quarantine
        if quarantine.mode == "move":
            return f"quarantine: move to {quarantine.repository_for(item.repository)}"
        return "quarantine: lock in place"
    if item.action == "alert":
        return "alert only: nothing is changed automatically"
    return "none: left as it is"


def with_suggestion(item: SweepItem, policy: Policy, policy_hint: str | None) -> SweepItem:
    """`item` with its suggested command and its remedy, when it has them."""
    suggestion = suggested_command(item, policy_hint)
    what = remedy(item, policy)
    if suggestion is None and what is None:
        return item
    return replace(item, suggestion=suggestion, remedy=what)
