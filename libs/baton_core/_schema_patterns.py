"""Patterns in JSON Schemas, matched by RE2: the cache of compiled patterns that
the validator, the registration checks and the error messages share, and the
2020-12 validator that matches with it."""

from __future__ import annotations

import functools

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

# Patterns are matched by RE2, in time linear in the text: Python's backtracking
# `re` took 19 s for 27 characters against "^(a+)+$", with the service's event
# loop stuck meanwhile. RE2 has no backreferences or lookaround; a schema using
# them is refused at registration.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=4096)
def linear(pattern: str):
    return re2.compile(pattern, _RE2_OPTIONS)


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not linear(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if linear(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


Validator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "patternProperties": _pattern_properties})
