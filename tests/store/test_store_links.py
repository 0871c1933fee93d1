"""Links: one row per (office, system, kind, Qondor key), write-ahead intents, and their races."""

from __future__ import annotations

import threading
from datetime import UTC

import pytest

from store import Link, Store

OFFICE = 7
TX = "tripletex"


def test_get_link_is_none_for_an_unknown_key(store: Store) -> None:
    assert store.get_link(OFFICE, TX, "customer", "C-1") is None


def test_begin_create_writes_a_pending_intent(store: Store) -> None:
    link = store.begin_create(OFFICE, TX, "customer", "C-1")

    assert isinstance(link, Link)
    assert (link.office_id, link.system, link.kind, link.qondor_key) == (OFFICE, TX, "customer", "C-1")
    assert link.pending and link.accounting_id is None
    assert link.intent_count == 1
    assert link.created_at.tzinfo is UTC
    assert store.get_link(OFFICE, TX, "customer", "C-1") == link


def test_each_repeated_begin_create_counts_one_more_intent(store: Store) -> None:
    counts = [store.begin_create(OFFICE, TX, "customer", "C-1").intent_count for _ in range(3)]

    assert counts == [1, 2, 3]
    assert len(store.links(OFFICE)) == 1


def test_complete_link_records_the_id_and_clears_pending(store: Store) -> None:
    store.begin_create(OFFICE, TX, "customer", "C-1")
    store.begin_create(OFFICE, TX, "customer", "C-1")

    done = store.complete_link(OFFICE, TX, "customer", "C-1", "4711", fingerprint="f1", data={"org": "999"})

    assert not done.pending
    assert (done.accounting_id, done.fingerprint, done.data) == ("4711", "f1", {"org": "999"})
    assert done.intent_count == 2  # kept as history: it took two attempts
    assert store.get_link(OFFICE, TX, "customer", "C-1") == done


def test_begin_create_on_a_completed_link_returns_it_unchanged(store: Store) -> None:
    done = store.complete_link(OFFICE, TX, "customer", "C-1", "4711")

    again = store.begin_create(OFFICE, TX, "customer", "C-1")

    assert again == done
    assert not again.pending and again.intent_count == 0


def test_complete_link_without_an_intent_inserts(store: Store) -> None:
    link = store.complete_link(OFFICE, TX, "project", "P-100", "12")

    assert (link.accounting_id, link.intent_count, link.fingerprint, link.data) == ("12", 0, None, None)


def test_complete_link_keeps_fingerprint_and_data_it_is_not_given(store: Store) -> None:
    store.complete_link(OFFICE, TX, "customer", "C-1", "1", fingerprint="f1", data={"a": 1})

    relinked = store.complete_link(OFFICE, TX, "customer", "C-1", "2")

    assert (relinked.accounting_id, relinked.fingerprint, relinked.data) == ("2", "f1", {"a": 1})


def test_complete_link_rejects_an_empty_id(store: Store) -> None:
    with pytest.raises(ValueError, match="accounting id"):
        store.complete_link(OFFICE, TX, "customer", "C-1", "")
    assert store.get_link(OFFICE, TX, "customer", "C-1") is None


def test_update_link_changes_only_what_it_is_given(store: Store) -> None:
    before = store.complete_link(OFFICE, TX, "customer", "C-1", "1", fingerprint="f1", data={"a": 1})

    store.update_link(OFFICE, TX, "customer", "C-1", fingerprint="f2")
    after_fp = store.get_link(OFFICE, TX, "customer", "C-1")
    store.update_link(OFFICE, TX, "customer", "C-1", data={"b": [1, 2]})
    after_data = store.get_link(OFFICE, TX, "customer", "C-1")

    assert after_fp is not None and after_data is not None
    assert (after_fp.fingerprint, after_fp.data) == ("f2", {"a": 1})
    assert (after_data.fingerprint, after_data.data, after_data.accounting_id) == ("f2", {"b": [1, 2]}, "1")
    assert after_data.updated_at >= before.updated_at
    assert after_data.created_at == before.created_at


