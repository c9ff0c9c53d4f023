"""The data contract: read a directory of account tables, coerce types, validate.

A data set is a directory of ``NAME.parquet`` or ``NAME.csv`` files. Only ``accounts``
is required; a missing optional table means its features are absent (NaN), never zero.
Every problem is reported with the table, the column and the first offending rows,
because a data scientist has to find and fix it in their own export.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataError, quoted
from features.timeline import (
    CONTRACT_ALIASES,
    FIRST_DATE,
    LAST_DATE,
    MISSING_DAY,
    NO_DATE,
    date_of,
    to_days,
)

log = logging.getLogger(__name__)

FIRST_ROWS_SHOWN = 5
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
STAKEHOLDER_CHANGES = ("left", "joined")


@dataclass(frozen=True)
class TableSpec:
    """What one table of the contract must and may hold."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    event_date: str | None = None  # the column that says when an event happened


ACCOUNTS = TableSpec(
    name="accounts",
    required=("account_id", "signup_date"),
    optional=(
        "churn_date",
        "plan",
        "contract_type",
        "seats",
        "mrr",
        "renewal_date",
        "churn_reason",
    ),
    dates=("signup_date", "churn_date", "renewal_date"),
    numbers=("seats", "mrr"),
    texts=("account_id", "plan", "contract_type", "churn_reason"),
    non_negative=("seats", "mrr"),
)
SUBSCRIPTIONS = TableSpec(
    name="subscriptions",
    required=("account_id", "date", "mrr", "seats"),
    optional=("plan", "contract_type"),
    dates=("date",),
    numbers=("mrr", "seats"),
    texts=("account_id", "plan", "contract_type"),
    non_negative=("mrr", "seats"),
    event_date="date",
)
USAGE = TableSpec(
    name="usage",
    required=("account_id", "user_id", "date"),
    dates=("date",),
    texts=("account_id", "user_id"),
    event_date="date",
)
NPS = TableSpec(
    name="nps",
    required=("account_id", "date", "score"),
    optional=("touchpoint",),
    dates=("date",),
    numbers=("score",),
    texts=("account_id", "touchpoint"),
    event_date="date",
)
CONTACTS = TableSpec(
    name="contacts",
    required=("account_id", "date"),
    optional=("channel",),
    dates=("date",),
    texts=("account_id", "channel"),
    event_date="date",
)
TICKETS = TableSpec(
    name="tickets",
    required=("account_id", "opened_date"),
    optional=("closed_date", "priority"),
    dates=("opened_date", "closed_date"),
    texts=("account_id", "priority"),
    event_date="opened_date",
)
STAKEHOLDERS = TableSpec(
    name="stakeholders",
    required=("account_id", "date", "change"),
    optional=("role",),
    dates=("date",),
    texts=("account_id", "change", "role"),
    event_date="date",
)

EVENT_TABLES: tuple[TableSpec, ...] = (SUBSCRIPTIONS, USAGE, NPS, CONTACTS, TICKETS, STAKEHOLDERS)
TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (ACCOUNTS, *EVENT_TABLES)}


@dataclass(frozen=True)
class Tables:
    """A validated data set. Dates are ``datetime64`` normalised to the day.

    ``accounts`` keeps every column of the export (extra columns are static
    attributes); event tables keep their contract columns only. ``unknown_accounts``
    counts event rows that named an account missing from ``accounts``: they are
    reported and left out of snapshots, never silently joined away.
    """

    accounts: pd.DataFrame
    subscriptions: pd.DataFrame | None = None
    usage: pd.DataFrame | None = None
    nps: pd.DataFrame | None = None
    contacts: pd.DataFrame | None = None
    tickets: pd.DataFrame | None = None
    stakeholders: pd.DataFrame | None = None
    unknown_accounts: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # (first, last) day of the whole data set when these tables are one account partition
    # of it (features.partitioned): windows and observation dates follow the whole history.
    span: tuple[dt.date, dt.date] | None = None

    def event_tables(self) -> dict[str, pd.DataFrame]:
        """The optional tables that are present, by name."""
        present = {spec.name: getattr(self, spec.name) for spec in EVENT_TABLES}
        return {name: frame for name, frame in present.items() if frame is not None}

    def first_day(self, table: str) -> int | None:
        """The first day a table recorded anything (days since epoch), None if absent/empty."""
        frame = self.accounts if table == "accounts" else getattr(self, table)
        column = TABLES[table].event_date or "signup_date"
        if frame is None or len(frame) == 0:
            return None
        return _min_day(frame[column])

    def data_start(self) -> dt.date:
        """The first day of recorded history: the earliest date in any event table.

        Signup dates of accounts that predate the event history (an initial book of
        customers imported into a new system) do not make that history longer; only
        when no event table exists does the earliest signup date count.
        """
        if self.span is not None:
            return self.span[0]
        firsts = [self.first_day(spec.name) for spec in EVENT_TABLES]
        known = [d for d in firsts if d is not None]
        if not known:
            known = [d for d in (self.first_day("accounts"),) if d is not None]
        return date_of(min(known))

    def data_end(self) -> dt.date:
        """The latest date in any table (the end of the data, unless overridden)."""
        if self.span is not None:
            return self.span[1]
        ends = [
            _max_day(self.accounts[c]) for c in ("signup_date", "churn_date") if c in self.accounts
        ]
        for spec in EVENT_TABLES:
            frame = getattr(self, spec.name)
            if frame is not None and len(frame):
                ends.extend(_max_day(frame[c]) for c in spec.dates if c in frame)
        return date_of(max(e for e in ends if e is not None))


