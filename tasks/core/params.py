"""Pydantic models of params.yaml and its one loader.

The CLI loads params once and hands each stage only its own section; stage functions never
read params.yaml themselves. The manifest models (task.yaml) are in tasks/manifest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.core.errors import InputError
from tasks.core.manifest import Strict, validation_error

# ---------------------------------------------------------------------------------------
# params.yaml


UTC_FORMAT = "YYYY-MM-DDThh:mm:ssZ"


def parse_utc(text: str, where: str) -> datetime:
    """An ISO 8601 time in UTC (`2026-11-01T00:00:00Z`); anything else is refused, naming `where`."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a time; write it as {UTC_FORMAT}") from None
    if when.tzinfo is None or when.utcoffset() != timedelta(0):
        raise ValueError(f"{where}: {text!r} must be in UTC; write it as {UTC_FORMAT}")
    return when.astimezone(UTC)


class Phase(Strict):
    """One phase of the challenge: submissions are accepted from `start` (inclusive) to `end` (exclusive)."""

    name: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$", description="a slug, e.g. development")
    start: str = Field(description="UTC, YYYY-MM-DDThh:mm:ssZ")
    end: str | None = Field(None, description="UTC, exclusive; null: open-ended (only the last phase)")
    tasks: list[str] | None = Field(None, description="tasks open in this phase; null: every task of the challenge")
    max_per_day: int | None = Field(None, ge=1, description="replaces submit.max_per_day during this phase")
    max_total: int | None = Field(
        None, ge=1, description="accepted submissions per team within this phase; replaces submit.max_total"
    )

    @property
    def starts(self) -> datetime:
        return parse_utc(self.start, f"phase {self.name}: start")

    @property
    def ends(self) -> datetime | None:
        return None if self.end is None else parse_utc(self.end, f"phase {self.name}: end")

    def contains(self, when: datetime) -> bool:
        return self.starts <= when and (self.ends is None or when < self.ends)

    def dates(self) -> str:
        return f"{self.start} to {self.end or 'open-ended'}"


class ChallengeParams(Strict):
    name: str
    opens_at: str
    closed: bool = Field(
        False, description="true closes the challenge now: no submissions, no selection, private scores shown"
    )
    tasks: list[str]
    phases: list[Phase] = Field(
        default_factory=list,
        description="named phases in time order; empty: one open-ended phase from opens_at with every task",
    )

    @model_validator(mode="after")
    def _phases_in_order(self) -> ChallengeParams:
        parse_utc(self.opens_at, "challenge.opens_at")
        names = set()
        for k, phase in enumerate(self.phases):
            where = f"challenge.phases[{k}] ({phase.name})"
            if phase.name in names:
                raise ValueError(f"{where}: the name is used by an earlier phase; give each phase its own name")
            names.add(phase.name)
            starts, ends = phase.starts, phase.ends
            if ends is not None and ends <= starts:
                raise ValueError(f"{where}: end {phase.end} is not after start {phase.start}")
            if ends is None and k != len(self.phases) - 1:
                raise ValueError(f"{where}: only the last phase may be open-ended (end: null)")
            previous_end = self.phases[k - 1].ends if k else None  # not None: only the last phase is open-ended
            if previous_end is not None and starts < previous_end:
                raise ValueError(
                    f"{where}: starts at {phase.start}, before the previous phase ends ({self.phases[k - 1].end}); "
                    "list phases in time order without overlaps"
                )
            unknown = sorted(set(phase.tasks or ()) - set(self.tasks))
            if unknown:
                raise ValueError(f"{where}: tasks {unknown} are not in challenge.tasks")
        return self

    def schedule(self) -> list[Phase]:
        """The phases, or the implicit one: open from opens_at, with every task, for ever."""
        return list(self.phases) or [Phase(name="open", start=self.opens_at, end=None)]


class DemoParams(Strict):
    seed: int
    tasks: dict[str, dict[str, Any]]


