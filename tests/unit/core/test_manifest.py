"""task.yaml models: short forms, clean names, whole-manifest rules."""

from __future__ import annotations

import pytest
import yaml

from tasks.core.errors import InputError
from tasks.core.manifest import TaskManifest, load_manifest, to_snake_case
from tasks.core.schema import Role, TaskType


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("Car Line", "car_line"),
        ("mfrName", "mfr_name"),
        ("Price EUR", "price_eur"),
        ("Height (cm)", "height_cm"),
        ("Prix (€)", "prix_eur"),
        ("2nd Price", "c_2nd_price"),
        ("ÜberGröße", "uber_grosse"),
    ],
)
def test_to_snake_case(raw, clean):
    assert to_snake_case(raw) == clean


def manifest(**changes) -> dict:
    base = {
        "id": "shop_items",
        "type": "classification",
        "track": "classification",
        "primary_metric": "macro_f1",
        "title": "t",
        "files": {
            "data": {"path": "items.csv", "columns": {"SKU": "id", "Item Name": "text", "Kind": {"role": "label"}}}
        },
    }
    base.update(changes)
    return base


def test_short_column_form_and_defaults():
    m = TaskManifest.model_validate(manifest())
    spec = m.files["data"]
    assert spec.format == "csv" and spec.encoding == "utf-8"
    assert spec.columns["Item Name"].role is Role.text
    assert spec.clean_name("Item Name") == "item_name"
    assert spec.clean_name("SKU") == "id" and spec.clean_name("Kind") == "label"
    assert m.type is TaskType.classification and not m.given_split


@pytest.mark.parametrize(
    "encoding, canonical",
    [("UTF-8", "utf-8"), ("utf-8-sig", "utf-8"), ("latin1", "latin-1"), ("ISO-8859-1", "latin-1")],
)
def test_encodings_are_normalised(encoding, canonical):
    m = TaskManifest.model_validate(
        manifest(files={"data": {"path": "x.tsv", "encoding": encoding, "columns": {"a": "id", "b": "label"}}})
    )
    assert m.files["data"].encoding == canonical and m.files["data"].format == "tsv"


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"primary_metric": "f1"}, "not defined for classification"),
        ({"type": "ranking"}, "type"),
        ({"id": "Shop Items"}, "snake_case"),
        ({"files": {"data": {"path": "/etc/passwd", "columns": {"a": "id"}}}}, "relative"),
        ({"files": {"data": {"path": "x.xlsx", "columns": {"a": "id"}}}}, "cannot tell the format"),
        ({"files": {"data": {"path": "x.csv", "encoding": "utf-16", "columns": {"a": "id"}}}}, "not supported"),
        (
            {
                "label_mapping": {"x": 3},
                "type": "matching",
                "primary_metric": "f1",
                "files": {
                    "left": {"path": "l.csv", "columns": {"a": "id"}},
                    "right": {"path": "r.csv", "columns": {"a": "id"}},
                    "pairs": {"path": "p.csv", "columns": {"a": "left_id", "b": "right_id", "c": "label"}},
                },
            },
            "0 or 1",
        ),
    ],
)
def test_manifest_rules(changes, fragment, tmp_path):
    folder = tmp_path / manifest(**changes)["id"].replace(" ", "_")
    folder.mkdir()
    (folder / "task.yaml").write_text(yaml.safe_dump(manifest(**changes)))
    with pytest.raises(InputError) as refused:
        load_manifest(folder)
    assert fragment in str(refused.value) and "Fix:" in str(refused.value)


def test_folder_name_must_match_id(tmp_path):
    folder = tmp_path / "other_name"
    folder.mkdir()
    (folder / "task.yaml").write_text(yaml.safe_dump(manifest()))
    with pytest.raises(InputError, match="differs from its folder name"):
        load_manifest(folder)


def test_reserved_and_clashing_names(tmp_path):
    folder = tmp_path / "shop_items"
    folder.mkdir()
    cols = {"SKU": "id", "Kind": "label", "Split": "categorical"}
    (folder / "task.yaml").write_text(yaml.safe_dump(manifest(files={"data": {"path": "i.csv", "columns": cols}})))
    with pytest.raises(InputError, match="reserved"):
        load_manifest(folder)
    cols = {"SKU": "id", "Kind": "label", "Item Name": "text", "item_name": "text"}
    (folder / "task.yaml").write_text(yaml.safe_dump(manifest(files={"data": {"path": "i.csv", "columns": cols}})))
    with pytest.raises(InputError, match="both become 'item_name'"):
        load_manifest(folder)
