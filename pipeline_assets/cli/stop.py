"""Ctrl-C and SIGTERM for `ragtune run`. The graph runs in a worker thread: Dagster turns a SIGINT that
reaches a step on the main thread into a retry of the step (its retry policy), so a stop went unheard.
Here the main thread alone hears signals: the first asks every stage to stop (ragtune.stopping: the
LLM client, batch poller and trainers check it between calls), waits a few seconds for the step under
way to end, and hands back; a second one exits at once. The worker blocks SIGINT, and so do the helper
processes it starts (they inherit the mask; Dagster's log tailers among them): a Ctrl-C sent to the
terminal's whole process group reaches this process only, with no tracebacks from helpers. SIGTERM
stays open in them: Dagster ends its helpers with it."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Callable

from ragtune.stopping import clear_stop, request_stop

STOP_GRACE_S = 6.0  # after the first signal: how long the step under way may take to end
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerStillRunning(Exception):
    """The stopped work did not end within the grace period (a long step with no stop check)."""

    def __init__(self, stopped_at: float):
        super().__init__("the work under way did not end after the stop")
        self.stopped_at = stopped_at


def run_stoppable(work: Callable[[], None], every_second: Callable[[], None] = lambda: None) -> float | None:
    """Run work() in a worker thread; None when it finished, else the time (time.time()) a signal
    stopped it. Raises WorkerStillRunning (with that time) when the work would not end within
    STOP_GRACE_S: the caller exits the process. An exception of work() is raised here.
    every_second() runs on the main thread while the work goes on."""
    clear_stop()
    outcome: dict[str, BaseException] = {}
    heard: list[int] = []
    stopped_at: list[float] = []

    def target() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            work()
        except BaseException as error:  # handed to the main thread, StopRequested included
            outcome["error"] = error

    def on_signal(signum: int, _frame) -> None:
        heard.append(signum)
        if len(heard) > 1:
            os.write(2, b"\nstopped at once (second signal). `ragtune run` again marks the runs this left failed and resumes.\n")
            os._exit(130)
        stopped_at.append(time.time())
        request_stop()
        print(f"\n{signal.Signals(signum).name}: stopping after the call under way (again to quit at once)...", file=sys.stderr,
              flush=True)

    previous = {s: signal.signal(s, on_signal) for s in SIGNALS}
    worker = threading.Thread(target=target, name="ragtune-run", daemon=True)
    try:
        worker.start()
        last_tick = time.monotonic()
        while worker.is_alive() and not heard:
            worker.join(0.2)
            if time.monotonic() - last_tick >= 1.0:
                last_tick = time.monotonic()
                every_second()
        if heard:
            worker.join(STOP_GRACE_S)
            if worker.is_alive():
                raise WorkerStillRunning(stopped_at[0])
            return stopped_at[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if "error" in outcome:
        raise outcome["error"]
    return None
