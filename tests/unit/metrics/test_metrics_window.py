"""A buyer's window (the entries their standing is computed from, kept in their document): each
return or delivered order counted once, trimmed to the abuse window, and assessed exactly as the
buyer's facts are, whatever the duplicates and the order of arrival."""

from __future__ import annotations

import random
from datetime import timedelta

from services.metrics.abuse import RecentDelivery, RecentReturn, Thresholds, Window, assess, assess_window, window_of
from services.metrics.facts import delivery_fact, return_fact
from tests.unit.metrics.builders import at, order, requested

RULES = Thresholds(window_days=90, max_returns=5, max_return_rate=0.5, min_orders=4)
SINCE = at(0)


def test_the_same_return_added_twice_counts_once():
    entry = RecentReturn("r1", "o1", at(5))
    window = Window().with_return(entry, SINCE).with_return(entry, SINCE)
    assert window.returns == (entry,)
    again = Window().with_return(entry, SINCE).with_return(RecentReturn("r2", "o1", at(6)), SINCE)
    assert [r.return_id for r in again.returns] == ["r1", "r2"]


def test_a_delivery_keeps_its_newest_sequence_whatever_the_order_of_arrival():
    old, new = RecentDelivery("o1", 1, at(5)), RecentDelivery("o1", 2, at(6))
    assert Window().with_delivery(old, SINCE).with_delivery(new, SINCE).deliveries == (new,)
    assert Window().with_delivery(new, SINCE).with_delivery(old, SINCE).deliveries == (new,)
    assert Window().with_delivery(new, SINCE).with_delivery(new, SINCE).deliveries == (new,)


def test_entries_older_than_the_window_start_are_trimmed_and_never_added():
    window = Window(
        (RecentReturn("r-old", "o1", at(0) - timedelta(seconds=1)), RecentReturn("r-edge", "o2", at(0))),
        (RecentDelivery("o-old", 0, at(-1)), RecentDelivery("o-new", 0, at(1))),
    )
    trimmed = window.with_return(RecentReturn("r-late", "o3", at(-2)), SINCE)
    assert [r.return_id for r in trimmed.returns] == ["r-edge"]
    assert [d.order_id for d in trimmed.deliveries] == ["o-new"]
    assert trimmed.with_delivery(RecentDelivery("o-late", 0, at(-5)), SINCE).deliveries == trimmed.deliveries


def test_merging_keeps_each_entry_once():
    a = Window((RecentReturn("r1", "o1", at(1)),), (RecentDelivery("o1", 0, at(0)),))
    b = Window((RecentReturn("r1", "o1", at(1)), RecentReturn("r2", "o2", at(2))), (RecentDelivery("o1", 3, at(0)),))
    merged = a.merged(b, SINCE)
    assert [r.return_id for r in merged.returns] == ["r1", "r2"]
    assert merged.deliveries == (RecentDelivery("o1", 3, at(0)),)


def test_a_window_built_event_by_event_assesses_as_the_facts_do():
    """Random buyers' histories, delivered shuffled with duplicates while the clock moves on and the
    window is trimmed at every step: at every instant the standing equals the one from all facts."""
    rng = random.Random(13)
    for trial in range(200):
        facts_r, facts_d = [], []
        for i in range(rng.randint(0, 9)):
            order_id = f"o{rng.randint(0, 6)}"
            created = at(rng.randint(0, 200), rng.randint(0, 23))
            facts_r.append(
                return_fact(requested(f"r{i}", order_id=order_id, buyer_id="b", seller_id="s", created_at=created))
            )
        for i in range(rng.randint(0, 9)):
            delivered = at(rng.randint(0, 200))
            facts_d.append(
                delivery_fact(order(f"o{i}", buyer_id="b", seller_id="s", delivered_at=delivered, skus={"A": 1}))
            )
        arrivals = [("r", f) for f in facts_r] + [("d", f) for f in facts_d]
        arrivals += rng.sample(arrivals, k=len(arrivals) // 2)  # redeliveries
        rng.shuffle(arrivals)
        window, now = Window(), at(0)
        for step, (kind, fact) in enumerate(arrivals):
            now += timedelta(days=rng.randint(0, 20))
            since = now - RULES.window
            if kind == "r":
                window = window.with_return(RecentReturn(fact.return_id, fact.order_id, fact.created_at), since)
            else:
                window = window.with_delivery(RecentDelivery(fact.order_id, fact.sequence, fact.delivered_at), since)
            # The facts seen so far, one per aggregate (as the fact store keeps them).
            seen_r = list({f.return_id: f for k, f in arrivals[: step + 1] if k == "r"}.values())
            seen_d = list({f.order_id: f for k, f in arrivals[: step + 1] if k == "d"}.values())
            assert assess_window("b", window, now, RULES) == assess("b", seen_r, seen_d, now, RULES), trial
        later = now + timedelta(days=rng.randint(0, 120))
        assert assess_window("b", window, later, RULES) == assess("b", facts_r, facts_d, later, RULES), trial


def test_the_window_of_facts_leaves_out_other_buyers():
    mine = return_fact(requested("r1", buyer_id="b", seller_id="s", created_at=at(5)))
    theirs = return_fact(requested("r2", buyer_id="x", seller_id="s", created_at=at(5)))
    delivered = delivery_fact(order("o9", buyer_id="x", seller_id="s", delivered_at=at(5), skus={"A": 1}))
    window = window_of("b", [mine, theirs], [delivered], SINCE)
    assert [r.return_id for r in window.returns] == ["r1"] and window.deliveries == ()
