"""The playbook: drivers and facts -> retention actions, as data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from features.errors import ChurnError
from features.schema import AccountSnapshot, records_to_columns
from models.bundle import Driver
from service.actions import Playbook

from .conftest import AS_OF, snapshot


@pytest.fixture(scope="module")
def playbook() -> Playbook:
    return Playbook.load()


def recommend(playbook, body, features, tier="high"):
    columns = records_to_columns(
        [AccountSnapshot.model_validate(body)], dt.date.fromisoformat(AS_OF)
    )
    drivers = [[Driver(f, None, 0.1 - i / 100, f"reason of {f}") for i, f in enumerate(features)]]
    return [a["id"] for a in playbook.recommend(drivers, [tier], columns)[0]]


def test_falling_usage_early_on_calls_for_onboarding(playbook) -> None:
    young = snapshot(signup_date="2025-04-01")
    assert recommend(playbook, young, ["mau_pct_change_vs_prior_60d"]) == ["onboarding_session"]


def test_falling_usage_later_calls_for_an_adoption_review(playbook) -> None:
    assert recommend(playbook, snapshot(), ["mau_pct_change_vs_prior_60d"]) == ["adoption_review"]


def test_no_contact_for_90_days_calls_for_outreach(playbook) -> None:
    assert recommend(
        playbook, snapshot(last_contact_date="2025-01-10"), ["days_since_last_contact"]
    ) == ["csm_outreach"]


def test_recent_contact_does_not_call_for_outreach(playbook) -> None:
    assert (
        recommend(playbook, snapshot(last_contact_date="2025-05-20"), ["days_since_last_contact"])
        == []
    )


def test_detractor_calls_for_an_executive_call(playbook) -> None:
    assert recommend(playbook, snapshot(nps_last=3), ["nps_last_score"]) == ["executive_call"]


def test_promoter_does_not_call_for_an_executive_call(playbook) -> None:
    assert recommend(playbook, snapshot(nps_last=10), ["nps_last_score"]) == []


def test_ticket_backlog_calls_for_support_escalation(playbook) -> None:
    assert recommend(playbook, snapshot(tickets_open=6), ["tickets_open"]) == ["support_escalation"]


def test_key_contact_left_calls_for_a_new_champion(playbook) -> None:
    assert recommend(playbook, snapshot(stakeholders_left_90d=1), ["stakeholders_left_90d"]) == [
        "new_champion"
    ]


def test_close_renewal_at_high_risk_calls_for_a_renewal_plan(playbook) -> None:
    body = snapshot(renewal_date="2025-07-01")
    assert recommend(playbook, body, [], tier="critical") == ["renewal_plan"]
    assert recommend(playbook, body, [], tier="low") == []


def test_downgrade_calls_for_a_value_review(playbook) -> None:
    assert recommend(playbook, snapshot(mrr=800.0, mrr_90d_ago=1000.0), ["mrr_pct_change_90d"]) == [
        "value_review"
    ]


def test_actions_follow_driver_rank_and_are_not_repeated(playbook) -> None:
    body = snapshot(nps_last=2, tickets_open=4, renewal_date="2025-07-01")
    found = recommend(playbook, body, ["tickets_open", "nps_category", "tickets_30d"], tier="high")
    assert found == ["support_escalation", "executive_call", "renewal_plan"]


def test_action_says_which_driver_called_for_it(playbook) -> None:
    columns = records_to_columns(
        [AccountSnapshot.model_validate(snapshot(nps_last=2))], dt.date.fromisoformat(AS_OF)
    )
    (action,) = playbook.recommend(
        [[Driver("nps_last_score", 2.0, 0.1, "last NPS answer 2")]], ["high"], columns
    )[0]
    assert action["because"] == "last NPS answer 2" and action["owner"] == "account executive"


def test_rule_without_drivers_says_its_facts(playbook) -> None:
    columns = records_to_columns(
        [AccountSnapshot.model_validate(snapshot(renewal_date="2025-07-01"))],
        dt.date.fromisoformat(AS_OF),
    )
    (action,) = playbook.recommend([[]], ["critical"], columns)[0]
    assert action["because"] == "critical risk; renewal in 30 days"


def test_missing_fact_never_matches(playbook) -> None:
    assert recommend(playbook, snapshot(nps_last=None), ["nps_last_score"]) == []


def test_a_playbook_file_replaces_the_packaged_one(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[actions.call]\ntitle = "Call"\ndetail = "Call them"\nowner = "sales"\n'
        '[[rules]]\naction = "call"\ndrivers = ["seats"]\n'
    )
    custom = Playbook.load(path)
    assert recommend(custom, snapshot(), ["seats"]) == ["call"]
    assert recommend(custom, snapshot(nps_last=1), ["nps_last_score"]) == []


def test_the_setting_installs_the_playbook_in_the_app(make_client, tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[actions.call]\ntitle = "Call"\ndetail = "d"\nowner = "o"\n[[rules]]\naction = "call"\n'
    )
    client = make_client(playbook=path)
    assert [a["id"] for a in client.post("/v1/score", json=snapshot()).json()["actions"]] == [
        "call"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[actions]\n[[rules]]\naction = "nope"\n', "rules[0]: unknown action 'nope'"),
        (
            '[actions.a]\ntitle="t"\ndetail="d"\nowner="o"\n[[rules]]\naction="a"\ndrivers=["bogus"]\n',
            "driver 'bogus' is not a feature",
        ),
        (
            '[actions.a]\ntitle="t"\ndetail="d"\nowner="o"\n[[rules]]\naction="a"\nwhen=[{fact="nps", op="==", value=1}]\n',
            "rules[0].when[0]: unknown fact 'nps'",
        ),
        (
            '[actions.a]\ntitle="t"\ndetail="d"\nowner="o"\n[[rules]]\naction="a"\nwhen=[{fact="lifecycle_stage", op="==", value="young"}]\n',
            "lifecycle_stage is one of early, mid, late",
        ),
        ('[actions.a]\ntitle="t"\n', "actions.a.detail: Field required"),
        ("not toml [", "is not valid TOML"),
    ],
)
def test_invalid_playbooks_are_refused_with_the_reason(tmp_path, text, message) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ChurnError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Playbook.load(path)


def test_missing_playbook_file_is_refused(tmp_path) -> None:
    with pytest.raises(ChurnError, match="does not exist"):
        Playbook.load(tmp_path / "absent.toml")


def test_facts_are_vectorised_over_a_batch(playbook) -> None:
    bodies = [snapshot(f"a{i}", nps_last=n) for i, n in enumerate([1, 10, 3])]
    columns = records_to_columns(
        [AccountSnapshot.model_validate(b) for b in bodies], dt.date.fromisoformat(AS_OF)
    )
    drivers = [[Driver("nps_category", None, 0.1, "r")]] * 3
    found = playbook.recommend(drivers, ["high"] * 3, columns)
    assert [[a["id"] for a in row] for row in found] == [["executive_call"], [], ["executive_call"]]
    assert np.all(columns["nps_last"] == [1, 10, 3])
