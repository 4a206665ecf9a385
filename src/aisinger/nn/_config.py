"""Shared check for the nn configs' ``from_dict`` (pure helper; imports nothing of the project)."""

from __future__ import annotations

from dataclasses import fields


def check_known_keys(cls, d: dict, what: str = "model config") -> None:
    """ValueError naming the keys of ``d`` that are not fields of the dataclass ``cls``."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} keys {sorted(unknown)}")
