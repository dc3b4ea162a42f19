"""Config dataclasses -> command-line options -> config dataclasses (vdp.cli_options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from vdp.api import RunOptions
from vdp.cli_options import build_config, field_docs, option_specs
from vdp.config import check_choices
from vdp.errors import ConfigError
from vdp.optimize import OptimConfig


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    """How fast."""


@dataclass(frozen=True)
class Outer:
    """A config with every supported kind of field."""

    count: int = 3
    """How many
    things (a docstring over two lines)."""
    name: str | None = None
    mode: Literal["fast", "slow"] = "fast"
    """Which way."""
    widths: tuple[int, ...] = (8, 16)
    colour: tuple[float, float, float] | None = None
    learn: bool = field(default=True, metadata={"flags": ("--learn/--freeze",)})
    inner: Inner = field(default_factory=Inner)


def values_from(specs, **given):
    """What click would hand the command: every option at its command-line default, some given."""
    values = {}
    for spec in specs:
        default = spec.default
        if spec.kind == "tuple" and default is not None:
            default = ",".join(map(str, default))
        values[spec.parameter_name] = default
    values.update(given)
    return values


def test_field_docs_read_the_docstring_under_each_field() -> None:
    docs = field_docs(Outer)
    assert docs["count"] == "How many things (a docstring over two lines)."
    assert docs["mode"] == "Which way." and "name" not in docs


def test_specs_flatten_nested_configs_and_take_flags_from_metadata() -> None:
    specs = {spec.parameter_name: spec for spec in option_specs(Outer)}
    assert list(specs) == ["count", "name", "mode", "widths", "colour", "learn", "inner__rate"]
    assert specs["inner__rate"].flags == ("--rate",)  # a nested field keeps its own flag
    assert specs["learn"].flags == ("--learn/--freeze",) and specs["learn"].kind == "bool"
    assert specs["mode"].choices == ("fast", "slow")
    assert (specs["colour"].item_type, specs["colour"].length) == (float, 3)
    assert (specs["widths"].item_type, specs["widths"].length) == (int, None)


def test_defaults_round_trip_to_the_dataclass_defaults() -> None:
    specs = option_specs(Outer)
    assert build_config(Outer, specs, values_from(specs)) == Outer()
    run_specs = option_specs(RunOptions)
    assert build_config(RunOptions, run_specs, values_from(run_specs)) == RunOptions()


def test_given_values_are_parsed_into_the_field_types() -> None:
    specs = option_specs(Outer)
    config = build_config(Outer, specs, values_from(specs, widths="4,5,6", colour="0.1,0.2,0.3", learn=False,
                                                    inner__rate=2.0))
    assert config.widths == (4, 5, 6) and config.colour == (0.1, 0.2, 0.3) and config.learn is False
    assert config.inner == Inner(rate=2.0)


@pytest.mark.parametrize("text", ["0.1,0.2", "a,b,c", ""])
def test_a_malformed_tuple_names_its_flag_and_an_example(text: str) -> None:
    specs = option_specs(Outer)
    with pytest.raises(ConfigError, match=r"--colour expects 3 float values separated by commas, e\.g\. 0\.5,0\.5,0\.5"):
        build_config(Outer, specs, values_from(specs, colour=text))


def test_a_wrong_choice_names_the_flag_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"^--mode must be one of fast, slow; got 'medium'$"):
        check_choices(Outer(mode="medium"))
    check_choices(Outer())  # the defaults are valid


def test_run_options_steps_flag_and_unsupported_types() -> None:
    steps = next(spec for spec in option_specs(RunOptions) if spec.path == ("optim", "num_steps"))
    assert steps.flags == ("--steps",) and steps.default == OptimConfig().num_steps

    @dataclass
    class Bad:
        table: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="Bad.table"):
        option_specs(Bad)
