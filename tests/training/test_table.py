"""Table mode: dirty exports are repaired and reported; ambiguous ones are refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from features.errors import DataError
from training.table import TableMapping, clean_table, read_export, read_mapping, stratified_split

AS_OF = dt.date(2024, 1, 1)
DIRTY = """customer,Tenure, Plan ,Monthly,Total,Paperless,Churned
c1, 2 ,Month-to-month,29.85,29.85,Yes,Yes
c2,34,One year,56.95, ,no,No
c3,45,ONE YEAR,42.30,"1,840.75",NO,no
c4,0,Two year,53.85,,yes ,YES
"""


def write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def mapping(**overrides) -> TableMapping:
    values = {
        "fields": {"Tenure": "tenure_months", "Plan": "contract_type", "Monthly": "mrr"},
        "id_column": "customer",
        "label": "Churned",
    }
    values.update(overrides)
    return TableMapping(**values)


def test_text_numbers_with_blanks_become_numbers_and_are_reported(tmp_path: Path) -> None:
    clean = clean_table(read_export(write(tmp_path, DIRTY)), mapping(), AS_OF)
    total = clean.snapshots["attributes.Total"]
    assert total[0] == 29.85 and np.isnan(total[1]) and total[2] == 1840.75 and np.isnan(total[3])
    assert clean.kinds["Total"] == "numeric"
    assert "Total: 2 blank value(s) treated as missing" in clean.report


def test_yes_no_labels_in_any_case(tmp_path: Path) -> None:
    clean = clean_table(read_export(write(tmp_path, DIRTY)), mapping(), AS_OF)
    assert clean.label.tolist() == [1, 0, 0, 1]


def test_mixed_case_and_whitespace_categories_are_merged(tmp_path: Path) -> None:
    clean = clean_table(read_export(write(tmp_path, DIRTY)), mapping(), AS_OF)
    paperless = clean.snapshots["attributes.Paperless"].tolist()
    assert len(set(paperless)) == 2 and paperless[1] == paperless[2]
    assert any("Paperless" in line and "merged" in line for line in clean.report)


def test_mapped_fields_take_snapshot_types(tmp_path: Path) -> None:
    clean = clean_table(read_export(write(tmp_path, DIRTY)), mapping(), AS_OF)
    assert clean.snapshots["tenure_months"].tolist() == [2, 34, 45, 0]
    assert clean.snapshots["contract_type"].tolist() == ["monthly", "annual", "annual", "biennial"]


def test_label_with_a_third_value_is_refused(tmp_path: Path) -> None:
    text = DIRTY + "c5,3,Month-to-month,20,60,Yes,Maybe\n"
    with pytest.raises(
        DataError, match=r"Churned: the label must have exactly two values, found 3"
    ):
        clean_table(read_export(write(tmp_path, text)), mapping(), AS_OF)


def test_unrecognised_label_values_need_positive(tmp_path: Path) -> None:
    text = (
        DIRTY.replace(",Yes\n", ",gone\n")
        .replace(",YES\n", ",gone\n")
        .replace(",No\n", ",here\n")
        .replace(",no\n", ",here\n")
    )
    with pytest.raises(DataError, match="give --positive VALUE"):
        clean_table(read_export(write(tmp_path, text)), mapping(), AS_OF)
    clean = clean_table(read_export(write(tmp_path, text)), mapping(positive="gone"), AS_OF)
    assert clean.label.tolist() == [1, 0, 0, 1]


def test_duplicate_ids_are_refused_naming_the_rows(tmp_path: Path) -> None:
    text = DIRTY.replace("c3,", "c1,")
    with pytest.raises(
        DataError,
        match=r"customer: customer is duplicated in 2 rows \(e.g. \['c1'\]\); first rows \[1, 3\]",
    ) as caught:
        clean_table(read_export(write(tmp_path, text)), mapping(), AS_OF)
    assert caught.value.rows == [1, 3]


def test_mapping_naming_a_missing_column_is_refused(tmp_path: Path) -> None:
    bad = mapping(fields={"Tenure": "tenure_months", "Contract": "contract_type"})
    with pytest.raises(DataError, match=r"mapping of 'Contract': column 'Contract' does not exist"):
        clean_table(read_export(write(tmp_path, DIRTY)), bad, AS_OF)


def test_mapping_onto_an_unknown_field_is_refused() -> None:
    with pytest.raises(DataError, match="'tenure' is not a snapshot field"):
        read_mapping(None, ["Tenure=tenure"])


def test_mapping_files_in_toml_and_yaml(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        '[mapping]\nTenure = "tenure_months"\n[types]\nTotal = "categorical"\n',
        "map.toml",
    )
    yaml = write(
        tmp_path, "mapping:\n  Tenure: tenure_months\ntypes:\n  Total: categorical\n", "map.yaml"
    )
    assert (
        read_mapping(toml)
        == read_mapping(yaml)
        == ({"Tenure": "tenure_months"}, {"Total": "categorical"})
    )


def test_type_override_makes_a_numeric_column_categorical(tmp_path: Path) -> None:
    clean = clean_table(
        read_export(write(tmp_path, DIRTY)), mapping(kinds={"Total": "categorical"}), AS_OF
    )
    assert clean.kinds["Total"] == "categorical"
    assert clean.snapshots["attributes.Total"].dtype == "string"


def test_missing_label_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--label: column 'Exited' does not exist"):
        clean_table(read_export(write(tmp_path, DIRTY)), mapping(label="Exited"), AS_OF)


def test_stratified_split_keeps_the_base_rate() -> None:
    label = np.array([1] * 200 + [0] * 800)
    split = stratified_split(label)
    for name, share in (("train", 0.6), ("validation", 0.1), ("calibration", 0.1), ("test", 0.2)):
        rows = split == name
        assert rows.mean() == pytest.approx(share, abs=0.01)
        assert label[rows].mean() == pytest.approx(0.2, abs=0.01)
