"""`completion bash|zsh`: a shell completion script for `platform-guard`, written from the parser itself.

    eval "$(platform-guard completion bash)"       # in ~/.bashrc
    eval "$(platform-guard completion zsh)"        # in ~/.zshrc (zsh runs bash completions through bashcompinit)

The script completes the verbs, each verb's flags (after a `-`), and the values of flags and arguments that have a
fixed set of choices (`-o table|json|junit|sarif`, `completion bash|zsh`); everywhere else it leaves the shell's own file-name completion. Since it is
generated from the same parser that reads the command line, it cannot fall out of step with the flags. Every word in
it is one of our own option strings or choices, shell-quoted.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable

from importer.entry.commands.common import EXIT_OK, Subcommands, with_examples

SHELLS = ("bash", "zsh")
FUNCTION = "_platform_guard_complete"


def command_completion(args: argparse.Namespace) -> int:
    print(completion_script(args.root_parser, args.shell), end="")
    return EXIT_OK


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of `parser` for `shell` (bash, or zsh through bashcompinit)."""
    verbs = _verbs(parser)
    lines = [f"# platform-guard {shell} completion: eval \"$(platform-guard completion {shell})\""]
    if shell == "zsh":
        # bashcompinit's `complete` registers through compdef, which exists once compinit has run (~/.zshrc
        # usually runs it; -i: skip insecure directories silently rather than ask).
        lines.append("(( ${+functions[compdef]} )) || { autoload -U +X compinit && compinit -i; }")
        lines.append("autoload -U +X bashcompinit && bashcompinit")
    lines += [
        f"{FUNCTION}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" verb="" i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case "${COMP_WORDS[i]}" in -*) ;; *) verb="${COMP_WORDS[i]}"; break ;; esac',
        "    done",
        "    COMPREPLY=()",
        '    case "$verb" in',
        f"        '') COMPREPLY=($(compgen -W {_words([*verbs, *_flags(parser)])} -- \"$cur\")); return ;;",
    ]
    for name, subparser in verbs.items():
        lines.append(f"        {shlex.quote(name)})")
        for flags, choices in _choices(subparser):
            lines.append(f"            case \"$prev\" in {'|'.join(map(shlex.quote, flags))}) "
                         f"COMPREPLY=($(compgen -W {_words(choices)} -- \"$cur\")); return ;; esac")
        positional = _positional_choices(subparser)
        if positional:
            lines.append(f"            [[ $cur != -* ]] && COMPREPLY=($(compgen -W {_words(positional)} -- \"$cur\"))")
        lines.append(f"            [[ $cur == -* ]] && COMPREPLY=($(compgen -W {_words(_flags(subparser))} -- \"$cur\"))"
                     " ;;")
    lines += ["    esac", "}", f"complete -o default -F {FUNCTION} platform-guard", ""]
    return "\n".join(lines)


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings]


def _choices(parser: argparse.ArgumentParser) -> list[tuple[list[str], list[str]]]:
    """The flags that take one of a fixed set of values, with those values."""
    return [(list(action.option_strings), [str(choice) for choice in action.choices])
            for action in parser._actions if action.option_strings and action.choices]


def _positional_choices(parser: argparse.ArgumentParser) -> list[str]:
    """The values of positional arguments with a fixed set of choices (`completion bash|zsh`)."""
    return [str(choice) for action in parser._actions if not action.option_strings and action.choices
            for choice in action.choices]


def _words(words: Iterable[str]) -> str:
    return shlex.quote(" ".join(words))


def register(commands: Subcommands) -> None:
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print a completion script for the shell: verbs, flags and the values of flags with fixed "
        "choices; file names elsewhere.",
        **with_examples(
            'eval "$(platform-guard completion bash)"          # add to ~/.bashrc',
            'eval "$(platform-guard completion zsh)"           # add to ~/.zshrc',
            "platform-guard completion bash > /etc/bash_completion.d/platform-guard",
        ),
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    completion.set_defaults(run=command_completion)
