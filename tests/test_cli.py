"""Flags generated from the config dataclasses: a setting written once, as a config field with
a comment, is a flag, a sweep key of the contact sheet and a line of FLAGS.md."""

import dataclasses
from pathlib import Path

import pytest
from absl import flags

from style_tf import app, cli, pipeline, sheet, stylize, train
from style_tf.errors import StyleError

REPO = Path(__file__).resolve().parent.parent
CONFIGS = [stylize.StylizeConfig, *(e.Config for e in stylize.ENGINES.values()), train.TrainConfig,
           pipeline.BatchConfig, app.AppConfig]


def fresh_flags(*configs, argv=(), **kw):
    values = flags.FlagValues()
    cli.define_flags(*configs, flag_values=values, **kw)
    values(["prog", *argv])
    return values


def test_flag_reference_is_in_step_with_the_configs():
    assert (REPO / "FLAGS.md").read_text() == cli.reference(), \
        "FLAGS.md is out of date: python -m style_tf.cli > FLAGS.md"


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_a_comment_a_flag_and_round_trips(cls):
    helps = cli.field_help(cls)
    values = fresh_flags(cls)
    required = {}
    for field in cli.flag_fields(cls):
        assert helps.get(field.name), f"{cls.__name__}.{field.name} has no comment"
        assert cli.flag_name(field) in values, field.name
        if cli._required(field):
            required[field.name] = f"some_{field.name}"
    argv = [f"--{cli.flag_name(f)}={cli.to_text(getattr(cls(**required), f.name))}"
            for f in cli.flag_fields(cls)
            if f.type is not bool and f.name not in required and "only_with" not in f.metadata]
    argv += [f"--{cli.flag_name(cls.__dataclass_fields__[n])}={v}" for n, v in required.items()]
    given = fresh_flags(cls, argv=argv)
    assert cli.config_from_flags(cls, given) == cls(**required)


@pytest.mark.parametrize("method", stylize.ENGINES)
def test_every_scalar_setting_of_an_engine_is_a_sweep_key_that_reaches_it(method):
    base = stylize.StylizeConfig(method=method)
    owners = ((stylize.StylizeConfig, lambda c: c), (stylize.ENGINES[method].Config, lambda c: c.engine))
    for cls, owner in owners:
        for field in cli.flag_fields(cls):
            scalar = field.type in (bool, int, float, str)
            if not scalar or not field.metadata.get("sweep", True) or field.name == "method" \
                    or cli.flag_name(field) in sheet.PER_CELL:
                continue
            value = getattr(owner(base), field.name)  # Numbers moved off their default:
            if field.type in (int, float):  # seen to arrive.
                value = value + 1 if field.type is int else value / 2
            name, values = sheet.parse_sweep(f"{field.name}={cli.to_text(value)}", method)
            assert (name, values) == (field.name, [value]), field.name
            assert getattr(owner(sheet.cell_config(base, name, values[0])), field.name) == value


def test_a_new_setting_needs_only_its_config_field():
    @dataclasses.dataclass(frozen=True)
    class Settings:
        strength: float = 0.5  # How strong it is.
        names: tuple[str, ...] = ("a",)  # Which ones.
        layers: tuple[tuple[str, float], ...] = ()  # Weighted names.
        on: bool = False  # Switch.

    values = fresh_flags(Settings, argv=["--strength=0.25", "--names=x,y", "--layers=p:2,q", "--on"])
    expected = Settings(0.25, ("x", "y"), (("p", 2.0), ("q", 1.0)), True)
    assert cli.config_from_flags(Settings, values) == expected
    assert "| `--strength` | `0.5` | How strong it is. |" in cli.flag_reference([("S", "", [Settings])])
    with pytest.raises(StyleError, match="--strength: 'lots' is not a number"):
        cli.config_from_flags(Settings, fresh_flags(Settings, argv=["--strength=lots"]))


def test_missing_required_and_conditional_flags_are_one_line_errors():
    with pytest.raises(StyleError, match="--content_dir is required"):
        cli.config_from_flags(train.TrainConfig, fresh_flags(train.TrainConfig))
    optimize_config = stylize.ENGINES["optimize"].Config
    values = fresh_flags(optimize_config, argv=["--adam_after=10", "--optimizer=adam"])
    with pytest.raises(StyleError, match="--adam_after: an option of --optimizer=lbfgs, not of adam"):
        cli.config_from_flags(optimize_config, values)
