"""`completion bash|zsh`: the script, sourced in a real bash (and zsh where installed), completes verbs, flags and
the choices of flags, and leaves file names to the shell elsewhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

from importer.entry.cli import build_parser
from importer.entry.commands.completion import completion_script

ROOT_PARSER = build_parser()


def _complete(shell: str, words: list[str]) -> list[str]:
    """What the completion function offers for the command line `words` (the last one is being completed)."""
    script = completion_script(ROOT_PARSER, shell)
    line = " ".join(f"'{word}'" for word in words)
    call = (f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _platform_guard_complete; "
            "printf '%s\\n' \"${COMPREPLY[@]}\"")
    if shell == "zsh":  # as bashcompinit's _bash_complete calls a bash completion function: in sh emulation
        call = f"() {{ emulate -L sh; setopt kshglob noshglob braceexpand; {call} }}"
    command = [shell, "-c", f"{script}\n{call}"] if shell == "bash" else ["zsh", "-f", "-c", f"{script}\n{call}"]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert ran.returncode == 0 and not ran.stderr, ran.stderr
    offered = [word for word in ran.stdout.splitlines() if word]
    if shell == "zsh":  # bashcompinit's compgen leaves matching the typed prefix to zsh's compadd, which does it so
        offered = [word for word in offered if word.startswith(words[-1])]
    return offered


SHELLS = [pytest.param("bash", id="bash"), pytest.param("zsh", id="zsh")]  # scripts/setup installs zsh


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(["platform-guard", "ch"], ["chart-images", "check"], id="verbs-by-prefix"),
        pytest.param(["platform-guard", "--ver"], ["--verbose", "--version"], id="global-flags"),
        pytest.param(["platform-guard", "check", "--po"], ["--policy"], id="a-verb's-flags"),
        pytest.param(["platform-guard", "-v", "audit", "--re"], ["--remediate", "--report"], id="after-a-global-flag"),
        pytest.param(["platform-guard", "check", "REF", "-o", ""], ["json", "junit", "sarif", "table"],
                     id="choices-of-a-flag"),
        pytest.param(["platform-guard", "check", "REF", "--output", "j"], ["json", "junit"], id="choices-by-prefix"),
        pytest.param(["platform-guard", "completion", ""], ["bash", "zsh"], id="choices-of-an-argument"),
        pytest.param(["platform-guard", "check", "--policy", "po"], [], id="file-names-left-to-the-shell"),
        pytest.param(["platform-guard", "copy", "--no"], ["--no-referrers"], id="copy-flags"),
    ],
)
def test_completion_offers(shell: str, words: list[str], expected: list[str]) -> None:
    assert sorted(_complete(shell, words)) == expected


def test_every_verb_and_flag_of_the_parser_is_in_the_script() -> None:
    script = completion_script(ROOT_PARSER, "bash")
    verbs = next(action for action in ROOT_PARSER._actions if action.dest == "command").choices
    for verb, parser in verbs.items():
        assert f"        {verb})" in script, verb
        for action in parser._actions:
            for option in action.option_strings:
                assert option in script, (verb, option)


def test_the_command_prints_the_script() -> None:
    ran = subprocess.run([sys.executable, "-m", "importer", "completion", "bash"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == completion_script(build_parser(), "bash")
    assert ran.stdout.rstrip().endswith("complete -o default -F _platform_guard_complete platform-guard")
