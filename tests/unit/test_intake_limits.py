"""The intake limits never throttle a storm away: no limit by default, and a set limit is
an average rate that a single large Alertmanager group can still get through."""
from __future__ import annotations

from shared.config_loader import load_organisation
from shared.domain.organisation import Integration
from shared.domain.ratelimit import TokenBucket
from shared.settings import DEFAULT_CONFIG


def test_the_code_default_is_no_limit():
    assert Integration().rate_limit_per_minute is None


def test_the_shipped_example_never_limits_alertmanager_grafana_or_native_intake():
    org = load_organisation(DEFAULT_CONFIG)
    for name in ("default", "alertmanager", "grafana"):
        assert org.integrations[name].rate_limit_per_minute is None, name
    # Any other key name falls back to "default".
    assert all(i.rate_limit_per_minute is None for i in org.integrations.values())


def test_a_group_larger_than_the_bucket_gets_in_once_the_bucket_is_full():
    bucket = TokenBucket(per_minute=600)
    assert bucket.take(now=0.0, count=2000) == (True, 0.0)
    # In debt now (600 - 2,000 + 10 refilled = -1,390): the next request waits until the
    # bucket is full again, 1,990 tokens at 10 a second.
    allowed, wait = bucket.take(now=1.0, count=2000)
    assert not allowed
    assert wait == 199.0
    assert bucket.take(now=1.0 + wait, count=2000)[0]


def test_within_the_bucket_requests_are_counted_and_refused_past_it():
    bucket = TokenBucket(per_minute=60)
    assert bucket.take(now=0.0, count=59)[0]
    allowed, wait = bucket.take(now=0.0, count=2)
    assert not allowed and wait == 1.0  # one token short, one token a second
    assert bucket.take(now=1.0, count=2)[0]
