"""What a worker may make the host do: its messages paced by tokens, its calls a few at a time.

Both bounds (docs/bridge.md, "Bounds on what a worker can cost the host") work by making the
worker's reader thread wait, reading nothing meanwhile: the worker's own writes then block, not
the host. :meth:`Flow.stop` (the worker is killed, closed or gone) ends every wait.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

# A message the worker starts costs one token, and one more for each this many of its bytes.
_TOKEN_BYTES = 16 << 10
_PACE_STEP = 0.02


class FlowLimits(Protocol):
    """Where the bounds are read, at each use (the :class:`~hostbridge.Worker`'s attributes)."""

    message_rate: float
    message_burst: float
    capability_calls: int
    capability_bytes: int


class Flow:
    """The token bucket of the messages one worker starts, and the slots of its calls to host
    capabilities served or queued."""

    def __init__(self, limits: FlowLimits) -> None:
        self._limits = limits
        self._cond = threading.Condition(threading.Lock())
        self.stopping = False
        """Set by :meth:`stop`: no wait starts or lasts, no slot is taken."""
        self._calls_in_flight = 0
        self._bytes_in_flight = 0
        self._tokens = limits.message_burst
        self._refilled = time.monotonic()

    def pace(self, size: int) -> None:
        """Take the tokens of a message the worker started (of *size* bytes); when there are
        none left, wait (the reader reads nothing meanwhile) until there are."""
        limits = self._limits
        now = time.monotonic()
        tokens = min(limits.message_burst,
                     self._tokens + (now - self._refilled) * limits.message_rate)
        self._refilled = now
        self._tokens = tokens - 1 - size / _TOKEN_BYTES
        if self._tokens < 0:
            # Until the debt is paid and 20 ms of tokens are saved: a wait for each message
            # would cost more than the message.
            with self._cond:
                if not self.stopping:
                    self._cond.wait(-self._tokens / limits.message_rate + _PACE_STEP)

    def take_slot(self, size: int) -> bool:
        """Wait until the worker's calls to the host in flight leave room for one more (of
        *size* bytes); False if the worker is being stopped meanwhile."""
        limits = self._limits
        with self._cond:
            while self._calls_in_flight and not self.stopping and (
                    self._calls_in_flight >= limits.capability_calls
                    or self._bytes_in_flight + size > limits.capability_bytes):
                self._cond.wait()
            if self.stopping:
                return False
            self._calls_in_flight += 1
            self._bytes_in_flight += size
            return True

    def free_slot(self, size: int) -> None:
        """Give back the slot of a call of *size* bytes (its answer is written, or never will
        be)."""
        with self._cond:
            self._calls_in_flight -= 1
            self._bytes_in_flight -= size
            self._cond.notify_all()

    def stop(self) -> None:
        """End every wait, now and to come."""
        with self._cond:
            self.stopping = True
            self._cond.notify_all()
