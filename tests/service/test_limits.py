"""service.limits: accounts counted without parsing them, reloads throttled."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.settings import Settings
from service.errors import TooLarge, TooManyRequests
from service.limits import (
    SINGLE_BODY_BYTES,
    Throttle,
    body_limit,
    check_account_count,
    count_accounts,
)

# Text that looks like JSON structure: braces, brackets, quotes and backslashes in strings.
TRICKY = st.text(alphabet=st.sampled_from('{}[]",:\\ab\n\u00e9'), max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY, inner, max_size=3),
    max_leaves=8,
)
ACCOUNTS = st.lists(
    st.dictionaries(TRICKY, JSON_VALUES, max_size=4).map(lambda d: {"account_id": "x", **d}),
    max_size=30,
)


INT64 = st.integers(-(2**63), 2**64 - 1)  # what orjson writes


@given(ACCOUNTS, st.dictionaries(st.sampled_from(["capacity", "gross_margin"]), INT64))
def test_count_equals_the_parsed_number_of_accounts(accounts: list, others: dict) -> None:
    body = orjson.dumps({**others, "accounts": accounts})
    assert count_accounts(body) == len(accounts)
    pretty = orjson.dumps({"accounts": accounts}, option=orjson.OPT_INDENT_2)
    assert count_accounts(pretty) == len(accounts)


def test_escaped_quotes_and_backslashes_do_not_fool_the_count() -> None:
    body = rb'{"accounts": [{"a": "\\"}, {"b": "\"{[{"}, {"c": "\\\"}{"}]}'
    assert count_accounts(body) == len(orjson.loads(body)["accounts"]) == 3


def test_a_million_minimal_accounts_are_refused_before_parsing() -> None:
    body = b'{"accounts":[' + b",".join([b'{"account_id":"a"}'] * 1_000_000) + b"]}"
    with pytest.raises(TooLarge) as refused:
        check_account_count(body, 10_000)
    assert str(refused.value) == (
        "batch of 1000000 accounts is above the limit of 10000 (CHURN_BATCH_LIMIT); "
        "split it into batches of at most 10000"
    )


def test_a_batch_at_the_limit_passes() -> None:
    body = orjson.dumps({"accounts": [{"account_id": f"a{i}"} for i in range(50)]})
    check_account_count(body, 50)
    with pytest.raises(TooLarge):
        check_account_count(body, 49)


def test_body_limits_per_route() -> None:
    settings = Settings(batch_limit=100)
    assert body_limit("/v1/score", settings) == SINGLE_BODY_BYTES == 64 * 1024
    assert body_limit("/v1/score/batch", settings) == 100 * 2048 + 64 * 1024
    assert body_limit("/v1/prioritize", settings) == settings.body_limit_bytes
    assert body_limit("/admin/reload", settings) == SINGLE_BODY_BYTES


def test_throttle_allows_one_event_per_period() -> None:
    now = [100.0]
    throttle = Throttle(2.0, clock=lambda: now[0])
    throttle.take()
    now[0] = 101.5
    with pytest.raises(TooManyRequests) as refused:
        throttle.take()
    assert refused.value.retry_after == pytest.approx(0.5)
    now[0] = 102.0
    throttle.take()
