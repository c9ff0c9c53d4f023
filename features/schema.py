"""AccountSnapshot: one account's leading indicators at ``as_of``.

The same shape is produced by stage 1 from raw tables and accepted by the HTTP API,
so a CRM can send what it knows and the model sees exactly what training saw.
Every field but ``account_id`` may be missing. This module also defines the
*columnar* form of snapshots (a mapping of column name -> numpy array) that stage 2
consumes, and the conversions between frames, records and columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from features.timeline import (
    DAYS_PER_MONTH,
    EPOCH,
    FIRST_DATE,
    LAST_DATE,
    MAU_WINDOWS,
    days_to_datetime,
    normalize_contract_type,
    to_days,
)

if TYPE_CHECKING:  # pandas is imported where frames are handled: serving workers never load it
    import pandas as pd

ATTRIBUTE_PREFIX = "attributes."
MAU_COLUMNS = tuple(f"mau_{i}" for i in range(MAU_WINDOWS))

# Columnar schema: kind of every scalar column of a snapshot frame, in output order.
DATE_FIELDS = (
    "as_of",
    "signup_date",
    "renewal_date",
    "nps_last_date",
    "last_contact_date",
)
TEXT_FIELDS = ("plan", "contract_type")
COUNT_FIELDS = (
    "seats",
    *MAU_COLUMNS,
    "nps_count_12m",
    "contacts_90d",
    "tickets_30d",
    "tickets_90d",
    "tickets_open",
    "tickets_high_90d",
    "stakeholders_left_90d",
)
AMOUNT_FIELDS = (
    "mrr",
    "mrr_90d_ago",
    "dau_avg_30d",
    "nps_last",
    "nps_avg_12m",
    "ticket_hours_to_close_avg_90d",
    "tenure_months",
)
SNAPSHOT_COLUMNS = (
    "account_id",
    "as_of",
    "signup_date",
    "plan",
    "contract_type",
    "renewal_date",
    "seats",
    "mrr",
    "mrr_90d_ago",
    *MAU_COLUMNS,
    "dau_avg_30d",
    "nps_last",
    "nps_last_date",
    "nps_avg_12m",
    "nps_count_12m",
    "last_contact_date",
    "contacts_90d",
    "tickets_30d",
    "tickets_90d",
    "tickets_open",
    "tickets_high_90d",
    "ticket_hours_to_close_avg_90d",
    "stakeholders_left_90d",
    "tenure_months",
)
NUMBER_FIELDS = (*COUNT_FIELDS, *AMOUNT_FIELDS)

# Bounds of every value a snapshot may carry: wide enough for any real account, narrow
# enough that no conversion on the way (dates to days, integers to float64, sums of money)
# can overflow, and that one account can never make a batch's columns explode.
MAX_COUNT = 10**9  # seats, active users, tickets, contacts
MAX_MONEY = 1e12  # mrr, in any currency
MAX_HOURS = 1e6  # a ticket's hours to close (over a century)
MAX_TENURE_MONTHS = 1_200
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_TEXT = 1_024
MAX_ATTRIBUTE_NUMBER = 1e15
MAX_TEXT = 200  # account_id, plan

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Money = Annotated[float, Field(ge=0, le=MAX_MONEY)]
Day = Annotated[dt.date, Field(ge=FIRST_DATE, le=LAST_DATE)]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ATTRIBUTE_NAME)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_TEXT)]
    | Annotated[float, Field(ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER)]
    | Annotated[int, Field(ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER)]
    | bool
    | None
)


class AccountSnapshot(BaseModel):
    """An account at ``as_of``: what a CRM knows, or what stage 1 computed from raw tables."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "account_id": "A000042",
                    "as_of": "2025-06-01",
                    "signup_date": "2024-02-14",
                    "plan": "growth",
                    "contract_type": "annual",
                    "renewal_date": "2026-02-14",
                    "seats": 25,
                    "mrr": 1250.0,
                    "mrr_90d_ago": 1500.0,
                    "mau": [9, 14, 16, 17, 15, 16],
                    "dau_avg_30d": 3.2,
                    "nps_last": 5,
                    "nps_last_date": "2025-03-20",
                    "nps_avg_12m": 6.5,
                    "nps_count_12m": 2,
                    "last_contact_date": "2025-01-10",
                    "contacts_90d": 0,
                    "tickets_30d": 3,
                    "tickets_90d": 4,
                    "tickets_open": 2,
                    "tickets_high_90d": 1,
                    "ticket_hours_to_close_avg_90d": 72.0,
                    "stakeholders_left_90d": 1,
                    "attributes": {"industry": "retail", "region": "emea"},
                }
            ]
        },
    )

    account_id: str = Field(min_length=1, max_length=MAX_TEXT)
    as_of: Day | None = Field(None, description="Defaults to today (UTC); echoed back.")
    signup_date: Day | None = None
    plan: str | None = Field(None, max_length=MAX_TEXT)
    contract_type: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description="monthly, quarterly, semiannual, annual, biennial, triennial (or alias).",
    )
    renewal_date: Day | None = Field(None, description="End of the contract in force at as_of.")
    seats: Count | None = None
    mrr: Money | None = None
    mrr_90d_ago: Money | None = None
    mau: list[Count | None] | None = Field(
        None,
        max_length=MAU_WINDOWS,
        description="Distinct active users in trailing 30-day windows, newest first (up to 6).",
    )
    dau_avg_30d: float | None = Field(None, ge=0, le=MAX_COUNT)
    nps_last: float | None = Field(None, ge=0, le=10)
    nps_last_date: Day | None = None
    nps_avg_12m: float | None = Field(None, ge=0, le=10)
    nps_count_12m: Count | None = None
    last_contact_date: Day | None = None
    contacts_90d: Count | None = None
    tickets_30d: Count | None = None
    tickets_90d: Count | None = None
    tickets_open: Count | None = None
    tickets_high_90d: Count | None = None
    ticket_hours_to_close_avg_90d: float | None = Field(None, ge=0, le=MAX_HOURS)
    stakeholders_left_90d: Count | None = None
    tenure_months: float | None = Field(
        None,
        ge=0,
        le=MAX_TENURE_MONTHS,
        description="Stands in for signup_date when only a tenure is known.",
    )
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description=(
            f"Static attributes (industry, region, ...): at most {MAX_ATTRIBUTES}, names up to "
            f"{MAX_ATTRIBUTE_NAME} characters, text values up to {MAX_ATTRIBUTE_TEXT}."
        ),
    )

    @field_validator("contract_type")
    @classmethod
    def _contract(cls, value: str | None) -> str | None:
        return normalize_contract_type(value)

    @model_validator(mode="after")
    def _nothing_after_as_of(self) -> AccountSnapshot:
        if self.as_of is None:
            return self
        for name in ("signup_date", "nps_last_date", "last_contact_date"):
            value = getattr(self, name)
            if value is not None and value > self.as_of:
                raise ValueError(f"{name} {value} is after as_of {self.as_of}")
        return self


