"""Fuzzing the parser: random and mutated filters raise FilterSyntaxError or parse cleanly."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import Email, User
from scimsync.errors import FilterSyntaxError
from scimsync.filter import parse_filter

SEEDS = [
    'userName eq "bjensen"',
    'name.familyName co "O\'Malley"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"',
    'title pr and meta.lastModified gt "2011-05-13T04:42:34Z"',
    'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
    'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]',
    "n ge -1.5e+3 and b eq true or x eq null",
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "\\u00e9\\""',
]
ALPHABET = [*'abcnotrpeq ()[]"\\.:$-_01eE+\t\n\x00é\ud800', " and ", " or ", "not (", " eq "]
USER = User(user_name="bjensen", emails=[Email(value="a@example.com", type="work")])


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(5)
        at = rng.randint(0, len(chars))
        if action == 0 and chars:
            del chars[min(at, len(chars) - 1)]
        elif action == 1:
            chars.insert(at, rng.choice(ALPHABET))
        elif action == 2 and chars:
            other = rng.randrange(len(chars))
            here = min(at, len(chars) - 1)
            chars[here], chars[other] = chars[other], chars[here]
        elif action == 3:
            start = rng.randint(0, len(chars))
            chars[at:at] = chars[start : start + rng.randint(1, 12)]
        else:
            chars = chars[:at]
    return "".join(chars)


def _check(text: str) -> bool:
    """Parse ``text``; True when it parsed. Only FilterSyntaxError may escape."""
    error: FilterSyntaxError | None = None
    try:
        parsed = parse_filter(text)
    except FilterSyntaxError as exc:
        error = exc
    if error is not None:
        assert 0 <= error.position <= len(text)
        return False
    # Whatever parses round-trips and evaluates without raising.
    assert parsed == parse_filter(str(parsed))
    assert parsed.matches(USER) in (True, False)
    return True


def test_ten_thousand_mutated_and_random_filters() -> None:
    """10,000 inputs (mutations of valid filters, random strings) raise only the project error."""
    rng = random.Random(20240611)
    parsed = 0
    for index in range(10_000):
        if index % 4 == 3:
            text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
        else:
            text = _mutate(rng, rng.choice(SEEDS))
        parsed += _check(text)
    # The corpus exercises both outcomes, not only the error path.
    assert 500 < parsed < 9_500


@settings(max_examples=500)
@given(st.text(st.characters(exclude_categories=())))
def test_any_text_raises_only_the_project_error(text: str) -> None:
    """Arbitrary Unicode (surrogates and control characters included) never crashes the parser."""
    _check(text)
