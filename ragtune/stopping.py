"""A person's request to stop, as every long loop of every stage sees it: the command line sets it on
Ctrl-C or SIGTERM and the LLM client, the batch poller and the trainer check it between calls, so a
stop ends the work under way within one call instead of letting it spend on.

StopRequested is a BaseException: no `except Exception` on the way up (a stage's per-call error
handling, Dagster's retry policy) can take it for a failure and go on."""

from __future__ import annotations

import threading

_requested = threading.Event()


class StopRequested(BaseException):
    """The user asked to stop; what finished is saved (the LLM cache), what was under way is dropped."""

    def __init__(self) -> None:
        super().__init__("stopped at the user's request")


def request_stop() -> None:
    _requested.set()


def stop_requested() -> bool:
    return _requested.is_set()


def check_stop() -> None:
    """Raise StopRequested once a stop was asked for; call it between units of work that can be redone."""
    if _requested.is_set():
        raise StopRequested()


def clear_stop() -> None:
    """Forget a stop (a process that runs again after one: tests, a long-lived server)."""
    _requested.clear()


def pause(seconds: float) -> None:
    """time.sleep that ends at once with StopRequested when a stop is asked for (pollers, backoffs)."""
    if _requested.wait(seconds):
        raise StopRequested()