class IngestParams(Strict):
    seed: int
    test_fraction: float = Field(gt=0, lt=1)
    public_fraction: float = Field(gt=0, lt=1, description="share of the test set scored on the public board")
    na_values: list[str]
    max_bad_image_share: float = Field(
        ge=0, le=1, description="share of rows whose image may be missing or unreadable; 0 refuses any"
    )
    max_image_pixels: int = Field(
        gt=0,
        description="an image whose header declares more pixels is refused before any is decoded (decompression bombs)",
    )
    max_image_mb: float = Field(gt=0, description="an image file larger than this (MiB) is refused before it is opened")
    max_group_share: float = Field(
        gt=0, le=1, description="matching: refuse a split when one connected group of pairs is larger than this share"
    )


class OrchestrationParams(Strict):
    """Read by flows/ only: how stages are scheduled, never what they compute."""

    concurrency: int = Field(2, ge=1, le=32, description="stages in flight at once on this machine")
    retries: int = Field(2, ge=0, description="per stage, for transient failures only")
    retry_delay_seconds: float = Field(10, ge=0)
    remote: str | None = Field(None, description="DVC remote: pull inputs before and push outputs after each stage")
    progress_every_s: float = Field(
        5,
        ge=0,
        description="seconds between two progress lines of a running stage (embedding, features, tuning); 0: none",
    )


class NightlyParams(Strict):
    cron: str
    timezone: str = Field(description="IANA name, e.g. UTC or Europe/Paris")
    inbox: str = Field(description="folder where uploads wait: <inbox>/<team>/<upload>")
    version: bool = Field(
        True, description="`dvc add` every submissions folder the intake changed (files enter DVC's cache)"
    )
    commit: bool = Field(description="git-commit the submissions' pointers at intake, and dvc.lock after the run")
    push: bool = Field(description="dvc push after each commit")


class ClipParams(Strict):
    """Which CLIP weights to use, and what to do when they cannot be had."""

    model: str = Field(description="open_clip model config name, e.g. ViT-B-32 (or one of tasks/model_configs)")
    pretrained: str | None = Field(
        description="an open_clip pretrained tag (e.g. laion2b_s34b_b79k) or a path to a local checkpoint; null = random init on purpose"
    )
    if_unavailable: Literal["random-init", "fail"] = Field(
        description="when the weights are not cached and cannot be downloaded"
    )
    random_init_model: str | None = Field(
        default=None,
        description="when the weights cannot be had and a random init is used: the (faster) model config to initialise instead of `model`; null: `model` itself",
    )
    seed: int = Field(default=0, description="seed of the random init, when it is used")
    offline: Literal["auto"] | bool = Field(
        default="auto",
        description="true: never touch the network; auto: offline when HF_HUB_OFFLINE is set or the hub is unreachable",
    )
    weights_dir: str | None = Field(
        default=None, description="download/cache folder for weights; null = the Hugging Face cache"
    )


class TextChoice(Strict):
    """Per task: which columns make the embedded text, and how they are joined."""

    columns: list[str] | None = Field(
        default=None,
        description="feature columns (any role but image); default: the task's text columns; [] = no text embedding",
    )
    template: str | None = Field(
        default=None,
        description="str.format template over the columns, e.g. '{title} by {brand}'; default: the card's text_template, else 'name: value; ...'",
    )


class EmbedCacheParams(Strict):
    enabled: bool = True
    dir: str = Field(
        default=".mmtc_cache/embeddings",
        description="content-addressed vectors; outside DVC outputs so that reruns keep it",
    )


class EmbedParams(Strict):
    clip: ClipParams
    device: Literal["auto", "cpu", "cuda"] = "auto"
    image_batch_size: int = Field(default=64, gt=0)
    text_batch_size: int = Field(default=256, gt=0)
    workers: Literal["auto"] | int = Field(
        default="auto",
        description="DataLoader processes decoding images while the model runs; auto: 1 on CPU (the model needs the cores), all cores but one on CUDA",
    )
    max_failed_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="per image column: share of rows with an image that may fail to decode before the stage fails",
    )
    text: dict[str, TextChoice] = Field(default_factory=dict, description="per-task text overrides")
    cache: EmbedCacheParams = EmbedCacheParams()

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: Literal["auto"] | int) -> Literal["auto"] | int:
        if v != "auto" and v < 0:
            raise ValueError("workers must be 'auto' or a count >= 0")
        return v


