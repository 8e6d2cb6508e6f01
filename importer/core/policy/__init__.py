"""The policy file: which platforms every tag of a repository must offer, and what to do when it does not.

Use it like this::

    policy = parse_policy(text, source="PLATFORM_GUARD_POLICY")  # from a file: importer.app.policy_file.load_policy
    rule = policy.rule_for("dockerhub/library/nginx")
    rule.require, rule.forbid, rule.strict, rule.on_violation, rule.flatten, rule.ignore
    rule.upstream_for("dockerhub/library/nginx")    # "docker.io/library/nginx"
    upstream.guarded_repository_for(policy, "nginx:1.27")  # (that rule, "dockerhub/library/nginx"): the inverse
    policy.quarantine.repository_for("team/app")    # "quarantine/team/app"
    policy.quarantine.holds("quarantine/team/app")  # True: a quarantine destination, not to be judged again

Everything here is pure: text in, values out. Errors are `PolicyError` (a `ValueError`) with the message
``<file>: <key path>: <what is wrong> (line N)``, for example
``policy.yaml: rules[1].require[0]: ... not a known architecture (line 12)``. Rules are counted from 0.
The first problem found is reported (the version first, then each section in order). Besides the shape of
every key, these are refused: duplicate YAML keys, an unknown os or architecture in ``require`` (and as a
literal in a ``forbid`` pattern), the same platform required twice, and text over 1 MiB (which also bounds
YAML alias tricks; aliases are shared, never expanded).

The file (YAML, version 1; docs/design.md, Policy contract; `schemas/policy.schema.json` the editor schema)
----------------------------------------------------------------------------------------------------------
``version: 1`` (required), ``defaults`` (require, forbid, match, on_violation, upstream, flatten, signatures),
``rules`` (a list; each has ``repositories`` plus any defaults key and ``ignore``), ``quarantine``
(mode, repository). Keys left out of ``defaults`` take the built-in values of `DEFAULT_POLICY`:
require [linux/amd64], forbid [], match compatible, on_violation quarantine, upstream null, flatten false,
signatures allow-loss,
quarantine move to ``quarantine/{repository}`` (its `source` is ``<default>``).

Resolution
----------
- Rules are tried in order; the first whose ``repositories`` match wins. Keys the rule does not set come
  from ``defaults``. A key that is written is set, even as ``[]`` or (for ``upstream``) ``null``.
  A repository no rule matches gets ``defaults``. Rules in a parsed `Policy` are already resolved.
- Cross-key checks run on each resolved rule and on ``defaults``: ``on_violation: reimport`` needs an
  upstream; no required platform may match a forbid pattern; ``flatten: true`` needs exactly one required
  platform. A rule with ``ignore: true`` is never evaluated, so it may carry any other keys: their values
  are still checked one by one, but these cross-key checks are skipped for it.

Repository globs (anchored; matched against the whole repository name)
----------------------------------------------------------------------
- ``*`` any run of characters within one path segment (never ``/``); ``?`` one character other than ``/``.
- ``**`` must be a whole segment and spans any number of whole segments: ``a/**/b`` matches ``a/b`` and
  ``a/x/y/b``; ``**/b`` matches ``b`` and ``x/b``; ``**`` matches every name.
- ``a/**`` matches ``a/b`` and ``a/b/c`` but **not** ``a`` itself — like ``.gitignore``: the contents of
  ``a``. (It also keeps ``{path}`` below from ever being empty.) Write ``["a", "a/**"]`` for both.
- Allowed characters are those of repository names (lower-case ``a-z 0-9 . _ - /``) plus ``* ?``.
- A glob is at most 255 characters (as long as a repository name). Matching never backtracks: its time is
  linear in the name, whatever the glob (``*a*a*a*a*a*a*a*a*a*a*b`` included; `globs`).

Templates
---------
- ``upstream``: ``{repository}`` is the whole repository name; ``{path}`` is the name minus the literal
  prefix before the first wildcard of the first glob of the rule that matches it (character-wise):
  ``dockerhub/**`` + ``dockerhub/library/nginx`` → ``library/nginx``; ``dh-*`` + ``dh-nginx`` → ``nginx``.
  For a glob without wildcards, and for ``defaults``, ``{path}`` is the whole name.
  The template must be ``host/path``: a literal host with a dot or a port, or ``localhost``; no scheme,
  tag or digest (the pushed tag is used).
- ``quarantine.repository`` must contain ``{repository}`` and give a repository name on the same registry; its own
  text must leave room for a shortened name (19 characters per ``{repository}``), which is what a name too long to
  fit becomes (`importer.core.quarantine_names`).

Where it lives: `model` (the values), `globs` (repository globs), `yaml_lines` (YAML with line numbers),
`reader` (`parse_policy` and every check), `upstream` (`guarded_repository_for`).
"""

from __future__ import annotations

from importer.core.policy.globs import repository_matcher
from importer.core.policy.model import (
    DEFAULT_POLICY,
    MATCH_MODES,
    MAX_POLICY_BYTES,
    MAX_POLICY_NESTING,
    MAX_POLICY_NODES,
    QUARANTINE_MODES,
    SIGNATURE_MODES,
    VIOLATION_ACTIONS,
    Policy,
    PolicyError,
    Quarantine,
    Rule,
)
from importer.core.policy.reader import parse_policy

__all__ = [
    "DEFAULT_POLICY",
    "MATCH_MODES",
    "MAX_POLICY_BYTES",
    "MAX_POLICY_NESTING",
    "MAX_POLICY_NODES",
    "QUARANTINE_MODES",
    "SIGNATURE_MODES",
    "VIOLATION_ACTIONS",
    "Policy",
    "PolicyError",
    "Quarantine",
    "Rule",
    "parse_policy",
    "repository_matcher",
]
