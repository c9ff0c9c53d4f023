"""AccountSnapshot's bounds, and the request path's columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pydantic import ValidationError

from features.schema import AccountSnapshot, records_to_columns

BIG = "1" + "0" * 400  # an integer no float64 can hold


def rejected(raw: str) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as caught:
        AccountSnapshot.model_validate_json(raw)
    return [(e["loc"], e["type"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("as_of", '"9999-12-31"', "less_than_equal"),
        ("signup_date", '"0001-01-01"', "greater_than_equal"),
        ("renewal_date", '"2201-01-01"', "less_than_equal"),
        ("seats", BIG, "less_than_equal"),
        ("seats", "1000000001", "less_than_equal"),
        ("tenure_months", "24000", "less_than_equal"),
        ("mrr", "Infinity", "finite_number"),
        ("mrr", "NaN", "finite_number"),
        ("mrr", "1e309", "finite_number"),
        ("mrr", BIG, "finite_number"),
        ("mrr", "1e13", "less_than_equal"),
        ("dau_avg_30d", "-Infinity", "finite_number"),
        ("ticket_hours_to_close_avg_90d", "1e7", "less_than_equal"),
        ("contract_type", '"' + "x" * 1000 + '"', "string_too_long"),
    ],
)
def test_a_value_out_of_range_names_its_field(field: str, value: str, kind: str) -> None:
    assert rejected(f'{{"account_id": "a", "{field}": {value}}}') == [((field,), kind)]


def test_mau_counts_are_bounded_too() -> None:
    assert rejected(f'{{"account_id": "a", "mau": [3, {BIG}]}}') == [
        (("mau", 1), "less_than_equal")
    ]


def test_the_ends_of_every_range_are_accepted() -> None:
    snapshot = AccountSnapshot.model_validate(
        {
            "account_id": "a",
            "as_of": "2200-12-31",
            "signup_date": "1900-01-01",
            "seats": 10**9,
            "mrr": 1e12,
            "tenure_months": 1200,
        }
    )
    assert snapshot.seats == 10**9 and snapshot.tenure_months == 1200


def test_attributes_are_bounded_in_number_name_and_value() -> None:
    many = ", ".join(f'"k{i}": 1' for i in range(101))
    assert rejected(f'{{"account_id": "a", "attributes": {{{many}}}}}') == [
        (("attributes",), "too_long")
    ]
    long_name = "k" * 65
    assert rejected(f'{{"account_id": "a", "attributes": {{"{long_name}": 1}}}}') == [
        (("attributes", long_name, "[key]"), "string_too_long")
    ]
    long_text = "v" * 1025
    assert (("attributes", "note", "constrained-str"), "string_too_long") in rejected(
        f'{{"account_id": "a", "attributes": {{"note": "{long_text}"}}}}'
    )
    assert ("attributes", "n", "constrained-int") in {
        loc for loc, _ in rejected(f'{{"account_id": "a", "attributes": {{"n": {BIG}}}}}')
    }


def test_attribute_values_keep_their_types() -> None:
    snapshot = AccountSnapshot.model_validate_json(
        '{"account_id": "a", "attributes": {"n": 5, "x": 2.5, "b": true, "t": "retail", "z": null}}'
    )
    assert snapshot.attributes == {"n": 5, "x": 2.5, "b": True, "t": "retail", "z": None}
    assert type(snapshot.attributes["n"]) is int and type(snapshot.attributes["b"]) is bool


def test_only_the_attribute_columns_asked_for_are_built() -> None:
    records = [
        AccountSnapshot(account_id=f"a{i}", attributes={f"own_{i}": i, "industry": "retail"})
        for i in range(50)
    ]
    columns = records_to_columns(records, dt.date(2025, 6, 1), attributes=["industry", "absent"])
    assert [c for c in columns if c.startswith("attributes.")] == ["attributes.industry"]
    every = records_to_columns(records, dt.date(2025, 6, 1))
    assert len([c for c in every if c.startswith("attributes.")]) == 51
    np.testing.assert_array_equal(columns["attributes.industry"], every["attributes.industry"])
