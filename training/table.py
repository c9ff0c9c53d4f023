"""Table mode: one labelled export (a row per customer, a churn flag) -> snapshot rows.

Many teams start from a CRM or billing export like IBM's Telco table rather than event
history. A mapping says which columns mean what in the snapshot vocabulary
(``tenure`` -> ``tenure_months``, ``Contract`` -> ``contract_type``, ``MonthlyCharges`` ->
``mrr``); every other column becomes a static attribute, numeric or categorical. Dirty
values a real export has — numbers stored as text with blanks, ``Yes``/``No``, mixed
case, stray whitespace — are repaired and reported, not fatal. What cannot be repaired
safely (an ambiguous label, duplicate ids, a mapping naming a missing column) is an
error that names the column and rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.errors import DataError
from features.schema import (
    AMOUNT_FIELDS,
    COUNT_FIELDS,
    DATE_FIELDS,
    MAU_COLUMNS,
    TEXT_FIELDS,
    attribute_column,
)
from features.timeline import CONTRACT_ALIASES

log = logging.getLogger(__name__)

MAPPABLE_FIELDS = (
    tuple(
        f
        for f in (*DATE_FIELDS, *TEXT_FIELDS, *COUNT_FIELDS, *AMOUNT_FIELDS)
        if f != "as_of" and f not in MAU_COLUMNS
    )
    + MAU_COLUMNS
)
POSITIVE_WORDS = (
    "yes",
    "y",
    "true",
    "t",
    "1",
    "churned",
    "churn",
    "left",
    "lost",
    "cancelled",
    "canceled",
)
NEGATIVE_WORDS = ("no", "n", "false", "f", "0", "active", "retained", "stayed", "current")
NUMERIC_SHARE = 0.95  # a column whose non-blank values are at least this share numbers is numeric
KINDS = ("numeric", "categorical")
FIRST_ROWS_SHOWN = 5


@dataclass(frozen=True)
class TableMapping:
    """How the export's columns map onto snapshot fields and attributes."""

    fields: dict[str, str] = field(default_factory=dict)  # source column -> snapshot field
    kinds: dict[str, str] = field(default_factory=dict)  # source column -> numeric | categorical
    id_column: str | None = None
    label: str | None = None
    positive: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fields": dict(self.fields),
            "kinds": dict(self.kinds),
            "id_column": self.id_column,
            "label": self.label,
            "positive": self.positive,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TableMapping:
        return cls(
            fields=dict(values.get("fields", {})),
            kinds=dict(values.get("kinds", {})),
            id_column=values.get("id_column"),
            label=values.get("label"),
            positive=values.get("positive"),
        )


@dataclass
class CleanTable:
    """Snapshot rows built from the export, labels if it had them, and what was repaired."""

    snapshots: pd.DataFrame
    label: np.ndarray | None
    mapping: TableMapping
    kinds: dict[str, str]  # attribute -> numeric | categorical, as detected/overridden
    report: list[str]


# --- mapping files ----------------------------------------------------------------------------


def read_mapping(
    file: Path | None = None, pairs: Sequence[str] = ()
) -> tuple[dict[str, str], dict[str, str]]:
    """(fields, kinds) from a YAML/TOML file and ``source=target`` pairs.

    The file holds a ``mapping`` (or ``fields``) table of source -> field and an optional
    ``types`` (or ``kinds``) table of source -> numeric | categorical.
    """
    fields: dict[str, str] = {}
    kinds: dict[str, str] = {}
    if file is not None:
        document = _read_document(Path(file))
        fields.update(
            {
                str(k): str(v)
                for k, v in (document.get("mapping") or document.get("fields") or {}).items()
            }
        )
        kinds.update(
            {
                str(k): str(v)
                for k, v in (document.get("types") or document.get("kinds") or {}).items()
            }
        )
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise DataError(f"--map {pair!r} is not source=target")
        fields[source.strip()] = target.strip()
    for source, target in fields.items():
        if target not in MAPPABLE_FIELDS:
            raise DataError(
                f"mapping {source!r} -> {target!r}: {target!r} is not a snapshot field; "
                f"use one of {', '.join(MAPPABLE_FIELDS)} (other columns become attributes on their own)"
            )
    for source, kind in kinds.items():
        if kind not in KINDS:
            raise DataError(f"type of {source!r} is {kind!r}; use one of {KINDS}")
    return fields, kinds


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"cannot read mapping file {path}: {exc}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            document = yaml.safe_load(text) or {}
        else:
            document = tomllib.loads(text)
    except Exception as exc:
        raise DataError(
            f"mapping file {path.name} is not valid {path.suffix.lstrip('.').upper()}: {exc}"
        ) from exc
    if not isinstance(document, dict):
        raise DataError(f"mapping file {path.name} must hold a table of column -> field")
    return document


