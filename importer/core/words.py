"""English for counts, in one place: `counted(2, "tag")` is "2 tags", `counted(1, "index entry")` "1 index entry".

Every message that states a count builds it here, so that none says "1 tags", "2 attestation" or "1 index entry
disagree". Nouns take the regular English plural unless an irregular one is given; verbs agree through `agreeing`.
"""

from __future__ import annotations

_SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh")
_VOWELS = "aeiou"


def plural_of(noun: str) -> str:
    """The regular English plural of `noun` ("tag" → "tags", "index entry" → "index entries", "process" →
    "processes"); only the last word changes."""
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in _VOWELS:
        return noun[:-1] + "ies"
    if noun.endswith(_SIBILANT_ENDINGS):
        return noun + "es"
    return noun + "s"


def noun_for(count: int, noun: str, plural: str | None = None) -> str:
    """`noun` as a count of `count` takes it: singular for exactly one, plural otherwise (also for zero)."""
    return noun if count == 1 else (plural or plural_of(noun))


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """The count and its noun: "1 tag", "0 tags", "3 index entries"."""
    return f"{count} {noun_for(count, noun, plural)}"


def agreeing(count: int, singular_verb: str, plural_verb: str) -> str:
    """The verb form that agrees with a subject of `count` things: agreeing(1, "disagrees", "disagree")."""
    return singular_verb if count == 1 else plural_verb
