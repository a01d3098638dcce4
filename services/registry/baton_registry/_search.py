"""SearchMethods ranking: a few weighted matches, scored in Python."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._models import Method

# For one query word, a name-token match outweighs every other match together.
EXACT_NAME = 100.0
NAME_TOKEN = 10.0
NAME_PART = 3.0
TAG = 4.0
DESCRIPTION = 1.0

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def score(method: Method, query: str) -> float:
    """How well `method` matches `query`; 0 when it does not."""
    total = EXACT_NAME if query.strip().lower() == method.name else 0.0
    name_tokens = set(words(method.name))
    tag_tokens = {t.lower() for t in method.tags} | {w for t in method.tags for w in words(t)}
    description = set(words(method.description))
    for word in dict.fromkeys(words(query)):
        if word in name_tokens:
            total += NAME_TOKEN
        elif word in method.name:
            total += NAME_PART
        if word in tag_tokens:
            total += TAG
        if word in description:
            total += DESCRIPTION
    return total


def rank(methods: Iterable[Method], query: str, limit: int) -> list[tuple[Method, float]]:
    """The `limit` best matches, best first, ties by name."""
    scored = [(m, s) for m in methods if (s := score(m, query)) > 0]
    scored.sort(key=lambda hit: (-hit[1], hit[0].name))
    return scored[:limit]
