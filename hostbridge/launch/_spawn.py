"""One thread that starts every plugin process (workers and programs) for the host's life.

The parent-death signal (``setpriv --pdeathsig``) fires when the *thread* that forked the child
exits: a worker started from an executor thread (``acall``) would die with that thread, and one
started without the signal outlives a killed host.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from concurrent.futures import Future
from typing import Any


class Spawner:
    """Starts every worker from one daemon thread that lives as long as the host process.

    The parent-death signal (``setpriv --pdeathsig``) fires when the *thread* that forked the
    child exits: a worker started from an executor thread (``acall``) would die with that
    thread, and one started without the signal outlives a killed host.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], list[str], dict[str, Any]]] = \
            queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hostbridge-spawner",
                                                daemon=True)
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._queue.put((future, cmd, kwargs))
        return future.result()

    def _run(self) -> None:
        while True:
            future, cmd, kwargs = self._queue.get()
            try:
                future.set_result(subprocess.Popen(cmd, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)


spawner = Spawner()
"""The host's one spawner."""