# --- reading and cleaning ---------------------------------------------------------------------


def read_export(path: str | Path) -> pd.DataFrame:
    """Every cell as stripped text (blank = missing): types are decided afterwards, per column."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"table {path} does not exist")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
            frame = frame.astype("string")
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:
        raise DataError(f"cannot read {path.name}: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.columns.duplicated().any():
        duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DataError(f"{path.name}: duplicate column names {duplicated}")
    return frame.apply(_blank_to_missing)


def _blank_to_missing(column: pd.Series) -> pd.Series:
    text = column.astype("string").str.strip()
    return text.mask(text == "")


def clean_table(
    raw: pd.DataFrame,
    mapping: TableMapping,
    as_of: dt.date,
    require_label: bool = True,
    kinds: Mapping[str, str] | None = None,
    exclude_columns: Sequence[str] = (),
) -> CleanTable:
    """Export -> snapshot frame (+ labels). ``kinds`` freezes attribute types (scoring)."""
    report: list[str] = []
    _check_columns(raw, mapping, require_label)
    ids = _account_ids(raw, mapping.id_column)
    label = (
        _labels(raw[mapping.label], mapping.label, mapping.positive, report)
        if require_label
        else None
    )
    snapshots = pd.DataFrame({"account_id": ids, "as_of": pd.Timestamp(as_of)})
    for source, target in mapping.fields.items():
        if source in raw:
            snapshots[target] = _field(raw[source], source, target, report)
    used = {mapping.id_column, mapping.label, *mapping.fields, *exclude_columns}
    detected: dict[str, str] = {}
    for column in raw.columns:
        if column in used:
            continue
        kind = (kinds or {}).get(column) or mapping.kinds.get(column) or _detect_kind(raw[column])
        detected[column] = kind
        snapshots[attribute_column(column)] = _attribute(raw[column], column, kind, report)
    for line in report:
        log.warning(line)
    return CleanTable(snapshots, label, mapping, detected, report)


def _check_columns(raw: pd.DataFrame, mapping: TableMapping, require_label: bool) -> None:
    named = {"--label": mapping.label if require_label else None, "--id": mapping.id_column}
    named.update({f"mapping of {source!r}": source for source in mapping.fields})
    for what, column in named.items():
        if column is not None and column not in raw.columns:
            raise DataError(
                f"{what}: column {column!r} does not exist; the table has {list(raw.columns)}"
            )
    if require_label and mapping.label is None:
        raise DataError("give --label COLUMN: the column that says whether the customer churned")
    targets = pd.Series(list(mapping.fields.values()))
    if targets.duplicated().any():
        raise DataError(f"several columns map onto {sorted(set(targets[targets.duplicated()]))}")


def _account_ids(raw: pd.DataFrame, id_column: str | None) -> np.ndarray:
    if id_column is None:
        return np.array([f"row{i + 1}" for i in range(len(raw))], dtype=object)
    ids = raw[id_column]
    empty = ids.isna().to_numpy()
    if empty.any():
        rows = (np.flatnonzero(empty) + 1)[:FIRST_ROWS_SHOWN].tolist()
        raise DataError(
            f"{id_column} is empty in {int(empty.sum())} row(s); first rows {rows}",
            column=id_column,
            rows=rows,
        )
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        rows = (np.flatnonzero(duplicated) + 1)[:FIRST_ROWS_SHOWN].tolist()
        examples = ids[duplicated].drop_duplicates().head(FIRST_ROWS_SHOWN).tolist()
        raise DataError(
            f"{id_column} is duplicated in {int(duplicated.sum())} rows (e.g. {examples}); first rows {rows}",
            column=id_column,
            rows=rows,
        )
    return ids.to_numpy(dtype=object)


def _labels(column: pd.Series, name: str, positive: str | None, report: list[str]) -> np.ndarray:
    """Two values -> 0/1. The positive one is --positive, or recognised (Yes, True, 1, churned)."""
    missing = column.isna().to_numpy()
    if missing.any():
        rows = (np.flatnonzero(missing) + 1)[:FIRST_ROWS_SHOWN].tolist()
        raise DataError(
            f"the label is empty in {int(missing.sum())} row(s); first rows {rows}",
            column=name,
            rows=rows,
        )
    folded = column.str.casefold()
    values = sorted(folded.unique())
    if len(values) != 2:
        counts = column.value_counts().head(10).to_dict()
        raise DataError(
            f"the label must have exactly two values, found {len(values)}: {counts}", column=name
        )
    if positive is not None:
        chosen = positive.strip().casefold()
        if chosen not in values:
            raise DataError(
                f"--positive {positive!r} is not a value of the label (values: {values})",
                column=name,
            )
    else:
        recognised = [v for v in values if v in POSITIVE_WORDS]
        negatives = [v for v in values if v in NEGATIVE_WORDS]
        if len(recognised) != 1 or len(negatives) != 1:
            raise DataError(
                f"cannot tell which label value means churned among {values}: give --positive VALUE",
                column=name,
            )
        chosen = recognised[0]
    spellings = column.unique().tolist()
    if len(spellings) > 2:
        report.append(f"{name}: label spellings {sorted(spellings)} read case-insensitively")
    return (folded == chosen).to_numpy(dtype=np.int8)


def _numbers(column: pd.Series) -> pd.Series:
    cleaned = column.str.replace(r"[,$€£%\s]", "", regex=True)
    return pd.to_numeric(cleaned, errors="coerce")


def _detect_kind(column: pd.Series) -> str:
    present = column.dropna()
    if len(present) == 0:
        return "categorical"
    share = _numbers(present).notna().mean()
    return "numeric" if share >= NUMERIC_SHARE else "categorical"


def _attribute(column: pd.Series, name: str, kind: str, report: list[str]) -> pd.Series:
    if kind == "numeric":
        numbers = _numbers(column)
        bad = numbers.isna() & column.notna()
        blank = int(column.isna().sum())
        if blank:
            report.append(f"{name}: {blank} blank value(s) treated as missing")
        if bad.any():
            examples = column[bad].drop_duplicates().head(FIRST_ROWS_SHOWN).tolist()
            report.append(
                f"{name}: {int(bad.sum())} non-numeric value(s) treated as missing, e.g. {examples}"
            )
        return numbers.astype(np.float64)
    return _categories(column, name, report)


def _categories(column: pd.Series, name: str, report: list[str]) -> pd.Series:
    """Same value in another case or spacing -> the most common spelling."""
    spaced = column.str.replace(r"\s+", " ", regex=True)
    folded = spaced.str.casefold()
    counts = spaced.value_counts()
    canonical = {}
    for spelling in counts.index:  # most common spelling first
        canonical.setdefault(spelling.casefold(), spelling)
    merged = folded.map(canonical)
    if spaced.nunique() > merged.nunique():
        report.append(
            f"{name}: {spaced.nunique() - merged.nunique()} value(s) differing only in case/spacing merged"
        )
    return merged.astype("string")


def _field(column: pd.Series, source: str, target: str, report: list[str]) -> pd.Series:
    """A mapped column, coerced to its snapshot field's type (dirty values reported)."""
    if target in DATE_FIELDS:
        parsed = pd.to_datetime(column, format="ISO8601", errors="coerce", utc=True).dt.tz_localize(
            None
        )
        bad = parsed.isna() & column.notna()
        if bad.any():
            report.append(f"{source}: {int(bad.sum())} unparseable date(s) treated as missing")
        return parsed.dt.normalize()
    if target == "contract_type":
        key = column.str.casefold().str.replace("_", " ").str.replace(r"\s+", " ", regex=True)
        mapped = key.map(CONTRACT_ALIASES)
        unknown = mapped.isna() & column.notna()
        if unknown.any():
            report.append(
                f"{source}: contract labels {sorted(column[unknown].unique().tolist())[:5]} not recognised, treated as missing"
            )
        return mapped.astype("string")
    if target in TEXT_FIELDS:
        return _categories(column, source, report)
    numbers = _numbers(column)
    bad = numbers.isna() & column.notna()
    if bad.any():
        report.append(f"{source}: {int(bad.sum())} non-numeric value(s) treated as missing")
    negative = numbers < 0
    if negative.any():
        report.append(f"{source}: {int(negative.sum())} negative value(s) treated as missing")
        numbers = numbers.mask(negative)
    return numbers.astype(np.float64)


