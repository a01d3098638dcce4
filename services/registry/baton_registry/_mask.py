"""UpdateMethod's field mask: which paths exist and how they apply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from baton_core import InvalidArgument, mask_paths

from ._models import Method

UPDATABLE = (
    "description", "version", "tags", "domain", "input_schema", "output_schema",
    "default_timeout", "retry_policy", "idempotent",
)


def resolve(paths: Sequence[str], populated: Sequence[str]) -> list[str]:
    """The paths to update: the mask, `*` for all, or (no mask) the populated fields.

    Raises:
        InvalidArgument: a path is not updatable, or nothing would be updated.
    """
    paths = mask_paths(paths, populated, UPDATABLE, "method")
    unknown = [p for p in paths if p not in UPDATABLE]
    if unknown:
        raise InvalidArgument(
            f"update_mask names fields that cannot be updated: {', '.join(unknown)}",
            reason="INVALID_MASK",
            violations=[("update_mask.paths", f"{p!r} is not one of {', '.join(UPDATABLE)}"
                         + (" (\"*\" stands alone)" if p == "*" else "")) for p in unknown])
    return list(dict.fromkeys(paths))


def apply(current: Method, patch: Method, paths: Sequence[str]) -> Method:
    """`current` with the fields in `paths` taken from `patch`; an empty domain resets it."""
    changed = replace(current, **{p: getattr(patch, p) for p in paths})
    return changed.with_default_domain()
