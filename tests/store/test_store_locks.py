"""Leases on business keys (``try_lock``/``unlock``): one holder at a time, expiry frees a crashed holder's key."""

from __future__ import annotations

import threading
import time

from store import Store

NAME = "7:tripletex:customer:C-1"


def test_one_holder_at_a_time_and_the_holder_may_renew(store: Store) -> None:
    assert store.try_lock(NAME, "wf-a", 60) is True
    assert store.try_lock(NAME, "wf-b", 60) is False
    assert store.try_lock(NAME, "wf-a", 60) is True  # renewal by the holder
    assert store.try_lock("7:tripletex:customer:C-2", "wf-b", 60) is True  # other keys are independent


def test_only_the_holder_can_unlock(store: Store) -> None:
    store.try_lock(NAME, "wf-a", 60)

    store.unlock(NAME, "wf-b")
    still_held = store.try_lock(NAME, "wf-b", 60)
    store.unlock(NAME, "wf-a")
    released = store.try_lock(NAME, "wf-b", 60)

    assert still_held is False
    assert released is True


def test_an_expired_lease_can_be_taken_over(store: Store) -> None:
    store.try_lock(NAME, "crashed-worker", 0.05)
    time.sleep(0.1)

    assert store.try_lock(NAME, "wf-b", 60) is True
    assert store.try_lock(NAME, "crashed-worker", 60) is False


def test_racing_owners_get_exactly_one_lease(store_url: str, store: Store) -> None:
    stores = [Store(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    won: list[bool] = []
    errors: list[BaseException] = []

    def take(n: int, s: Store) -> None:
        try:
            barrier.wait(timeout=10)
            won.append(s.try_lock(NAME, f"wf-{n}", 60))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for s in stores:
        s.dispose()

    assert errors == []
    assert sorted(won) == [False, False, False, True]
