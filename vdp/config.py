"""Checks on config dataclasses (a task's config, `RunOptions`) that hold however they were made:
from the command line, from a dict of overrides, or by hand in Python."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from vdp.errors import ConfigError


def without_none(annotation: Any) -> Any:
    """`X | None` and `Optional[X]` -> X; anything else unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(arguments) == 1:
            return arguments[0]
    return annotation


def check_choices(config: Any) -> None:
    """Refuse a `Literal` field (nested dataclasses included) whose value is not one of its choices.

    The message names the command-line flag (`--field-name`, or the first of the field's
    `metadata["flags"]`) and lists the choices.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        annotation = without_none(hints[field.name])
        if dataclasses.is_dataclass(value):
            check_choices(value)
        elif typing.get_origin(annotation) is Literal and value is not None:
            choices = typing.get_args(annotation)
            if value not in choices:
                flag = field.metadata.get("flags", (f"--{field.name.replace('_', '-')}",))[0].split("/")[0]
                raise ConfigError(f"{flag} must be one of {', '.join(map(str, choices))}; got {value!r}")