# --- columns: the stage-2 input ------------------------------------------------------

Columns = dict[str, np.ndarray]


def attribute_column(name: str) -> str:
    return f"{ATTRIBUTE_PREFIX}{name}"


def attribute_names(columns: Mapping[str, Any] | Sequence[str]) -> list[str]:
    """Names of the static attributes present in a frame or columns mapping."""
    return [c[len(ATTRIBUTE_PREFIX) :] for c in columns if str(c).startswith(ATTRIBUTE_PREFIX)]


def frame_to_columns(frame: pd.DataFrame) -> Columns:
    """Snapshot frame -> columns: dates as float days (NaN missing), numbers float, text objects."""
    import pandas as pd

    columns: Columns = {}
    for name in frame.columns:
        series = frame[name]
        if name in DATE_FIELDS:
            columns[name] = _float_days(series)
        elif name in NUMBER_FIELDS:
            columns[name] = pd.to_numeric(series, errors="coerce").to_numpy(
                np.float64, na_value=np.nan
            )
        elif name in TEXT_FIELDS or name == "account_id":
            columns[name] = _objects(series)
        elif name.startswith(ATTRIBUTE_PREFIX):
            columns[name] = _attribute_array(series)
    return columns


def records_to_columns(
    records: Sequence[AccountSnapshot],
    default_as_of: dt.date,
    attributes: Collection[str] | None = None,
) -> Columns:
    """Validated request snapshots -> columns, without pandas (the HTTP hot path).

    ``attributes``: the attribute names to build columns for (those a model reads); None
    builds every one sent. A batch whose accounts each send other keys would otherwise cost
    accounts x keys.
    """
    n = len(records)
    columns: Columns = {"account_id": np.array([r.account_id for r in records], dtype=object)}
    default_day = float((np.datetime64(default_as_of, "D") - EPOCH).astype(np.int64))
    for name in DATE_FIELDS:
        values = [getattr(r, name) for r in records]
        columns[name] = _date_values_to_days(values)
    as_of = columns["as_of"]
    as_of[np.isnan(as_of)] = default_day
    for name in TEXT_FIELDS:
        columns[name] = np.array([getattr(r, name) for r in records], dtype=object)
    for name in (*AMOUNT_FIELDS, *(f for f in COUNT_FIELDS if not f.startswith("mau_"))):
        columns[name] = np.array([getattr(r, name) for r in records], dtype=np.float64)
    mau = np.full((n, MAU_WINDOWS), np.nan)
    for i, r in enumerate(records):
        if r.mau:
            mau[i, : len(r.mau)] = [np.nan if v is None else v for v in r.mau]
    for k, name in enumerate(MAU_COLUMNS):
        columns[name] = mau[:, k]
    names = (
        sorted({key for r in records for key in r.attributes})
        if attributes is None
        else [key for key in attributes if any(key in r.attributes for r in records)]
    )
    for key in names:
        columns[attribute_column(key)] = _attribute_values([r.attributes.get(key) for r in records])
    _fill_signup_from_tenure(columns)
    return columns


