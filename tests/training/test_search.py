"""Capacity chosen on held-out rows: deeper trees where churn lives in interactions, shallow
ones where it is additive, fixed values kept, the budget kept, laggards pruned."""

from __future__ import annotations

import numpy as np

from features.derive import FeatureSpec
from training.fit import Part, choose_model_form
from training.params import TrainParams, load_params
from training.search import CurvePruning, Evaluation, search

FEATURES = 6


def generated(
    interactions: bool, seed: int = 0, rows: int = 5000
) -> tuple[FeatureSpec, Part, Part]:
    """Generated rows (not tuned to): churn from a product of conditions, or from a sum."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    if interactions:  # high usage only matters on one plan, and only with support calls
        logit = 3.0 * (x[:, 0] > 0) * (x[:, 1] > 0) * (x[:, 2] > -0.5) - 2.5 * (
            (x[:, 3] > 0) ^ (x[:, 4] > 0)
        )
    else:
        logit = 0.9 * x[:, 0] - 0.7 * x[:, 1] + 0.5 * x[:, 2] - 0.4 * x[:, 3]
    label = (rng.random(rows) < 1 / (1 + np.exp(-(logit - 1.0)))).astype(np.int8)
    spec = FeatureSpec(indicators=(), numeric_attributes=tuple(f"x{i}" for i in range(FEATURES)))
    cut = rows * 3 // 4
    return spec, Part(x[:cut], label[:cut]), Part(x[cut:], label[cut:])


def chosen(params: TrainParams, interactions: bool, rows: int = 5000):
    spec, train, validation = generated(interactions, rows=rows)
    form, _, _ = choose_model_form(spec, train, validation, params)
    return form


def test_deeper_trees_are_chosen_when_churn_lives_in_interactions() -> None:
    form = chosen(TrainParams(model_form="trees", search_candidates=6), interactions=True)
    assert form.params.num_leaves > TrainParams().num_leaves
    start = form.search.candidates[0].evaluation.loss
    assert form.search.best.loss < start


def test_shallow_trees_are_kept_when_churn_is_additive() -> None:
    form = chosen(TrainParams(model_form="trees", search_candidates=6), interactions=False)
    assert form.params.num_leaves <= TrainParams().num_leaves


def test_a_fixed_param_is_respected_and_left_out_of_the_search() -> None:
    params = load_params(None, ["num_leaves=6", "model_form=trees", "search_candidates=3"])
    form = chosen(params, interactions=True, rows=2000)
    assert form.params.num_leaves == 6
    assert {c.params.num_leaves for c in form.search.candidates} == {6}
    assert "num_leaves" not in form.search.searched


def test_the_budget_bounds_the_candidates_and_zero_keeps_the_given_capacity() -> None:
    form = chosen(TrainParams(search_candidates=3), interactions=True, rows=2000)
    assert len(form.search.candidates) == 3
    fixed = chosen(TrainParams(search_candidates=0), interactions=True, rows=2000)
    assert [c.params.model_form for c in fixed.search.candidates] == ["trees", "linear+trees"]
    assert (fixed.params.num_leaves, fixed.params.min_data_in_leaf) == (4, 300)


def test_a_candidate_far_behind_the_incumbent_is_pruned_a_slower_learner_is_not() -> None:
    curve = tuple(0.40 + 0.29 * np.exp(-np.arange(300) / 40))  # the incumbent's learning curve
    pruning = CurvePruning(Evaluation(loss=min(curve), trees=300, curve=curve))
    assert not pruning(10, 0.9)  # warm-up: too early to judge
    assert not pruning(60, 0.40 + 1.5 * (curve[60] - 0.40))  # behind, but learning
    assert pruning(60, 0.40 + 4 * (curve[60] - 0.40))
    assert pruning(250, 0.41)  # the incumbent was at its best long ago


def test_every_candidate_is_tabled_with_its_loss_and_the_chosen_one_marked() -> None:
    calls: list[int] = []

    def objective(params: TrainParams, pruning) -> Evaluation:
        calls.append(params.num_leaves)
        return Evaluation(loss=1.0 / params.num_leaves, trees=10)

    result = search(objective, TrainParams(search_candidates=5), ["trees"], rows=4000)
    table = result.table()
    assert list(table["num_leaves"]) == calls == [4, 8, 16, 32, 64]
    assert table.loc[table["chosen"], "num_leaves"].tolist() == [64]
    assert result.params.num_leaves == 64
