"""Command-line options generated from config dataclasses, and the values read back into them.

A config dataclass is the one source of an option's name, type, default and help: each field
becomes `--field-name` (or the flags in `field(metadata={"flags": ...})`), its type decides how the
text is parsed, and the docstring under the field (read from the source, as nerfstudio's configs
do) is the help. So a task plugin gets its command-line options by declaring its config, with no
edit to `vdp/cli.py`.

Types: `bool` (a `--name/--no-name` flag unless the metadata names the pair), `int`, `float`,
`str`, `X | None`, `Literal[...]` (the choices are shown in the help and checked by
`vdp.config.check_choices`, so a wrong value gets vdp's own one-line message), and tuples written as comma-separated numbers
(`8,16,32`). A nested dataclass field (`RunOptions.optim`) is flattened into its own fields.

Nothing here imports torch: `vdp --help` stays instant.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Literal

import click

from vdp.config import without_none
from vdp.errors import ConfigError


@dataclass(frozen=True)
class OptionSpec:
    """One command-line option made from one (possibly nested) dataclass field."""

    path: tuple[str, ...]
    """Field names from the outer dataclass down to this field (e.g. ('optim', 'num_steps'))."""
    flags: tuple[str, ...]
    """The option's flags (e.g. ('--steps',) or ('--learn-gamma/--fixed-gamma',))."""
    kind: str
    """How the text is parsed: 'bool', 'int', 'float', 'str', 'choice' or 'tuple'."""
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    """For 'choice': the allowed values."""
    item_type: type | None = None
    """For 'tuple': the type of each item."""
    length: int | None = None
    """For 'tuple': the number of items, or None for any number."""

    @property
    def parameter_name(self) -> str:
        """The keyword the command callback receives (unique across one command)."""
        return "__".join(self.path)

    @property
    def display_flag(self) -> str:
        return self.flags[0].split("/")[0]

    def click_option(self) -> click.Option:
        if self.kind == "bool":
            flags = self.flags if "/" in self.flags[0] else (f"{self.flags[0]}/--no-{self.flags[0][2:]}",)
            return click.Option([*flags, self.parameter_name], default=self.default, show_default=True, help=self.help)
        if self.kind == "choice":
            metavar = "[" + "|".join(self.choices) + "]"
            return click.Option([*self.flags, self.parameter_name], type=str, default=self.default,
                                show_default=True, metavar=metavar, help=self.help)
        if self.kind == "tuple":  # the default is shown and parsed as the text a user would type
            default = ",".join(str(v) for v in self.default) if self.default is not None else None
            return click.Option([*self.flags, self.parameter_name], type=str, default=default,
                                show_default=default is not None, metavar=_tuple_metavar(self), help=self.help)
        click_type = {"int": int, "float": float, "str": str}[self.kind]
        return click.Option([*self.flags, self.parameter_name], type=click_type, default=self.default,
                            show_default=self.default is not None, help=self.help)

    def parse(self, value: Any) -> Any:
        """The command-line value as the field's type (tuples from 'a,b,c'); None stays None."""
        if self.kind != "tuple" or value is None:
            return value
        try:
            items = tuple(self.item_type(part) for part in str(value).split(","))
        except ValueError:
            items = ()
        if not items or (self.length is not None and len(items) != self.length):
            count = f"{self.length} " if self.length is not None else ""
            raise ConfigError(
                f"{self.display_flag} expects {count}{self.item_type.__name__} values separated by commas, "
                f"e.g. {_tuple_example(self)}; got {value!r}"
            )
        return items


def _tuple_metavar(spec: OptionSpec) -> str:
    name = "N" if spec.item_type is int else "X"
    return ",".join([name] * spec.length) if spec.length else f"{name},{name},..."


def _tuple_example(spec: OptionSpec) -> str:
    item = "8" if spec.item_type is int else "0.5"
    return ",".join([item] * (spec.length or 3))


@functools.cache
def field_docs(config_class: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (attribute docstrings, read from its source).

    Returns {} when the source is not available (a frozen application, say): options then have
    no help text but still work.
    """
    try:
        source = textwrap.dedent(inspect.getsource(config_class))
    except (OSError, TypeError):
        return {}
    class_node = ast.parse(source).body[0]
    docs: dict[str, str] = {}
    body = getattr(class_node, "body", [])
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def option_specs(config_class: type, *, prefix: tuple[str, ...] = ()) -> list[OptionSpec]:
    """The options of a config dataclass, nested dataclasses flattened, in field order."""
    hints = typing.get_type_hints(config_class)
    docs = field_docs(config_class)
    specs: list[OptionSpec] = []
    for field in dataclasses.fields(config_class):
        if not field.init:
            continue
        annotation = hints[field.name]
        default = _default_of(field)
        path = prefix + (field.name,)
        if dataclasses.is_dataclass(annotation):
            specs.extend(option_specs(annotation, prefix=path))
            continue
        flags = tuple(field.metadata.get("flags", (f"--{field.name.replace('_', '-')}",)))
        help_text = docs.get(field.name, "")
        specs.append(_spec_for(annotation, path=path, flags=flags, default=default, help_text=help_text,
                               where=f"{config_class.__name__}.{field.name}"))
    return specs


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"config field {field.name!r} needs a default to become a command-line option")


def _spec_for(annotation: Any, *, path: tuple[str, ...], flags: tuple[str, ...], default: Any, help_text: str,
              where: str) -> OptionSpec:
    inner = without_none(annotation)
    origin = typing.get_origin(inner)
    common = {"path": path, "flags": flags, "default": default, "help": help_text}
    if inner is bool:
        return OptionSpec(kind="bool", **common)
    if inner in (int, float, str):
        return OptionSpec(kind=inner.__name__, **common)
    if origin is Literal:
        return OptionSpec(kind="choice", choices=tuple(str(v) for v in typing.get_args(inner)), **common)
    if origin is tuple:
        arguments = typing.get_args(inner)
        variable = len(arguments) == 2 and arguments[1] is Ellipsis
        item_types = {arguments[0]} if variable else set(arguments)
        if len(item_types) == 1 and next(iter(item_types)) in (int, float):
            return OptionSpec(kind="tuple", item_type=next(iter(item_types)),
                              length=None if variable else len(arguments), **common)
    raise TypeError(f"{where}: type {annotation!r} cannot be a command-line option "
                    "(use bool, int, float, str, Literal[...], a tuple of numbers, or X | None of those)")


def build_config(config_class: type, specs: list[OptionSpec], values: dict[str, Any]) -> Any:
    """The dataclass (nested ones included) from a command's keyword values."""
    nested: dict[str, Any] = {}
    for spec in specs:
        if spec.parameter_name not in values:
            continue
        value = spec.parse(values[spec.parameter_name])
        target = nested
        for name in spec.path[:-1]:
            target = target.setdefault(name, {})
        target[spec.path[-1]] = value
    return _instantiate(config_class, nested)


def _instantiate(config_class: type, values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(config_class)
    arguments = {}
    for name, value in values.items():
        if isinstance(value, dict) and dataclasses.is_dataclass(hints[name]):
            value = _instantiate(hints[name], value)
        arguments[name] = value
    return config_class(**arguments)
