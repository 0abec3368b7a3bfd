"""Pydantic models of task.yaml (a contribution's manifest) and its one loader.

Separate from the params models (tasks/config.py) so that the ingest stage depends on this
file alone: editing a knob's model does not re-ingest every task.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from slugify import slugify

from tasks.core.errors import InputError
from tasks.core.metrics import check_primary
from tasks.core.schema import (
    ID,
    LABEL,
    LEFT_ID,
    PAIR_FILES,
    PAIR_ID,
    PAIR_ROLES,
    RECORD_FILES,
    RIGHT_ID,
    SPLIT,
    Role,
    TaskType,
)

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
RESERVED_NAMES = {ID, LABEL, PAIR_ID, LEFT_ID, RIGHT_ID, SPLIT}
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",  # a BOM is skipped either way
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}
FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


def to_snake_case(name: str) -> str:
    """'Car Line' -> car_line, 'mfrName' -> mfr_name, 'Prix (€)' -> prix_eur."""
    split_camel = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    slug = slugify(split_camel, separator="_", replacements=[["€", "eur"], ["%", "pct"]])
    if slug and slug[0].isdigit():
        slug = f"c_{slug}"
    return slug or "column"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------
# task.yaml


class ColumnSpec(Strict):
    role: Role
    name: str | None = Field(default=None, description="clean snake_case name in the release")

    @field_validator("name")
    @classmethod
    def _snake(cls, v: str | None) -> str | None:
        if v is not None and not SNAKE_CASE.match(v):
            raise ValueError(
                f"name '{v}' is not snake_case (lower-case letters, digits and single underscores, e.g. '{to_snake_case(v)}')"
            )
        return v


class FileSpec(Strict):
    path: str
    format: Literal["csv", "tsv", "jsonl", "parquet"] | None = None
    encoding: str = "utf-8"
    na_values: list[str] | None = Field(default=None, description="overrides ingest.na_values for this file")
    columns: dict[str, ColumnSpec]

    @model_validator(mode="before")
    @classmethod
    def _short_columns(cls, data: Any) -> Any:
        # `Raw Name: text` is short for `Raw Name: {role: text}`
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            data = dict(data)
            data["columns"] = {str(k): ({"role": v} if isinstance(v, str) else v) for k, v in data["columns"].items()}
        return data

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        key = v.strip().lower().replace("_", "-")
        if key not in ENCODINGS:
            raise ValueError(f"encoding '{v}' is not supported; use one of utf-8, utf-8-sig, latin-1")
        return ENCODINGS[key]

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        p = Path(v)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"path '{v}' must be relative to the task folder and stay inside it")
        return v

    @model_validator(mode="after")
    def _infer_format(self) -> FileSpec:
        if self.format is None:
            fmt = FORMATS_BY_SUFFIX.get(Path(self.path).suffix.lower())
            if fmt is None:
                raise ValueError(
                    f"cannot tell the format of '{self.path}' from its suffix; add `format: csv|tsv|jsonl|parquet`"
                )
            object.__setattr__(self, "format", fmt)
        return self

    @property
    def file_format(self) -> Literal["csv", "tsv", "jsonl", "parquet"]:
        """The format, given or inferred from the suffix (set by the validator, never None after it)."""
        if self.format is None:
            raise ValueError(f"no format for '{self.path}'")
        return self.format

    def clean_name(self, raw: str) -> str:
        spec = self.columns[raw]
        if spec.role in (Role.id, Role.label, Role.left_id, Role.right_id):
            return {Role.id: ID, Role.label: LABEL, Role.left_id: LEFT_ID, Role.right_id: RIGHT_ID}[spec.role]
        return spec.name or to_snake_case(raw)

    def raw_by_role(self, role: Role) -> list[str]:
        return [raw for raw, spec in self.columns.items() if spec.role is role]


class Source(Strict):
    name: str
    license: str
    url: str | None = None
    notes: str | None = None


class TaskManifest(Strict):
    id: str
    type: TaskType
    track: str
    primary_metric: str
    title: str
    description: str = ""
    source: Source | None = None
    files: dict[str, FileSpec]
    label_mapping: dict[str, str | int] | None = Field(
        default=None, description="raw label value -> class name (classification) or 0/1 (matching)"
    )
    text_template: str | None = Field(
        default=None, description="how text columns are joined for embedding, e.g. '{title}. {description}'"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not SNAKE_CASE.match(v):
            raise ValueError(f"task id '{v}' must be snake_case, e.g. '{to_snake_case(v)}'")
        return v

    @field_validator("track")
    @classmethod
    def _track(cls, v: str) -> str:
        if not SNAKE_CASE.match(v):
            raise ValueError(f"track '{v}' must be snake_case")
        return v

    @field_validator("label_mapping", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        # YAML reads `1: compact` with an int key; raw values are compared as text
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _consistent(self) -> TaskManifest:
        check_primary(self.type, self.primary_metric)
        layouts: tuple[tuple[str, ...], ...] = RECORD_FILES[self.type]
        if self.type is TaskType.matching:
            layouts = tuple(rec + pairs for rec in layouts for pairs in PAIR_FILES)
        if not any(set(layout) == set(self.files) for layout in layouts):
            options = " or ".join("{" + ", ".join(layout) + "}" for layout in layouts)
            raise ValueError(
                f"files {sorted(self.files)} do not fit a {self.type.value} task. Fix: under `files:` name exactly {options}"
            )
        if self.label_mapping and self.type is TaskType.matching:
            bad = {k: v for k, v in self.label_mapping.items() if v not in (0, 1)}
            if bad:
                raise ValueError(f"label_mapping of a matching task maps to {bad}. Fix: map every raw label to 0 or 1")
        return self

    @property
    def given_split(self) -> bool:
        return "train" in self.files or "train_pairs" in self.files

    def record_files(self) -> list[str]:
        return [name for name in self.files if not name.endswith("pairs")]

    def pair_files(self) -> list[str]:
        return [name for name in self.files if name.endswith("pairs")]


def validation_error(exc: ValidationError, task: str | None, file: str) -> InputError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    column = None
    if len(first["loc"]) >= 4 and first["loc"][0] == "files" and first["loc"][2] == "columns":
        column = str(first["loc"][3])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "enum" and first["loc"][-1] == "role":
        roles = ", ".join(r.value for r in Role)
        return InputError(
            problem=f"{loc}: unknown role {first['input']!r}",
            fix=f"use one of: {roles}",
            task=task,
            file=file,
            column=column,
        )
    if first["type"] == "missing":
        return InputError(
            problem=f"required field '{loc}' is missing",
            fix=f"add '{loc}' to {file}",
            task=task,
            file=file,
            column=column,
        )
    if first["type"] == "extra_forbidden":
        return InputError(
            problem=f"unknown field '{loc}'",
            fix="remove it or check its spelling against the task.yaml reference in the README",
            task=task,
            file=file,
            column=column,
        )
    more = f" ({len(exc.errors()) - 1} more problem(s) after this one)" if len(exc.errors()) > 1 else ""
    if ". Fix: " in msg:  # whole-manifest rules carry their own fix
        problem, fix = msg.split(". Fix: ", 1)
        return InputError(problem=f"{problem}{more}", fix=fix, task=task, file=file, column=column)
    return InputError(
        problem=f"{loc}: {msg}{more}", fix=f"correct '{loc}' in {file}", task=task, file=file, column=column
    )


def load_manifest(task_dir: Path) -> TaskManifest:
    """Read and validate `task.yaml`, turning every problem into an InputError naming the fix."""
    task_dir = Path(task_dir)
    path = task_dir / "task.yaml"
    guess = task_dir.name
    if not path.is_file():
        raise InputError(
            problem=f"no manifest in {task_dir}",
            fix="add a task.yaml describing the files and column roles (see README, 'Adding a task')",
            task=guess,
            file="task.yaml",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(
            problem=f"not valid YAML: {exc}", fix="fix the YAML syntax", task=guess, file="task.yaml"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            problem="the manifest is not a mapping",
            fix="write task.yaml as `key: value` lines",
            task=guess,
            file="task.yaml",
        )
    task = data.get("id") if isinstance(data.get("id"), str) else guess
    try:
        manifest = TaskManifest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, task, "task.yaml") from None
    if manifest.id != task_dir.name:
        raise InputError(
            problem=f"manifest id '{manifest.id}' differs from its folder name '{task_dir.name}'",
            fix=f"rename the folder to '{manifest.id}' or change id",
            task=manifest.id,
            file="task.yaml",
        )
    _check_roles(manifest)
    return manifest


def _check_roles(m: TaskManifest) -> None:
    """Role rules that need the whole manifest: one id, one label, the pair roles, clean unique names."""
    for fname, spec in m.files.items():
        is_pairs = fname.endswith("pairs")
        ids = spec.raw_by_role(Role.id)
        labels = spec.raw_by_role(Role.label)

        def refuse(problem: str, fix: str, column: str | None = None) -> None:
            raise InputError(problem=problem, fix=fix, task=m.id, file=f"task.yaml (files.{fname})", column=column)

        if is_pairs:
            for role in PAIR_ROLES:
                found = spec.raw_by_role(role)
                if len(found) != 1:
                    refuse(
                        f"a pairs file needs exactly one '{role.value}' column, found {len(found)}",
                        f"mark one column of {spec.path} with role {role.value}",
                        found[1] if found else None,
                    )
            for raw, col in spec.columns.items():
                if col.role not in PAIR_ROLES and col.role is not Role.ignore:
                    refuse(
                        f"role '{col.role.value}' is not allowed in a pairs file",
                        "pairs files hold left_id, right_id, label; mark other columns ignore",
                        raw,
                    )
            continue
        if len(ids) != 1:
            refuse(
                f"a records file needs exactly one 'id' column, found {len(ids)}",
                f"mark exactly one column of {spec.path} with role id",
                ids[1] if len(ids) > 1 else None,
            )
        needs_label = m.type is TaskType.classification
        if needs_label and len(labels) == 0:
            refuse("no column has role 'label'", f"mark the target column of {spec.path} with role label")
        if len(labels) > 1:
            refuse(
                f"{len(labels)} columns have role 'label': {', '.join(labels)}",
                "keep one label column; give the others role ignore or a feature role",
                labels[1],
            )
        if not needs_label and labels:
            refuse(
                "records of a matching task carry no label",
                "labels of a matching task belong in the pairs file; mark this column ignore",
                labels[0],
            )
        for raw, col in spec.columns.items():
            if col.role in (Role.left_id, Role.right_id):
                refuse(f"role '{col.role.value}' belongs in a pairs file", "use id for the record id", raw)
        seen: dict[str, str] = {}
        for raw, col in spec.columns.items():
            if col.role in (Role.ignore, Role.id, Role.label):
                continue
            name = spec.clean_name(raw)
            if name in RESERVED_NAMES:
                refuse(
                    f"clean name '{name}' is reserved",
                    f"give it another name with `name:` (reserved: {', '.join(sorted(RESERVED_NAMES))})",
                    raw,
                )
            if name in seen:
                refuse(
                    f"columns '{seen[name]}' and '{raw}' both become '{name}'",
                    "give one of them a distinct `name:`",
                    raw,
                )
            seen[name] = raw
    if m.type is TaskType.matching:
        left, right = (feature_schema(m.files[s]) for s in ("left", "right"))
        if left != right:
            differ = ", ".join(
                f"{name} ({left.get(name, Role.ignore).value} on the left, {right.get(name, Role.ignore).value} on the right)"
                for name in sorted(set(left) | set(right))
                if left.get(name) != right.get(name)
            )
            raise InputError(
                problem=f"left and right records must have the same clean feature columns and roles; they differ in {differ}",
                fix="map both files' raw columns to the same clean names and roles (use `name:`), or mark extras ignore",
                task=m.id,
                file="task.yaml (files.left / files.right)",
            )
    if m.given_split:
        pairs = [("train", "test")] if m.type is TaskType.classification else [("train_pairs", "test_pairs")]
        for a, b in pairs:
            if m.type is TaskType.classification and feature_schema(m.files[a]) != feature_schema(m.files[b]):
                raise InputError(
                    problem="the given train and test files have different clean feature columns",
                    fix="map both to the same names and roles",
                    task=m.id,
                    file="task.yaml (files.train / files.test)",
                )


def feature_schema(spec: FileSpec) -> dict[str, Role]:
    """Clean feature name -> role, in manifest order."""
    return {
        spec.clean_name(raw): c.role
        for raw, c in spec.columns.items()
        if c.role in (Role.text, Role.numeric, Role.categorical, Role.image)
    }