def _min_day(column: pd.Series) -> int | None:
    value = column.min()
    return None if pd.isna(value) else int(to_days(pd.Series([value]))[0])


def _max_day(column: pd.Series) -> int | None:
    value = column.max()
    return None if pd.isna(value) else int(to_days(pd.Series([value]))[0])


# --- reading ----------------------------------------------------------------------


def table_path(directory: Path, name: str) -> Path | None:
    """``NAME.parquet`` or ``NAME.csv`` in the directory; both present is ambiguous."""
    found = [p for p in (directory / f"{name}.parquet", directory / f"{name}.csv") if p.exists()]
    if len(found) > 1:
        raise DataError(f"both {found[0].name} and {found[1].name} exist; keep one", table=name)
    return found[0] if found else None


def read_table(path: Path, spec: TableSpec) -> pd.DataFrame:
    """Read one file; identifiers are read as text so '0042' stays '0042'."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            text_columns = {c: str for c in ("account_id", "user_id")}
            frame = pd.read_csv(path, dtype=text_columns, skipinitialspace=True)
    except Exception as exc:  # pyarrow/pandas raise many types; name the file
        raise DataError(f"cannot read {path.name}: {exc}", table=spec.name) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def load_tables(
    directory: str | Path,
    frames: Mapping[str, pd.DataFrame] | None = None,
) -> Tables:
    """Read and validate a data directory (or in-memory frames by table name)."""
    raw: dict[str, pd.DataFrame] = {}
    if frames is not None:
        raw = {name: frame.copy() for name, frame in frames.items() if frame is not None}
    else:
        directory = Path(directory)
        if not directory.is_dir():
            raise DataError(f"data directory {directory} does not exist")
        for name, spec in TABLES.items():
            path = table_path(directory, name)
            if path is not None:
                raw[name] = read_table(path, spec)
    unexpected = sorted(set(raw) - set(TABLES))
    if unexpected:
        raise DataError(f"unknown tables {unexpected}; the contract has {sorted(TABLES)}")
    if "accounts" not in raw:
        raise DataError(
            "the accounts table (accounts.parquet or accounts.csv) is required", table="accounts"
        )
    return validate_tables(raw)


def validate_tables(raw: Mapping[str, pd.DataFrame]) -> Tables:
    """Coerce and check every table, then cross-check events against accounts."""
    warnings: list[str] = []
    if len(raw["accounts"]) == 0:
        raise DataError(
            "the table has no rows: there is no account to snapshot, train on or score",
            table="accounts",
        )
    accounts = coerce_table(raw["accounts"], ACCOUNTS, warnings)
    check_accounts(accounts)
    events: dict[str, pd.DataFrame] = {}
    for spec in EVENT_TABLES:
        if spec.name not in raw:
            continue
        frame = coerce_table(raw[spec.name], spec, warnings)
        check_events(frame, spec)
        if len(frame) == 0:  # kept: no tickets can be true, but a broken export looks the same
            message = (
                f"table {spec.name} has no rows: every account reads as having no {spec.name} "
                "events, not as unknown (leave the file out if it was not exported)"
            )
            log.warning(message)
            warnings.append(message)
        events[spec.name] = frame
    return known_events(accounts, events, warnings)


def known_events(
    accounts: pd.DataFrame, events: Mapping[str, pd.DataFrame], warnings: Sequence[str] = ()
) -> Tables:
    """Tables from coerced and checked frames. Event rows that name an account missing from
    ``accounts`` are counted and reported, and left out; ``warnings`` (from coercion) are
    kept beside that report."""
    known = pd.Index(accounts["account_id"])
    kept: dict[str, pd.DataFrame] = {}
    unknown: dict[str, int] = {}
    warnings = list(warnings)
    for name, frame in events.items():
        is_known = known.get_indexer(frame["account_id"]) >= 0
        missing = int((~is_known).sum())
        if missing:
            unknown[name] = missing
            examples = (
                frame.loc[~is_known, "account_id"].drop_duplicates().head(FIRST_ROWS_SHOWN).tolist()
            )
            message = (
                f"{name}: {missing} of {len(frame)} rows name accounts not in accounts "
                f"(e.g. {examples}); they are left out of snapshots"
            )
            log.warning(message)
            warnings.append(message)
            frame = frame.loc[is_known].reset_index(drop=True)
        kept[name] = frame
    return Tables(accounts=accounts, unknown_accounts=unknown, warnings=tuple(warnings), **kept)


def coerce_table(
    frame: pd.DataFrame, spec: TableSpec, warnings: list[str] | None = None
) -> pd.DataFrame:
    """Check columns exist and give each its type; unparseable values are errors, not NaN.

    Dates must lie in FIRST_DATE..LAST_DATE; 9999-12-31 (``NO_DATE``, the "never" of many
    exports) is read as no date, and ``warnings`` gets how many rows said it. Numbers must be
    finite, in the contract's columns and in the extra (attribute) columns of ``accounts``.
    """
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing required column(s) {missing}; found {list(frame.columns)}",
            table=spec.name,
            column=missing[0],
        )
    keep = (
        list(frame.columns)
        if spec is ACCOUNTS
        else [c for c in (*spec.required, *spec.optional) if c in frame]
    )
    out = frame[keep].copy()
    for column in spec.texts:
        if column in out:
            out[column] = _text(out[column])
    for column in spec.dates:
        if column in out:
            out[column] = _dates(out[column], spec.name, column, warnings)
    for column in spec.numbers:
        if column in out:
            out[column] = _numbers(out[column], spec.name, column)
    for column in out.columns:
        if column not in spec.texts and _is_number(out[column]):
            _check_rows(out, _infinite(out[column]), spec.name, column, "is not a finite number")
    for column in ("account_id", *(c for c in ("user_id",) if c in spec.required)):
        _require_values(out, spec.name, column)
    for column in spec.required:
        if column in spec.dates:
            _require_values(out, spec.name, column)
    for column in spec.non_negative:
        if column in out:
            _check_rows(out, out[column] < 0, spec.name, column, "must not be negative")
    return out


def _text(column: pd.Series) -> pd.Series:
    """Strip whitespace; empty strings are missing. Numbers become their text."""
    if pd.api.types.is_float_dtype(column) and column.dropna().mod(1).eq(0).all():
        column = column.astype("Int64")
    text = column.astype("string").str.strip()
    return text.mask(text == "")


def _dates(
    column: pd.Series, table: str, name: str, warnings: list[str] | None = None
) -> pd.Series:
    if isinstance(column.dtype, pd.ArrowDtype):  # e.g. Parquet date32: read as its ISO text
        column = column.astype(object)
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    else:
        source = column.astype("string").str.strip().replace("", pd.NA)
        parsed = pd.to_datetime(source, format="ISO8601", errors="coerce", utc=True)
        bad = parsed.isna() & source.notna()
        if bad.any():
            _raise_rows(column, bad, table, name, "is not an ISO date (YYYY-MM-DD)")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    day = parsed.to_numpy().astype("datetime64[D]")  # its own unit: no overflow on the way
    never = day == np.datetime64(NO_DATE)
    if never.any():
        message = (
            f"{table}.{name}: {int(never.sum())} row(s) dated {NO_DATE} read as no date"
            f" (first: row {int(np.flatnonzero(never)[0]) + 1})"
        )
        log.warning(message)
        if warnings is not None:
            warnings.append(message)
        parsed = parsed.mask(pd.Series(never, index=parsed.index))
    outside = ~np.isnat(day) & ~never
    outside &= (day < np.datetime64(FIRST_DATE)) | (day > np.datetime64(LAST_DATE))
    if outside.any():
        rule = f"is outside the supported dates {FIRST_DATE} to {LAST_DATE}"
        _raise_rows(column, pd.Series(outside, index=column.index), table, name, rule)
    return parsed.dt.normalize().astype("datetime64[s]")


def _numbers(column: pd.Series, table: str, name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype(np.float64)
    source = column.astype("string").str.strip().replace("", pd.NA)
    parsed = pd.to_numeric(source, errors="coerce")
    bad = parsed.isna() & source.notna()
    if bad.any():
        _raise_rows(column, bad, table, name, "is not a number")
    return parsed.astype(np.float64)


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _infinite(column: pd.Series) -> pd.Series:
    values = column.to_numpy(np.float64, na_value=np.nan)
    return pd.Series(np.isinf(values), index=column.index)


def _require_values(frame: pd.DataFrame, table: str, column: str) -> None:
    _check_rows(frame, frame[column].isna(), table, column, "must not be empty")


def _check_rows(frame: pd.DataFrame, bad: pd.Series, table: str, column: str, rule: str) -> None:
    bad = bad.fillna(False).astype(bool)
    if bad.any():
        _raise_rows(frame[column], bad, table, column, rule)


def _raise_rows(values: pd.Series, bad: pd.Series, table: str, column: str, rule: str) -> None:
    positions = np.flatnonzero(bad.to_numpy())
    shown = [f"row {p + 1}: {_shown(values.iloc[p])}" for p in positions[:FIRST_ROWS_SHOWN]]
    raise DataError(
        f"{column} {rule} in {len(positions)} row(s); first: {'; '.join(shown)}",
        table=table,
        column=column,
        rows=[int(p) + 1 for p in positions[:FIRST_ROWS_SHOWN]],
    )


def _shown(value: object) -> str:
    """A cell as the export wrote it (``11.0``, not ``np.float64(11.0)``), cut short."""
    return quoted(value.item() if isinstance(value, np.generic) else value)


def check_accounts(accounts: pd.DataFrame) -> None:
    """Rules that span columns of the accounts table."""
    duplicated = accounts["account_id"].duplicated(keep=False)
    _check_rows(accounts, duplicated, "accounts", "account_id", "is duplicated")
    if "churn_date" in accounts:
        before = accounts["churn_date"] < accounts["signup_date"]
        _check_rows(accounts, before, "accounts", "churn_date", "is before signup_date")
    if "contract_type" in accounts:
        check_contract_types(accounts, "accounts")


def check_contract_types(frame: pd.DataFrame, table: str) -> None:
    """Contract labels must be readable; they are normalised to our vocabulary in place."""
    keys = _lower(frame["contract_type"]).str.replace("_", " ").str.replace(r"\s+", " ", regex=True)
    unknown = keys.notna() & ~keys.isin(list(CONTRACT_ALIASES))
    _check_rows(
        frame,
        unknown,
        table,
        "contract_type",
        "is not a known contract type (monthly, annual, ...)",
    )
    frame["contract_type"] = _as_text(keys.map(CONTRACT_ALIASES))


def check_events(frame: pd.DataFrame, spec: TableSpec) -> None:
    """Per-table value rules."""
    if spec is NPS:
        outside = (frame["score"] < 0) | (frame["score"] > 10)
        _check_rows(frame, outside, spec.name, "score", "is outside 0-10")
        if "touchpoint" in frame:
            frame["touchpoint"] = _as_text(_lower(frame["touchpoint"]))
    elif spec is TICKETS:
        if "closed_date" in frame:
            early = frame["closed_date"] < frame["opened_date"]
            _check_rows(frame, early, spec.name, "closed_date", "is before opened_date")
        if "priority" in frame:
            frame["priority"] = _as_text(_lower(frame["priority"]))
            unknown = frame["priority"].notna() & ~frame["priority"].isin(TICKET_PRIORITIES)
            _check_rows(frame, unknown, spec.name, "priority", f"is not one of {TICKET_PRIORITIES}")
    elif spec is STAKEHOLDERS:
        frame["change"] = _as_text(_lower(frame["change"]))
        unknown = ~frame["change"].isin(STAKEHOLDER_CHANGES)
        _check_rows(frame, unknown, spec.name, "change", f"is not one of {STAKEHOLDER_CHANGES}")
    elif spec is SUBSCRIPTIONS and "contract_type" in frame:
        check_contract_types(frame, spec.name)


def _lower(column: pd.Series) -> pd.Series:
    return column.astype("string").str.strip().str.lower()


def _as_text(column: pd.Series) -> pd.Series:
    """Every text column of a loaded table has pandas' ``string`` dtype (missing = NA)."""
    return column.astype("string")


def account_days(accounts: pd.DataFrame, column: str) -> np.ndarray:
    """A date column of accounts as int days (``MISSING_DAY`` where empty or absent)."""
    if column not in accounts:
        return np.full(len(accounts), MISSING_DAY, dtype=np.int64)
    return to_days(accounts[column])