class SubmitParams(Strict):
    max_per_day: int = Field(ge=1, description="accepted submissions per team per UTC day")
    max_total: int = Field(ge=1, description="accepted submissions per team over the whole challenge")
    max_file_mb: float = Field(
        gt=0,
        description="size cap of one submitted file, checked while reading it (and of what a Parquet file unpacks to)",
    )
    max_description_chars: int = Field(ge=0)
    max_rejected_per_day: int = Field(
        20, ge=0, description="rejected submissions recorded per team per UTC day; past it a rejection is not recorded"
    )
    max_rejected_mb: float = Field(
        100,
        ge=0,
        description="stored bytes (MiB) of a team's rejected files; past it a rejection keeps its reasons, not its files",
    )


class EvaluateParams(Strict):
    threads: int = Field(ge=0, description="DuckDB threads; 0 lets DuckDB use every core")
    memory_limit: str = Field(description="DuckDB memory limit, e.g. '4GB'")


class BootstrapParams(Strict):
    reps: int = Field(default=1000, ge=0, description="resamples of the test items per task and part; 0: no intervals")
    seed: int = Field(default=0, description="seed of the resampling plan (the same plan for every team)")
    level: float = Field(default=0.95, gt=0, lt=1, description="coverage of every interval")


class LeaderboardParams(Strict):
    policy: Literal["best-public", "last"] = Field(description="which submission of a team counts per task")
    final_selections: int = Field(
        2,
        ge=1,
        description="submissions a team may mark as final before the close; its private rank uses the best of them",
    )
    bootstrap: BootstrapParams = Field(default_factory=BootstrapParams)
    aggregation: Literal["mean", "mean-rank", "borda"] = Field(
        default="mean", description="the official rule that ranks a track; the page shows the others beside it"
    )
    public_decimals: int = Field(
        default=3, ge=1, le=12, description="published public (and private) scores are rounded to this many decimals"
    )
    ladder: Literal["off", "fixed", "parameter-free"] = Field(
        default="off", description="Ladder mode (Blum and Hardt 2015): release a public score only when it improves"
    )
    ladder_step: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="fixed Ladder: the improvement needed, and the rounding of released scores",
    )


class ReevaluateParams(Strict):
    """How the portal's 're-evaluate now' button runs the evaluation (never two at once)."""

    deployment: str = Field(
        "nightly-reevaluation/nightly",
        description="<flow>/<deployment> started when a Prefect API is configured (PREFECT_API_URL)",
    )
    command: list[str] = Field(
        ["mmtc", "nightly"],
        min_length=1,
        description="without a Prefect API: this command (the nightly flow, once), run in a background worker from the project root",
    )


class PortalParams(Strict):
    """`mmtc portal`: the web portal of the challenge (tasks/portal/)."""

    host: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 serves every interface")
    port: int = Field(8000, ge=1, le=65535)
    data_dir: str = Field(
        ".portal",
        description="the portal's own files: teams and token hashes, the session key, write-ups, upload staging",
    )
    submissions: str = Field("submissions", description="where submit() stores submissions")
    public: str = Field("data/public", description="the public release (downloads, contracts)")
    results: str = Field(
        "results", description="scores read for the teams' history (public split only before the close)"
    )
    leaderboard: str = Field("leaderboard", description="the board's snapshots and pages")
    max_files_per_upload: int = Field(20, ge=1, description="task files in one upload (a zip counts its members)")
    sign_in_attempts: int = Field(10, ge=1, description="failed sign-ins per client address per window")
    sign_in_window_s: float = Field(60, gt=0)
    session_hours: float = Field(12, gt=0, description="a signed-in session lasts this long")
    secure_cookies: Literal["auto"] | bool = Field(
        "auto", description="auto: Secure cookies when the request came over TLS (or X-Forwarded-Proto: https)"
    )
    trust_forwarded: bool = Field(
        False, description="read the client address and scheme from X-Forwarded-* (behind a reverse proxy only)"
    )
    reevaluate: ReevaluateParams = ReevaluateParams()


