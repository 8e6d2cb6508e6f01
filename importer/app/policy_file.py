"""Reading the policy file from disk (size cap, UTF-8), then `importer.core.policy.parse_policy`."""

from __future__ import annotations

from pathlib import Path

from importer.core.policy import MAX_POLICY_BYTES, Policy, PolicyError, parse_policy

__all__ = ["load_policy"]


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at `path`; PolicyError names the file for every problem."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as error:
        raise PolicyError(source, "", f"cannot read the policy file: {error.strerror or error}") from error
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(source, "", f"the policy file is larger than {MAX_POLICY_BYTES} bytes (1 MiB)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        problem = f"the policy file is not UTF-8 text (bad byte at offset {error.start})"
        raise PolicyError(source, "", problem) from error
    return parse_policy(text, source=source)
