"""Pydantic models of params.yaml and task.yaml, and the one loader for each.

The CLI loads params once and hands each stage only its own section; stage functions never
read params.yaml themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from slugify import slugify

from tasks.errors import InputError
from tasks.schema import (
    ID,
    LABEL,
    LEFT_ID,
    PAIR_FILES,
    PAIR_ID,
    PAIR_ROLES,
    PRIMARY_METRICS,
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
FORMATS_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


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
            raise ValueError(f"name '{v}' is not snake_case (lower-case letters, digits and single underscores, e.g. '{to_snake_case(v)}')")
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
    def _infer_format(self) -> "FileSpec":
        if self.format is None:
            fmt = FORMATS_BY_SUFFIX.get(Path(self.path).suffix.lower())
            if fmt is None:
                raise ValueError(f"cannot tell the format of '{self.path}' from its suffix; add `format: csv|tsv|jsonl|parquet`")
            object.__setattr__(self, "format", fmt)
        return self

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
    def _consistent(self) -> "TaskManifest":
        allowed = PRIMARY_METRICS[self.type]
        if self.primary_metric not in allowed:
            raise ValueError(f"primary_metric '{self.primary_metric}' is not defined for {self.type.value} tasks. Fix: use one of {', '.join(allowed)}")
        layouts = RECORD_FILES[self.type]
        if self.type is TaskType.matching:
            layouts = tuple(rec + pairs for rec in layouts for pairs in PAIR_FILES)
        if not any(set(layout) == set(self.files) for layout in layouts):
            options = " or ".join("{" + ", ".join(layout) + "}" for layout in layouts)
            raise ValueError(f"files {sorted(self.files)} do not fit a {self.type.value} task. Fix: under `files:` name exactly {options}")
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


def _validation_error(exc: ValidationError, task: str | None, file: str) -> InputError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    column = None
    if len(first["loc"]) >= 4 and first["loc"][0] == "files" and first["loc"][2] == "columns":
        column = str(first["loc"][3])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "enum" and first["loc"][-1] == "role":
        roles = ", ".join(r.value for r in Role)
        return InputError(problem=f"{loc}: unknown role {first['input']!r}", fix=f"use one of: {roles}", task=task, file=file, column=column)
    if first["type"] == "missing":
        return InputError(problem=f"required field '{loc}' is missing", fix=f"add '{loc}' to {file}", task=task, file=file, column=column)
    if first["type"] == "extra_forbidden":
        return InputError(problem=f"unknown field '{loc}'", fix="remove it or check its spelling against the task.yaml reference in the README", task=task, file=file, column=column)
    more = f" ({len(exc.errors()) - 1} more problem(s) after this one)" if len(exc.errors()) > 1 else ""
    if ". Fix: " in msg:  # whole-manifest rules carry their own fix
        problem, fix = msg.split(". Fix: ", 1)
        return InputError(problem=f"{problem}{more}", fix=fix, task=task, file=file, column=column)
    return InputError(problem=f"{loc}: {msg}{more}", fix=f"correct '{loc}' in {file}", task=task, file=file, column=column)


def load_manifest(task_dir: Path) -> TaskManifest:
    """Read and validate `task.yaml`, turning every problem into an InputError naming the fix."""
    task_dir = Path(task_dir)
    path = task_dir / "task.yaml"
    guess = task_dir.name
    if not path.is_file():
        raise InputError(problem=f"no manifest in {task_dir}", fix="add a task.yaml describing the files and column roles (see README, 'Adding a task')", task=guess, file="task.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(problem=f"not valid YAML: {exc}", fix="fix the YAML syntax", task=guess, file="task.yaml") from None
    if not isinstance(data, dict):
        raise InputError(problem="the manifest is not a mapping", fix="write task.yaml as `key: value` lines", task=guess, file="task.yaml")
    task = data.get("id") if isinstance(data.get("id"), str) else guess
    try:
        manifest = TaskManifest.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, task, "task.yaml") from None
    if manifest.id != task_dir.name:
        raise InputError(problem=f"manifest id '{manifest.id}' differs from its folder name '{task_dir.name}'", fix=f"rename the folder to '{manifest.id}' or change id", task=manifest.id, file="task.yaml")
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
                    refuse(f"a pairs file needs exactly one '{role.value}' column, found {len(found)}", f"mark one column of {spec.path} with role {role.value}", found[1] if found else None)
            for raw, col in spec.columns.items():
                if col.role not in PAIR_ROLES and col.role is not Role.ignore:
                    refuse(f"role '{col.role.value}' is not allowed in a pairs file", "pairs files hold left_id, right_id, label; mark other columns ignore", raw)
            continue
        if len(ids) != 1:
            refuse(f"a records file needs exactly one 'id' column, found {len(ids)}", f"mark exactly one column of {spec.path} with role id", ids[1] if len(ids) > 1 else None)
        needs_label = m.type is TaskType.classification
        if needs_label and len(labels) == 0:
            refuse("no column has role 'label'", f"mark the target column of {spec.path} with role label")
        if len(labels) > 1:
            refuse(f"{len(labels)} columns have role 'label': {', '.join(labels)}", "keep one label column; give the others role ignore or a feature role", labels[1])
        if not needs_label and labels:
            refuse("records of a matching task carry no label", "labels of a matching task belong in the pairs file; mark this column ignore", labels[0])
        for raw, col in spec.columns.items():
            if col.role in (Role.left_id, Role.right_id):
                refuse(f"role '{col.role.value}' belongs in a pairs file", "use id for the record id", raw)
        seen: dict[str, str] = {}
        for raw, col in spec.columns.items():
            if col.role in (Role.ignore, Role.id, Role.label):
                continue
            name = spec.clean_name(raw)
            if name in RESERVED_NAMES:
                refuse(f"clean name '{name}' is reserved", f"give it another name with `name:` (reserved: {', '.join(sorted(RESERVED_NAMES))})", raw)
            if name in seen:
                refuse(f"columns '{seen[name]}' and '{raw}' both become '{name}'", "give one of them a distinct `name:`", raw)
            seen[name] = raw
    if m.type is TaskType.matching:
        left, right = (feature_schema(m.files[s]) for s in ("left", "right"))
        if left != right:
            differ = ", ".join(f"{name} ({left.get(name, Role.ignore).value} on the left, {right.get(name, Role.ignore).value} on the right)" for name in sorted(set(left) | set(right)) if left.get(name) != right.get(name))
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
                raise InputError(problem="the given train and test files have different clean feature columns", fix="map both to the same names and roles", task=m.id, file="task.yaml (files.train / files.test)")


def feature_schema(spec: FileSpec) -> dict[str, Role]:
    """Clean feature name -> role, in manifest order."""
    return {spec.clean_name(raw): c.role for raw, c in spec.columns.items() if c.role in (Role.text, Role.numeric, Role.categorical, Role.image)}


# ---------------------------------------------------------------------------------------
# params.yaml


class ChallengeParams(Strict):
    name: str
    opens_at: str
    closed: bool = False
    tasks: list[str]


class DemoParams(Strict):
    seed: int
    tasks: dict[str, dict[str, Any]]


class IngestParams(Strict):
    seed: int
    test_fraction: float = Field(gt=0, lt=1)
    public_fraction: float = Field(gt=0, lt=1, description="share of the test set scored on the public board")
    na_values: list[str]
    max_bad_image_share: float = Field(ge=0, le=1, description="share of rows whose image may be missing or unreadable; 0 refuses any")
    max_group_share: float = Field(gt=0, le=1, description="matching: refuse a split when one connected group of pairs is larger than this share")


class OrchestrationParams(Strict):
    """Read by flows/ only: how stages are scheduled, never what they compute."""

    concurrency: int = Field(2, ge=1, le=32, description="stages in flight at once on this machine")
    retries: int = Field(2, ge=0, description="per stage, for transient failures only")
    retry_delay_seconds: float = Field(10, ge=0)
    remote: str | None = Field(None, description="DVC remote: pull inputs before and push outputs after each stage")


class NightlyParams(Strict):
    cron: str
    timezone: str = Field(description="IANA name, e.g. UTC or Europe/Paris")
    inbox: str = Field(description="folder where uploads wait: <inbox>/<team>/<upload>")
    commit: bool = Field(description="commit dvc.lock and the new snapshot to git")
    push: bool = Field(description="dvc push after the commit")
class ClipParams(Strict):
    """Which CLIP weights to use, and what to do when they cannot be had."""

    model: str = Field(description="open_clip model config name, e.g. ViT-B-32 (or one of tasks/model_configs)")
    pretrained: str | None = Field(description="an open_clip pretrained tag (e.g. laion2b_s34b_b79k) or a path to a local checkpoint; null = random init on purpose")
    if_unavailable: Literal["random-init", "fail"] = Field(description="when the weights are not cached and cannot be downloaded")
    seed: int = Field(default=0, description="seed of the random init, when it is used")
    offline: Literal["auto"] | bool = Field(default="auto", description="true: never touch the network; auto: offline when HF_HUB_OFFLINE is set or the hub is unreachable")
    weights_dir: str | None = Field(default=None, description="download/cache folder for weights; null = the Hugging Face cache")


class TextChoice(Strict):
    """Per task: which columns make the embedded text, and how they are joined."""

    columns: list[str] | None = Field(default=None, description="feature columns (any role but image); default: the task's text columns; [] = no text embedding")
    template: str | None = Field(default=None, description="str.format template over the columns, e.g. '{title} by {brand}'; default: the card's text_template, else 'name: value; ...'")


class EmbedCacheParams(Strict):
    enabled: bool = True
    dir: str = Field(default=".mmtc_cache/embeddings", description="content-addressed vectors; outside DVC outputs so that reruns keep it")


class EmbedParams(Strict):
    clip: ClipParams
    device: Literal["auto", "cpu", "cuda"] = "auto"
    image_batch_size: int = Field(default=64, gt=0)
    text_batch_size: int = Field(default=256, gt=0)
    workers: Literal["auto"] | int = Field(default="auto", description="DataLoader processes decoding images while the model runs; auto: 1 on CPU (the model needs the cores), all cores but one on CUDA")
    max_failed_share: float = Field(default=0.05, ge=0, le=1, description="per image column: share of rows with an image that may fail to decode before the stage fails")
    text: dict[str, TextChoice] = Field(default_factory=dict, description="per-task text overrides")
    cache: EmbedCacheParams = EmbedCacheParams()

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: Literal["auto"] | int) -> Literal["auto"] | int:
        if v != "auto" and v < 0:
            raise ValueError("workers must be 'auto' or a count >= 0")
        return v


class Params(BaseModel):
    """All of params.yaml. Sections of stages not built yet pass through unchecked."""

    model_config = ConfigDict(extra="allow", frozen=True)
    challenge: ChallengeParams
    demo: DemoParams
    ingest: IngestParams
    embed: EmbedParams
    orchestration: OrchestrationParams
    nightly: NightlyParams


def load_params(path: Path = Path("params.yaml")) -> Params:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Params.model_validate(data)
    except FileNotFoundError:
        raise InputError(problem=f"{path} not found", fix="run from the project root or pass --params") from None
    except ValidationError as exc:
        raise _validation_error(exc, None, str(path)) from None