def _fill_signup_from_tenure(columns: Columns) -> None:
    """``signup = as_of - tenure`` where only a tenure is known (and tenure from signup)."""
    signup, tenure, as_of = columns["signup_date"], columns["tenure_months"], columns["as_of"]
    from_tenure = np.isnan(signup) & ~np.isnan(tenure)
    signup[from_tenure] = np.round(as_of[from_tenure] - tenure[from_tenure] * DAYS_PER_MONTH)
    from_signup = np.isnan(tenure) & ~np.isnan(signup)
    tenure[from_signup] = (as_of[from_signup] - signup[from_signup]) / DAYS_PER_MONTH


def _date_values_to_days(values: Sequence[dt.date | None]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value is not None:
            out[i] = value.toordinal() - _EPOCH_ORDINAL
    return out


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _float_days(series: pd.Series) -> np.ndarray:
    import pandas as pd

    days = to_days(series).astype(np.float64)
    days[pd.isna(series).to_numpy()] = np.nan
    return days


def _objects(series: pd.Series) -> np.ndarray:
    import pandas as pd

    values = series.astype(object).to_numpy(copy=True)
    values[pd.isna(series).to_numpy()] = None
    return values


def _attribute_values(values: list[AttributeValue]) -> np.ndarray:
    """Request attribute values: numbers (and booleans) as float, anything else as text."""
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def _attribute_array(series: pd.Series) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return pd.to_numeric(series, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    return _objects(series.astype("string"))


# --- frames <-> records (files, JSON lines) ----------------------------------------------


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Snapshot frame -> JSON-ready dicts shaped like AccountSnapshot (``mau`` a list)."""
    values = {name: _python_values(frame[name], name) for name in frame.columns}
    scalars = [c for c in SNAPSHOT_COLUMNS if c in values and not c.startswith("mau_")]
    mau = [c for c in MAU_COLUMNS if c in values]
    attributes = attribute_names(frame.columns)
    records: list[dict[str, Any]] = []
    for i in range(len(frame)):
        record = {name: values[name][i] for name in scalars}
        if mau:
            record["mau"] = [values[c][i] for c in mau]
        record["attributes"] = {a: values[attribute_column(a)][i] for a in attributes}
        records.append(record)
    return records


def _python_values(series: pd.Series, name: str) -> list[Any]:
    """One column as plain Python values, ``None`` where missing (JSON's null)."""
    import pandas as pd

    missing = pd.isna(series).to_numpy()
    if name in DATE_FIELDS:
        items: list[Any] = pd.to_datetime(series).dt.strftime("%Y-%m-%d").tolist()
    elif name in COUNT_FIELDS:
        items = series.to_numpy(np.float64, na_value=0.0).astype(np.int64).tolist()
    elif pd.api.types.is_bool_dtype(series):
        items = series.astype(bool).tolist()
    elif pd.api.types.is_numeric_dtype(series):
        items = series.to_numpy(np.float64, na_value=np.nan).tolist()
    else:
        items = series.astype(object).tolist()
    return [None if gone else item for item, gone in zip(items, missing, strict=True)]


def columns_to_frame(columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Columns -> a snapshot frame (dates back to datetime64), e.g. for files and MLflow inputs."""
    import pandas as pd

    data: dict[str, Any] = {}
    for name, values in columns.items():
        data[name] = days_to_datetime(values) if name in DATE_FIELDS else values
    return pd.DataFrame(data)
