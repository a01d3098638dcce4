"""References in step params: `${input.x}`, `${context.x}`, `${steps.<id>.<path>}`.

A string that is exactly one reference becomes the referenced value, whatever
its type; references inside longer strings are replaced by their text (JSON
for anything but a string). Paths take dotted names and `[n]` list indexes,
e.g. `${steps.list.notes[0].text}`. `$${` stands for a literal `${`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ROOTS = ("input", "context", "steps")
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]|(\.)")


class BadReference(Exception):
    """A reference that does not parse or does not resolve."""

    def __init__(self, reference: str, problem: str) -> None:
        super().__init__(f"${{{reference}}}: {problem}")
        self.reference = reference
        self.problem = problem


@dataclass(frozen=True)
class Reference:
    text: str
    root: str
    path: tuple[str | int, ...]

    @property
    def step_id(self) -> str | None:
        return str(self.path[0]) if self.root == "steps" and self.path else None


def parse(text: str) -> Reference:
    """Parses the inside of `${...}`; raises BadReference when it is malformed."""
    parts: list[str | int] = []
    pos, expect_name = 0, True
    stripped = text.strip()
    while pos < len(stripped):
        match = _PART.match(stripped, pos)
        if match is None:
            raise BadReference(text, f"unexpected {stripped[pos]!r} at {pos}")
        name, index, dot = match.groups()
        if dot:
            if expect_name:
                raise BadReference(text, "empty name")
            expect_name = True
        elif index is not None:
            if not parts:
                raise BadReference(text, "an index needs a name before it")
            parts.append(int(index))
            expect_name = False
        else:
            if not expect_name:
                raise BadReference(text, f"missing '.' before {name!r}")
            parts.append(name)
            expect_name = False
        pos = match.end()
    if not parts or expect_name:
        raise BadReference(text, "incomplete reference")
    root = parts[0]
    if root not in ROOTS:
        raise BadReference(text, f"must start with {', '.join(ROOTS)}")
    if root == "steps" and (len(parts) < 2 or not isinstance(parts[1], str)):
        raise BadReference(text, "must name a step: steps.<step_id>")
    return Reference(text=stripped, root=str(root), path=tuple(parts[1:]))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def references_in(value: Any) -> list[Reference]:
    """Every reference anywhere in `value`; raises on the first malformed one."""
    found = []
    for text in _strings(value):
        for match in _TOKEN.finditer(text):
            if match.group(1) is not None:
                found.append(parse(match.group(1)))
        if "${" in _TOKEN.sub("", text):
            raise BadReference(text, "unterminated '${'")
    return found


def has_reference(value: Any) -> bool:
    return any(m.group(1) is not None for t in _strings(value) for m in _TOKEN.finditer(t))


def needs_resolving(value: Any) -> bool:
    """Whether `value` holds a reference or a `$${` escape: either way resolve() changes it."""
    return any(_TOKEN.search(text) for text in _strings(value))


def lookup(ref: Reference, scope: Mapping[str, Any]) -> Any:
    """The value `ref` names in scope {input, context, steps}; raises when missing."""
    current: Any = scope.get(ref.root)
    if current is None:
        why = ("the run has no session, so there is no context to read" if ref.root == "context"
               else f"there is no {ref.root} to read")
        raise BadReference(ref.text, why)
    walked = ref.root
    for part in ref.path:
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                raise BadReference(ref.text, f"{walked} has no item [{part}]")
            current = current[part]
            walked += f"[{part}]"
        else:
            if not isinstance(current, Mapping) or part not in current:
                what = "step output" if walked == "steps" else walked
                raise BadReference(ref.text, f"{what} has no {part!r}")
            current = current[part]
            walked += f".{part}"
    return current


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _resolve_string(text: str, scope: Mapping[str, Any]) -> Any:
    whole = _TOKEN.fullmatch(text)
    if whole is not None and whole.group(1) is not None:
        return lookup(parse(whole.group(1)), scope)

    def replace(match: re.Match) -> str:
        if match.group(1) is None:
            return "${"
        return _text(lookup(parse(match.group(1)), scope))

    return _TOKEN.sub(replace, text) if "$" in text else text


def resolve(value: Any, scope: Mapping[str, Any]) -> Any:
    """`value` with every reference replaced; raises BadReference for a missing one."""
    if isinstance(value, str):
        return _resolve_string(value, scope)
    if isinstance(value, Mapping):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, scope) for v in value]
    return value
