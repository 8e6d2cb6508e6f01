"""The name of the command people run, as every command Platform Guard prints for them spells it.

    f"{PROGRAM} release {kept_at}"                  # 'platform-guard release 127.0.0.1:5000/quarantine/team/app:1'
    command_line("audit", "127.0.0.1:5000/team/app:1", "--policy", "my policy.yaml", "--remediate")
    # "platform-guard audit 127.0.0.1:5000/team/app:1 --policy 'my policy.yaml' --remediate"

`platform-guard` is the console script the package installs (pyproject.toml, [project.scripts]); from a checkout
`python -m importer` runs the same parser. Printed commands (sweep suggestions, the release command of an alert,
doctor's hints) use this one name, so what is printed runs as printed where the package is installed.
"""

from __future__ import annotations

import shlex

PROGRAM = "platform-guard"


def command_line(*words: str) -> str:
    """`platform-guard WORD …` for a POSIX shell: each word quoted when it needs it."""
    return " ".join(shlex.quote(word) for word in (PROGRAM, *words))
