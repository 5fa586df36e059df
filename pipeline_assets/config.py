"""Dagster run config classes derived from the pure settings dataclasses, so defaults live in one place."""

import dagster as dg

from ragtune.project import asset_defaults
from resources.settings import from_settings

# Steps that call an LLM are retried on failure (an endpoint restarting, a worker killed): the
# content-addressed cache returns every call that finished, so a retry pays only for the rest.
LLM_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def fail_if_endpoint_down(what: str, failures: list[dict], finished: int, endpoint: str = "the LLM endpoint") -> None:
    """After a partition's outputs and failure ledger are written: if the endpoint was down (not one
    bad request), fail the step clearly, naming the endpoint, and without step retries (each would
    wait out the client's own retries again); a rerun resumes, the finished calls are in the cache."""
    down = [f for f in failures if f.get("unavailable")]
    if down:
        raise dg.Failure(
            f"{what}: {endpoint} did not answer {len(down)} call(s) after its retries ({down[0]['reason'][:200]}). "
            f"{finished} finished call(s) are cached; rerun once the endpoint is back to resume.",
            allow_retries=False,
        )


def config_from_settings(name: str, settings: type, doc: str, asset: str | None = None) -> type[dg.Config]:
    """A dg.Config with one field per dataclass field (same type and default), shown in the launchpad;
    for `asset`, the project file's defaults (ragtune.project) replace the dataclass's."""
    return from_settings(name, settings, doc, defaults=asset_defaults(asset) if asset else None)
