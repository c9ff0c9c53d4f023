"""The report's charts: matplotlib figures rendered to PNG bytes (embedded in the HTML,
also written beside it). Figures are built with ``matplotlib.figure.Figure`` directly,
never pyplot, so no global state is left behind between charts.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

DPI = 110
COLORS = {
    "model": "#1f5fa8",
    "baseline": "#e08a1e",
    "naive": "#8a8a8a",
    "realized": "#2b9348",
    "churned": "#c0392b",
    "retained": "#1f5fa8",
}
MODELS = {"": "LightGBM", "baseline_": "logistic baseline", "naive_": "naive rule"}


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _axes(rows: int = 1, columns: int = 1, size: tuple[float, float] = (9, 4)):
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.grid(alpha=0.3)
    return figure, axes.flat


def _dates(*axes) -> None:
    """Date ticks a reader can scan: as few as fit, the year written once."""
    for axis in axes:
        locator = AutoDateLocator(maxticks=8)
        axis.xaxis.set_major_locator(locator)
        axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def monthly_churn(monthly: pd.DataFrame) -> Figure:
    """Monthly churn rate against 1 - retention and gross MRR churn; new vs lost customers."""
    figure, (rates, counts) = _axes(1, 2, (11, 4))
    month = monthly["month"]
    rates.plot(month, monthly["churn_rate"] * 100, label="churn rate (lost / customers at start)")
    rates.plot(month, monthly["gross_mrr_churn_rate"] * 100, label="gross MRR churn rate")
    rates.plot(
        month,
        (1 - monthly["retention_rate"]) * 100,
        linestyle="--",
        label="1 - retention rate ((end - new) / start)",
    )
    rates.set_ylabel("% per month")
    rates.set_title("Monthly churn")
    rates.legend(fontsize=8)
    width = 20
    counts.bar(month, monthly["new"], width=width, color=COLORS["realized"], label="new")
    counts.bar(month, -monthly["lost"], width=width, color=COLORS["churned"], label="lost")
    counts.axhline(0, color="black", linewidth=0.8)
    counts.set_title("Customers gained and lost per month")
    counts.legend(fontsize=8)
    _dates(rates, counts)
    return figure


def cohort_heatmap(cohorts: pd.DataFrame) -> Figure:
    """Share of each signup month still a customer k months later."""
    shares = cohorts.drop(columns="accounts")
    figure = Figure(figsize=(10, max(3.0, 0.2 * len(shares) + 1.2)), layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(
        shares.to_numpy(dtype=float) * 100, aspect="auto", cmap="viridis", vmin=0, vmax=100
    )
    axis.set_yticks(range(len(shares)), [c.strftime("%Y-%m") for c in shares.index], fontsize=7)
    axis.set_xlabel("months since signup")
    axis.set_title("Cohort retention (% of the signup month still a customer)")
    figure.colorbar(image, ax=axis, label="%")
    return figure


def _segment_bars(
    table: pd.DataFrame, column: str, xlabel: str, notes: pd.Series | None = None
) -> Figure:
    """One horizontal bar panel per segment of ``table`` (its ``segment``/``value`` rows)."""
    names = list(dict.fromkeys(table["segment"]))
    figure, axes = _axes(1, len(names), (3.2 * len(names), 3.5))
    for axis, name in zip(axes, names, strict=True):
        rows = table["segment"] == name
        values = table.loc[rows, column]
        axis.barh(table.loc[rows, "value"], values, color=COLORS["model"])
        if notes is not None:
            for y, (value, note) in enumerate(zip(values, notes[rows], strict=True)):
                axis.annotate(f" {note}", (value, y), va="center", fontsize=7, color="#333333")
            axis.margins(x=0.35)
        axis.invert_yaxis()
        axis.set_title(f"by {name}", fontsize=10)
        axis.set_xlabel(xlabel)
    return figure


def segment_churn(segments: pd.DataFrame) -> Figure:
    """Monthly churn rate per value of each segment (bars), annualized in the labels."""
    yearly = segments["annualized_churn_rate"].map("{:.0%}/yr".format)
    return _segment_bars(
        segments.assign(percent=segments["churn_rate"] * 100), "percent", "% lost per month", yearly
    )


def indicators_before_churn(indicators: pd.DataFrame, labels: dict[str, str]) -> Figure:
    """Median of each indicator over the months before churn: churned vs retained."""
    figure, axes = _axes(1, len(labels), (3.2 * len(labels), 3.4))
    for axis, (name, label) in zip(axes, labels.items(), strict=True):
        part = indicators[indicators["indicator"] == name]
        for group in ("churned", "retained"):
            axis.plot(
                part["months_before"],
                part[f"{group}_median"],
                "o-",
                color=COLORS[group],
                label=group if group == "churned" else "retained, same tenure",
            )
        axis.invert_xaxis()
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("months before churn")
    axes[0].legend(fontsize=8)
    return figure


def reasons(by_reason: pd.DataFrame) -> Figure:
    """Accounts and MRR lost by stated reason."""
    figure, (accounts, mrr) = _axes(1, 2, (10, max(2.5, 0.35 * len(by_reason) + 1.2)))
    accounts.barh(by_reason["churn_reason"], by_reason["accounts"], color=COLORS["churned"])
    accounts.set_title("Accounts lost by reason")
    mrr.barh(by_reason["churn_reason"], by_reason["mrr_lost"], color=COLORS["baseline"])
    mrr.set_title("MRR lost by reason")
    for axis in (accounts, mrr):
        axis.invert_yaxis()
    mrr.set_yticklabels([])
    return figure


def expected_churners(expected: pd.DataFrame) -> Figure:
    """Expected churners over the horizon per segment value."""
    return _segment_bars(expected, "expected_churners", "expected churners")


def backtest_metrics(backtest: pd.DataFrame) -> Figure:
    """ROC-AUC and top-decile lift per origin for the model, its baseline and the naive
    rule; hollow markers where too few churners made the origin unreliable."""
    figure, (auc, lift) = _axes(1, 2, (11, 4))
    origin = pd.to_datetime(backtest["origin"])
    thin = ~backtest["enough_churners"].astype(bool).to_numpy()
    for prefix, label in MODELS.items():
        color = COLORS[prefix.rstrip("_") or "model"]
        for axis, metric in ((auc, "roc_auc"), (lift, "lift_top10")):
            values = backtest[f"{prefix}{metric}"]
            axis.plot(origin, values, "-", color=color, label=label)
            axis.plot(origin[~thin], values[~thin], "o", color=color)
            axis.plot(origin[thin], values[thin], "o", color=color, fillstyle="none")
    auc.axhline(0.5, linestyle=":", color="grey")
    lift.axhline(1.0, linestyle=":", color="grey")
    auc.set_title("ROC-AUC per origin (realized)")
    lift.set_title("Lift in the riskiest 10% per origin")
    auc.legend(fontsize=8)
    _dates(auc, lift)
    return figure


def backtest_churners(backtest: pd.DataFrame) -> Figure:
    """Predicted against realized churners per origin; revenue at risk against revenue lost."""
    figure, (churners, revenue) = _axes(1, 2, (11, 4))
    origin = pd.to_datetime(backtest["origin"])
    churners.plot(
        origin, backtest["realized_churners"], "s-", color=COLORS["realized"], label="realized"
    )
    revenue.plot(
        origin, backtest["revenue_lost"], "s-", color=COLORS["realized"], label="revenue lost"
    )
    for prefix, label in MODELS.items():
        color = COLORS[prefix.rstrip("_") or "model"]
        churners.plot(
            origin, backtest[f"{prefix}predicted_churners"], "o--", color=color, label=label
        )
        revenue.plot(origin, backtest[f"{prefix}revenue_at_risk"], "o--", color=color, label=label)
    churners.set_title("Churners over the horizon: predicted vs realized")
    revenue.set_title("Annual revenue at risk vs revenue lost")
    for axis in (churners, revenue):
        axis.legend(fontsize=8)
    _dates(churners, revenue)
    return figure


def outcome_calibration(tiers: pd.DataFrame, deciles: pd.DataFrame, version: str) -> Figure:
    """Realized against predicted churn rate per decile (every version) and per risk tier
    (the given version)."""
    figure, (by_decile, by_tier) = _axes(1, 2, (11, 4))
    for (name, version), part in deciles.groupby(["model_name", "model_version"], sort=True):
        by_decile.plot(
            part["predicted_rate"], part["realized_rate"], "o-", label=f"{name} {version}"
        )
    top = float(np.nanmax([deciles["predicted_rate"].max(), deciles["realized_rate"].max(), 0.05]))
    by_decile.plot([0, top], [0, top], ":", color="grey", label="perfect")
    by_decile.set_title("Calibration per decile of predicted risk")
    by_decile.set_xlabel("mean predicted probability")
    by_decile.set_ylabel("realized churn rate")
    by_decile.legend(fontsize=8)
    latest = tiers[tiers["model_version"] == version]
    x = np.arange(len(latest))
    by_tier.bar(x - 0.2, latest["predicted_rate"], 0.4, color=COLORS["model"], label="predicted")
    by_tier.bar(x + 0.2, latest["realized_rate"], 0.4, color=COLORS["realized"], label="realized")
    by_tier.set_xticks(x, latest["risk_tier"])
    by_tier.set_title(f"Per risk tier (version {version})")
    by_tier.legend(fontsize=8)
    return figure
