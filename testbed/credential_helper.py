"""Docker credential helpers for tests: an executable `docker-credential-<name>` that speaks the helper protocol.

    helper = write_credential_helper(bin_dir, "test", {"127.0.0.1:5000": ("ci", "secret")})
    # PATH=bin_dir:… ; `docker-credential-test get` reads a server URL on stdin and prints
    # {"ServerURL": "127.0.0.1:5000", "Username": "ci", "Secret": "secret"}
    helper.calls()   # ["127.0.0.1:5000"]: the server URLs it was asked for, one line per run (never a secret)

A server URL it does not know gets "credentials not found in native keychain" on stdout and exit status 1, as the
real helpers answer. `behaviour` makes it misbehave: "fail" (exit 1 with a message), "hang" (sleeps far past any
deadline), "flood" (writes megabytes), "garbage" (exit 0, not JSON). The script is Python, run by the interpreter
running the tests; the answers are written into it, so it needs nothing at run time.
"""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Behaviour = Literal["answer", "fail", "hang", "flood", "garbage"]
TOKEN_USERNAME = "<token>"  # the Username a helper answers with when Secret is an identity token

_SCRIPT = '''#!{python}
import json, sys, time
answers = json.loads({answers!r})
behaviour = {behaviour!r}
if sys.argv[1:] != ["get"]:
    sys.stdout.write("only get is supported")
    sys.exit(2)
server = sys.stdin.read().strip()
with open({calls!r}, "a") as calls:
    calls.write(server + "\\n")
if behaviour == "fail":
    sys.stdout.write("error getting credentials: the keychain is locked")
    sys.exit(1)
if behaviour == "hang":
    time.sleep(600)
if behaviour == "flood":
    sys.stdout.write("x" * (4 * 1024 * 1024))
    sys.exit(0)
if behaviour == "garbage":
    sys.stdout.write("not json at all")
    sys.exit(0)
if server not in answers:
    sys.stdout.write("credentials not found in native keychain")
    sys.exit(1)
username, secret = answers[server]
sys.stdout.write(json.dumps({{"ServerURL": server, "Username": username, "Secret": secret}}))
'''


@dataclass(frozen=True)
class CredentialHelper:
    """A helper script written by `write_credential_helper`."""

    name: str
    path: Path
    calls_path: Path

    def calls(self) -> list[str]:
        """The server URLs the helper was asked for, in order."""
        if not self.calls_path.exists():
            return []
        return self.calls_path.read_text().splitlines()


def write_credential_helper(
    directory: Path, name: str, answers: dict[str, tuple[str, str]], *, behaviour: Behaviour = "answer"
) -> CredentialHelper:
    """Write the executable `directory/docker-credential-<name>` answering `answers` (server URL → (username,
    secret)); put `directory` on PATH to use it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"docker-credential-{name}"
    calls = directory / f"{name}.calls"
    path.write_text(_SCRIPT.format(python=sys.executable, answers=json.dumps(answers), behaviour=behaviour,
                                   calls=str(calls)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return CredentialHelper(name, path, calls)
