"""Policy YAML whose scalars PyYAML cannot make (or makes at a super-linear cost): a PolicyError naming the line.

The policy is read by `importer.core.policy.yaml_lines`, on the bounds of `importer.core.yaml_input`: an impossible
date, an explicit tag that does not fit its value, or a number too long to write out used to escape as a plain
ValueError or KeyError ("Exceeds the limit (4300 digits) for integer string conversion"), with no file or line.
"""

from __future__ import annotations

import time

import pytest

from importer.core.policy import PolicyError, parse_policy

CASES = [
    ("hex-integer-of-5000-digits", "version: 0x" + "f" * 5000 + "\n", "a number of 5002 characters", 1),
    ("decimal-integer-of-5000-digits", "version: 1\ndefaults:\n  match: " + "9" * 5000 + "\n",
     "a number of 5000 characters", 3),
    ("base-60-integer", "version: 1" + ":30" * 200_000 + "\n", "a number of 600001 characters", 1),
    ("impossible-date", "version: 2001-13-45\n", "'2001-13-45' is not a valid timestamp: month must be in 1..12", 1),
    ("bool-tag", "version: 1\ndefaults:\n  flatten: !!bool maybe\n", "'maybe' is not a valid bool", 3),
    ("int-tag", "version: !!int one\n", "'one' is not a valid int", 1),
    ("float-tag", "version: 1\nrules:\n  - repositories: [a]\n    match: !!float fast\n",
     "'fast' is not a valid float", 4),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("text", "problem", "line"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_unmakeable_scalars_are_policy_errors_with_the_line(text: str, problem: str, line: int) -> None:
    """Each is a PolicyError ``policy.yaml: invalid YAML: <problem> (line N)``, within a second, message cut short."""
    started = time.process_time()
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="policy.yaml")
    assert time.process_time() - started < 1.0
    message = str(refused.value)
    assert message.startswith("policy.yaml: invalid YAML: "), message[:300]
    assert problem in message and message.endswith(f"(line {line})"), message[:300]
    assert len(message) < 300


def test_numbers_up_to_the_limit_still_read() -> None:
    """A 1000-character number is read as before (and then refused by the policy's own checks, as any number is)."""
    with pytest.raises(PolicyError, match=r"^policy.yaml: version: ") as refused:
        parse_policy("version: " + "9" * 1000 + "\n", source="policy.yaml")
    assert "invalid YAML" not in str(refused.value)
