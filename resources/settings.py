"""Dagster classes built from the core's settings dataclasses, so every default lives in one place:
run config (dg.Config) for assets, and resource fields for outside systems."""

import dataclasses
import typing

import dagster as dg
import pydantic


def from_settings(name: str, settings: type, doc: str, base: type = dg.Config, defaults: dict | None = None) -> type:
    """A pydantic class on `base` with one field per dataclass field (same type and default, or the
    value in `defaults`: the project file's, for runs that sensors and automation start)."""
    hints = typing.get_type_hints(settings)
    defaults = defaults or {}
    unknown = set(defaults) - {f.name for f in dataclasses.fields(settings)}
    if unknown:
        raise ValueError(f"{name}: the project file sets unknown field(s) {', '.join(sorted(unknown))}")

    def default(f: dataclasses.Field):
        if f.name in defaults:
            return pydantic.Field(default_factory=lambda value=defaults[f.name]: value) if isinstance(defaults[f.name], (dict, list)) else defaults[f.name]
        return f.default if f.default_factory is dataclasses.MISSING else pydantic.Field(default_factory=f.default_factory)

    fields = {f.name: (hints[f.name], default(f)) for f in dataclasses.fields(settings)}

    def settings_checks(self):  # the dataclass's own checks (its __post_init__) on every config, wherever it is set
        to_settings(settings, self)
        return self

    made = pydantic.create_model(name, __base__=base, __validators__={"settings_checks": pydantic.model_validator(mode="after")(settings_checks)},
                                 **fields)
    made.__doc__ = doc
    return made


def to_settings(settings: type, values: object):
    """The dataclass again, from an object that carries its fields (a resource or a config)."""
    return settings(**{f.name: getattr(values, f.name) for f in dataclasses.fields(settings)})