class DemoTeamPlan(Strict):
    strategy: Literal["rules", "noisy-copy", "broken-then-majority"]
    days: list[int] = Field(min_length=1, description="day offsets after challenge.opens_at, one per submission")
    tasks: list[str] | None = Field(default=None, description="tasks covered; all when absent")
    noise: float = Field(default=0.0, ge=0, le=1)


class DemoTeamsParams(Strict):
    seed: int
    teams: dict[str, DemoTeamPlan]


# ---------------------------------------------------------------------------------------
# params.yaml: train


class SearchDimension(Strict):
    """One hyperparameter of the Optuna search space: a range (int or float, optionally log) or choices."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[str | int | float | bool | None] | None = None

    @model_validator(mode="after")
    def _complete(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs `choices`")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"a {self.type} dimension needs `low` <= `high`")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a range dimension (the validator made sure both are there)."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} dimension has no range")
        return self.low, self.high

    @property
    def options(self) -> list[str | int | float | bool | None]:
        """The choices of a categorical dimension (the validator made sure they are there)."""
        if self.choices is None:
            raise ValueError(f"a {self.type} dimension has no choices")
        return self.choices


class TrainBudget(Strict):
    """Tuning seconds: a total for the challenge, shared by the tasks in proportion to rows x classes."""

    challenge_s: float = Field(
        gt=0, description="tuning seconds of all tasks together (each task's study gets its share)"
    )
    task_floor_s: float = Field(ge=0, description="no task gets less, whatever its size")


class TrainParams(Strict):
    """The train stage: features, Optuna tuning and CatBoost, per task."""

    seed: int
    device: Literal["auto", "cpu", "gpu"] = Field("auto", description="auto: GPU when CUDA is present, else CPU")
    thread_count: int = Field(-1, description="CatBoost CPU threads; -1 = all cores")
    # validation inside train (test labels are never read)
    validation: Literal["holdout", "cv"] = "holdout"
    validation_fraction: float = Field(
        0.25, gt=0, lt=1, description="holdout: share of train (rows or pair groups) held out"
    )
    cv_folds: int = Field(3, ge=2)
    decision: Literal["checked", "tuned", "fixed"] = Field(
        "checked",
        description="the decision rule (matching threshold, class-prior power): tuned on the out-of-fold predictions, "
        "the fixed one (0.5, plain argmax), or checked: the tuned one only where tuning it on the other folds "
        "beats the fixed one on each held-out fold",
    )
    final_model: Literal["refit", "folds"] = Field(
        "refit",
        description="folds: the validated fold models averaged (cv) or the holdout model; refit: one model on all of train, its rounds scaled from validation",
    )
    # the Optuna study
    n_trials: int = Field(ge=1)
    budget: TrainBudget = Field(
        description="the time budget per task, its share of challenge_s by rows x classes (tasks/train/budget.py)"
    )
    storage: str | None = Field(
        None,
        description="None: in memory; else an Optuna RDB URL (sqlite:///..., postgresql://...) or journal:<path> for a journal file shared by workers",
    )
    pruning: bool = True
    pruning_warmup_iterations: int = Field(50, ge=0)
    tpe_startup_trials: int = Field(5, ge=1, description="random trials before TPE models the space")
    search_space: dict[str, SearchDimension]
    portfolio: list[dict[str, str | int | float | bool | None]] = Field(
        default_factory=list,
        description="configurations known to be good, tried after CatBoost's defaults and before TPE samples; keys are search_space dimensions",
    )
    ensemble_size: int = Field(
        25,
        ge=0,
        description="rounds of greedy ensemble selection over out-of-fold predictions (0 or 1: the best single member)",
    )
    ensemble_candidates: int = Field(
        8, ge=1, description="how many of the best trials keep their fold models as ensemble candidates"
    )
    ensemble_check: bool = Field(
        True,
        description="keep the greedy ensemble only where, selected on all folds but one, it beats CatBoost's "
        "defaults on the held-out fold (fold by fold); else the tuned baseline is the defaults",
    )
    # CatBoost
    max_iterations: int = Field(
        ge=1, description="upper bound of boosting rounds in tuning; early stopping picks the count"
    )
    early_stopping_rounds: int = Field(ge=1)
    default_iterations: int = Field(
        ge=1, description="iterations of the default-params baseline (CatBoost's own default is 1000)"
    )
    one_hot_max_size: int = Field(
        255,
        ge=1,
        description="categoricals with at most this many values are one-hot encoded instead of target statistics",
    )
    max_ctr_complexity: int = Field(1, ge=1)
    border_count: int = Field(
        32,
        ge=1,
        le=65535,
        description="histogram bins per numeric feature; CatBoost's 254 costs ~7x the time on multiclass tasks",
    )
    # features
    text_features: Literal["bow", "catboost", "none"] = Field(
        "bow",
        description="text columns as bag-of-words columns, as CatBoost text_features, or only through their embedding",
    )
    text_model: bool = Field(
        True,
        description="classification: out-of-fold class probabilities of a TF-IDF logistic regression on the text columns as features",
    )
    text_model_alpha: float = Field(
        1e-4, gt=0, description="L2 strength of the text model (SGD on the logistic loss over TF-IDF n-grams)"
    )
    bow_max_tokens: int = Field(
        100, ge=1, description="per text column: vocabulary size (bow) or CatBoost dictionary size"
    )
    bow_min_count: int = Field(2, ge=1)
    image_pca_dims: int = Field(
        16, ge=0, description="image embedding columns: PCA fitted on train; 0 keeps the whole vector"
    )
    text_pca_dims: int = Field(
        16, ge=0, description="text embedding columns: PCA fitted on train; 0 keeps the whole vector"
    )
    pair_vector_dims: int = Field(
        0,
        ge=0,
        description="matching: also give the element-wise product of both embeddings in this many PCA dims (0: cosines only)",
    )

    @model_validator(mode="after")
    def _portfolio_in_space(self) -> TrainParams:
        for k, config in enumerate(self.portfolio):
            for name, value in config.items():
                dim = self.search_space.get(name)
                where = f"train.portfolio[{k}].{name}"
                if dim is None:
                    raise ValueError(
                        f"{where}: not a dimension of train.search_space ({', '.join(sorted(self.search_space))})"
                    )
                if dim.type == "categorical":
                    if value not in dim.options:
                        raise ValueError(f"{where}: {value!r} is not one of {dim.choices}")
                elif not isinstance(value, (int, float)) or not dim.bounds[0] <= value <= dim.bounds[1]:
                    raise ValueError(f"{where}: {value!r} lies outside [{dim.low}, {dim.high}]")
        return self


class Params(BaseModel):
    """All of params.yaml, every section typed. Sections of stages not built yet pass through unchecked."""

    model_config = ConfigDict(extra="allow", frozen=True)
    challenge: ChallengeParams
    demo: DemoParams
    ingest: IngestParams
    embed: EmbedParams
    submit: SubmitParams
    evaluate: EvaluateParams
    leaderboard: LeaderboardParams
    demo_teams: DemoTeamsParams
    orchestration: OrchestrationParams
    nightly: NightlyParams
    train: TrainParams
    portal: PortalParams = PortalParams()


def load_params(path: Path = Path("params.yaml")) -> Params:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Params.model_validate(data)
    except FileNotFoundError:
        raise InputError(problem=f"{path} not found", fix="run from the project root or pass --params") from None
    except ValidationError as exc:
        raise validation_error(exc, None, str(path)) from None
