"""Dagster run config classes derived from the pure settings dataclasses, so defaults live in one place."""

import dataclasses
import typing

import dagster as dg
import pydantic


# Steps that call an LLM are retried on failure (an endpoint restarting, a worker killed): the
# content-addressed cache returns every call that finished, so a retry pays only for the rest.
LLM_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def config_from_settings(name: str, settings: type, doc: str) -> type[dg.Config]:
    """A dg.Config with one field per dataclass field (same type and default), shown in the launchpad."""
    hints = typing.get_type_hints(settings)
    fields = {
        f.name: (hints[f.name], f.default if f.default_factory is dataclasses.MISSING else pydantic.Field(default_factory=f.default_factory))
        for f in dataclasses.fields(settings)
    }
    config = pydantic.create_model(name, __base__=dg.Config, **fields)
    config.__doc__ = doc
    return config