# --- from a clean table to the training pipeline's splits --------------------------------------

HOLDOUT_SHARES = {"validation": 0.10, "calibration": 0.10, "test": 0.20}
CV_FOLDS = 5


def stratified_split(label: np.ndarray, seed: int = 0) -> np.ndarray:
    """Split names per row: stratified, since a flat export has no time to split on."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(label))
    split = np.full(len(label), "train", dtype=object)
    remaining = rows
    share_left = 1.0
    for name, share in HOLDOUT_SHARES.items():
        take = share / share_left
        remaining, chosen = train_test_split(
            remaining, test_size=take, stratify=label[remaining], random_state=seed
        )
        split[chosen] = name
        share_left -= share
    return split


def prepare_table(clean: CleanTable, source: str, seed: int = 0):
    """The ``Prepared`` splits of table mode, tagged as a stratified hold-out (not temporal)."""
    from training.dataset import LABEL, SPLITS
    from training.prepare import Prepared

    if clean.label is None:
        raise DataError("table mode training needs a label column")
    frame = clean.snapshots.copy()
    frame[LABEL] = clean.label
    frame["split"] = stratified_split(clean.label, seed)
    frames = {split: frame.loc[frame["split"] == split].reset_index(drop=True) for split in SPLITS}
    grouped = frame.groupby("split")
    summary = pd.DataFrame(
        {
            "rows": grouped.size(),
            "churned": grouped[LABEL].sum(),
            "base_rate": grouped[LABEL].mean().round(4),
        }
    ).reindex(list(SPLITS))
    for split in SPLITS:
        if int(summary.loc[split, "churned"]) < 5 or int(summary.loc[split, "churned"]) == int(
            summary.loc[split, "rows"]
        ):
            raise DataError(
                f"the {split} split has {int(summary.loc[split, 'rows'])} rows with "
                f"{int(summary.loc[split, 'churned'])} churned; the table needs more rows of both classes"
            )
    mapping = {**clean.mapping.as_dict(), "attribute_kinds": clean.kinds}
    metadata = {
        "mode": "table",
        "horizon_days": None,
        "mapping": mapping,
        "source": source,
        "as_of": str(frame["as_of"].iloc[0].date()),
        "split": "stratified hold-out "
        + ", ".join(f"{k} {v:.0%}" for k, v in HOLDOUT_SHARES.items()),
        "cleaning_report": clean.report,
    }
    tags = {
        "mode": "table",
        "split": "stratified",
        "split.note": "no event history: stratified hold-out (not temporal) plus 5-fold cross-validation",
        "source": source,
        **{f"rows.{split}": str(int(summary.loc[split, "rows"])) for split in SPLITS},
    }
    if clean.report:
        tags["cleaning"] = "; ".join(clean.report)[:4000]
    params = {
        "mode": "table",
        "label": clean.mapping.label,
        "positive": clean.mapping.positive or "auto",
        "id_column": clean.mapping.id_column or "row number",
        **{f"map.{source}": target for source, target in clean.mapping.fields.items()},
        "split_seed": seed,
        "cv_folds": CV_FOLDS,
    }
    return Prepared(
        frames=frames,
        summary=summary,
        metadata=metadata,
        tags=tags,
        params=params,
        cv_folds=CV_FOLDS,
    )
