"""Dataclasses rebuilt from plain dicts (saved configs, checkpoints), refusing keys they do not know."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from gantx.errors import GantxError

T = TypeVar("T")


def from_dict(cls: type[T], values: Mapping[str, Any], what: str, error: type[GantxError] = GantxError) -> T:
    """`cls(**values)`; `error` names the unknown or missing keys instead of a TypeError.

    Such keys mean a file from another gantx version.
    """
    names = {item.name for item in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise error(f"{what} has unknown fields {', '.join(unknown)}")
    try:
        return cls(**values)
    except TypeError as problem:
        raise error(f"{what}: {problem}") from None