def test_update_link_of_an_unknown_key_raises(store: Store) -> None:
    with pytest.raises(KeyError):
        store.update_link(OFFICE, TX, "customer", "nope", fingerprint="f")


def test_delete_link_removes_only_that_link_and_is_idempotent(store: Store) -> None:
    store.complete_link(OFFICE, TX, "customer", "C-1", "1")
    store.complete_link(OFFICE, TX, "customer", "C-2", "2")

    store.delete_link(OFFICE, TX, "customer", "C-1")
    store.delete_link(OFFICE, TX, "customer", "C-1")

    assert [link.qondor_key for link in store.links(OFFICE)] == ["C-2"]


def test_a_deleted_link_starts_over_as_a_fresh_intent(store: Store) -> None:
    store.begin_create(OFFICE, TX, "customer", "C-1")
    store.complete_link(OFFICE, TX, "customer", "C-1", "1")
    store.delete_link(OFFICE, TX, "customer", "C-1")

    fresh = store.begin_create(OFFICE, TX, "customer", "C-1")

    assert fresh.pending and fresh.intent_count == 1


def test_links_are_unique_per_office_system_kind_and_key(store: Store) -> None:
    keys = [
        (OFFICE, TX, "customer", "K"),
        (OFFICE + 1, TX, "customer", "K"),
        (OFFICE, "finago", "customer", "K"),
        (OFFICE, TX, "project", "K"),
    ]
    for i, key in enumerate(keys):
        store.complete_link(*key, f"id-{i}")
    for i, key in enumerate(keys):  # a second write of each key updates, never duplicates
        store.complete_link(*key, f"id-{i}-b")

    rows = store.links(OFFICE) + store.links(OFFICE + 1)
    assert len(rows) == 4
    assert {(r.office_id, r.system, r.kind, r.qondor_key): r.accounting_id for r in rows} == {
        key: f"id-{i}-b" for i, key in enumerate(keys)
    }


def test_links_filter_by_system_and_kind_in_a_stable_order(store: Store) -> None:
    store.complete_link(OFFICE, TX, "project", "P-2", "p2")
    store.complete_link(OFFICE, TX, "customer", "C-9", "c9")
    store.complete_link(OFFICE, TX, "customer", "C-1", "c1")
    store.complete_link(OFFICE, "finago", "customer", "C-1", "f1")
    store.complete_link(OFFICE + 1, TX, "customer", "C-1", "other office")

    everything = [(r.system, r.kind, r.qondor_key) for r in store.links(OFFICE)]
    customers = [r.accounting_id for r in store.links(OFFICE, TX, "customer")]
    finago = [r.accounting_id for r in store.links(OFFICE, system="finago")]
    projects = [r.accounting_id for r in store.links(OFFICE, kind="project")]

    assert everything == [
        ("finago", "customer", "C-1"),
        ("tripletex", "customer", "C-1"),
        ("tripletex", "customer", "C-9"),
        ("tripletex", "project", "P-2"),
    ]
    assert customers == ["c1", "c9"]
    assert finago == ["f1"]
    assert projects == ["p2"]


def test_begin_create_race_leaves_exactly_one_row_per_key(store_url: str, store: Store) -> None:
    """Two workers (separate engines, as separate processes would have) announce the same creates at once."""
    keys = [f"C-{i}" for i in range(15)]
    stores = [Store(store_url), Store(store_url)]
    barrier = threading.Barrier(len(stores))
    results: dict[int, list[Link]] = {}
    errors: list[BaseException] = []

    def worker(n: int, s: Store) -> None:
        try:
            barrier.wait(timeout=10)
            results[n] = [s.begin_create(OFFICE, TX, "customer", key) for key in keys]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for s in stores:
        s.dispose()

    assert errors == []
    rows = store.links(OFFICE)
    assert sorted(r.qondor_key for r in rows) == sorted(keys)
    assert all(r.pending and r.intent_count == 2 for r in rows)
    for i in range(len(keys)):  # one of the two callers saw itself first, the other was told it was second
        assert sorted(results[n][i].intent_count for n in results) == [1, 2]
