"""Client-side pacing: stay under a published rate limit instead of provoking 429s.

Qondor publishes its limit (10 calls/s per subscription key, API.md §4); sending faster only buys
429 responses and retries. A token bucket lets a short burst through and then spaces calls evenly.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """At most ``per_second`` calls per second on average, bursts up to ``burst``; ``None`` or 0 = unpaced."""

    def __init__(self, per_second: float | None, burst: int = 1) -> None:
        self.per_second = per_second or None
        self.burst = float(burst)
        self._tokens = self.burst
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.per_second is None:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.per_second)
