# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The one rate limiter (app/ratelimit.py) and the LLM budgets built on it (app/chat_limits.py)."""

from __future__ import annotations

import pytest

from app.chat_limits import ChatLimits
from app.limits import Refused
from app.ratelimit import SlidingWindow, normalize_client
from app.settings import Settings


def test_a_key_past_its_window_budget_waits_until_the_window_moves_on() -> None:
    """Past the budget a key is refused, told how long to wait, and allowed once that has passed."""
    limiter = SlidingWindow(3, 60)
    assert [limiter.acquire("s", now=t) for t in (0, 1, 2)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("s", now=3) == 57
    assert limiter.acquire("other", now=3) == 0.0
    assert limiter.acquire("s", now=60) == 0.0


def test_costs_and_refunds_count_in_the_window() -> None:
    """A token budget: a cost over what is left is refused whole; a refund makes room again."""
    limiter = SlidingWindow(1000, 3600)
    assert limiter.acquire("c", 800, now=0) == 0.0
    assert limiter.acquire("c", 300, now=1) > 0
    limiter.charge("c", -200, now=2)
    assert limiter.acquire("c", 300, now=3) == 0.0 and limiter.used("c", now=3) == 900


def test_a_flood_of_keys_forgets_the_idlest_not_everyone() -> None:
    """10,000 new keys evict the idlest ones; a busy key stays limited; memory stays bounded."""
    limiter = SlidingWindow(2, 60, max_keys=10_000)
    assert [limiter.allow("busy", now=0), limiter.allow("busy", now=0)] == [True, True]
    for n in range(10_000):
        limiter.allow(f"flood-{n}", now=1)
        if n % 100 == 0:
            assert limiter.allow("busy", now=1) is False  # touched: the most recent, never evicted
    assert len(limiter._keys) == 10_000


@pytest.mark.parametrize(
    ("host", "client"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("testclient", "testclient"),
        ("", "unknown"),
    ],
)
def test_a_client_is_its_address_and_an_ipv6_client_its_64(host: str, client: str) -> None:
    """One IPv6 host holds a whole /64: counting single addresses would give it endless identities."""
    assert normalize_client(host) == client


def _limits(**values: object) -> ChatLimits:
    return ChatLimits(Settings.from_env({}, **values))


def test_one_client_cannot_run_more_llm_calls_at_once_than_its_share() -> None:
    """CHAT_CONCURRENT_PER_CLIENT calls at once, then 429; released slots are free again."""
    limits = _limits(chat_concurrent_per_client=2, chat_requests_per_minute=100)
    held = [limits.admit("a"), limits.admit("a")]
    with pytest.raises(Refused) as refused:
        limits.admit("a")
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "1"
    limits.admit("b").release()  # another client is not affected
    held[0].release()
    held[0].release()  # idempotent
    limits.admit("a")
    assert limits.active == {"a": 2} and limits.active_total == 2


def test_the_pool_size_bounds_llm_calls_from_everyone() -> None:
    """CEREBE_MAX_CONNECTIONS calls at once in total: the next one is 503 at once, not a queue."""
    limits = _limits(cerebe_max_connections=3, chat_concurrent_per_client=3)
    for client in "abc":
        limits.admit(client)
    with pytest.raises(Refused) as refused:
        limits.admit("d")
    assert refused.value.status_code == 503 and refused.value.code == "llm_busy"


def test_tokens_are_reserved_then_settled_against_the_hourly_budget() -> None:
    """The estimate is charged before the call and replaced by the usage; a spent budget is 429."""
    limits = _limits(chat_tokens_per_hour=1000, chat_requests_per_minute=100)
    admission = limits.admit("a")
    admission.reserve([{"role": "user", "content": "x" * 2000}])  # ~504 tokens estimated
    assert limits.tokens.used("a") == 504
    admission.settle(input_tokens=900, output_tokens=200)
    admission.release()
    assert limits.tokens.used("a") == 1100
    with pytest.raises(Refused) as refused:
        limits.admit("a")
    assert refused.value.code == "token_budget_spent" and int(refused.value.headers["Retry-After"]) > 3000
    limits.admit("b")  # the budget is per client


def test_requests_per_minute_per_client_and_in_total() -> None:
    """CHAT_REQUESTS_PER_MINUTE per client and CHAT_REQUESTS_PER_MINUTE_TOTAL for all: 429 past either."""
    limits = _limits(chat_requests_per_minute=2, chat_requests_per_minute_total=3)
    for client in ("a", "a", "b"):
        limits.admit(client).release()
    with pytest.raises(Refused) as per_client:
        limits.admit("a")
    with pytest.raises(Refused) as total:
        limits.admit("c")
    assert (per_client.value.code, total.value.code) == ("chat_rate_limited", "chat_rate_limited_total")
