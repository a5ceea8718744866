"""Reading Prometheus counters in tests: a family's samples summed over the labels not given."""

from __future__ import annotations

from collections.abc import Iterable


def total(families: Iterable, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none), over
    metric families: a registry's `collect()` or a parsed /metrics text.
    `total(fams, "blink_feed_gaps_total")` is every product's, `product="ETH-USD"` one's."""
    return sum(s.value for family in families for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
