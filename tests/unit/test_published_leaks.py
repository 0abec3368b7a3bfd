"""A scan of everything published after a challenge round: the release (data/public/), the board
(leaderboard/: latest.{parquet,csv,md,html} and every snapshot), the Prefect artifact of the
nightly flow (the board's "Changes" section) and the logs of the run (what submit, evaluate and
leaderboard print). It proves that no published file maps test keys to their labels, that no
private score is published while the challenge is open, and it probes the public scores with
submissions that differ from another in one row.

The release is built here with keys that cannot occur by chance in a page (LKC-0001-T, ...), so a
key found anywhere outside the release's own test tables is a leak, whatever the file format.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.board.render import write_latest
from tasks.board.snapshots import SNAPSHOTS_DIR, update_leaderboard
from tasks.core.params import EvaluateParams, LeaderboardParams, load_params
from tasks.scoring.evaluate import evaluate
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts
from tests.conftest import ROOT
from tests.scoring_support import SUBMIT, utc

N_TEST = 300  # 150 public rows: one changed row moves a public accuracy by 0.0067
CLASSES = ["alpha", "beta", "gamma"]
SEED = 15


def make_release(root: Path) -> tuple[Path, Path, dict[str, dict[str, object]]]:
    """A classification and a matching task, their test keys distinctive; returns the truth."""
    rng = np.random.default_rng(SEED)
    public, private = root / "public", root / "private"
    truth: dict[str, dict[str, object]] = {}
    split = ["public" if i % 2 == 0 else "private" for i in range(N_TEST)]
    for task, kind in (("leak_items", "classification"), ("leak_pairs", "matching")):
        (public / task).mkdir(parents=True)
        (private / task).mkdir(parents=True)
        card = {
            "task_id": task,
            "type": kind,
            "track": kind,
            "primary_metric": "macro_f1" if kind == "classification" else "f1",
            "title": task,
            "features": {"title": "text"},
            "classes": {"classes": CLASSES if kind == "classification" else [0, 1]},
        }
        (public / task / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        if kind == "classification":
            keys = [f"LKC-{i:04d}-T" for i in range(N_TEST)]
            labels = [CLASSES[int(c)] for c in rng.integers(0, 3, N_TEST)]
            pq.write_table(
                pa.table({"id": keys, "title": [f"item {i}" for i in range(N_TEST)]}), public / task / "test.parquet"
            )
            pq.write_table(
                pa.table({"id": keys, "label": labels, "split": split}), private / task / "test_labels.parquet"
            )
        else:
            keys = [f"LKP-{i:04d}-P" for i in range(N_TEST)]
            labels = [int(x) for x in rng.random(N_TEST) < 0.3]
            pairs = {
                "pair_id": keys,
                "left_id": [f"L{i}" for i in range(N_TEST)],
                "right_id": [f"R{i}" for i in range(N_TEST)],
            }
            pq.write_table(pa.table(pairs), public / task / "test_pairs.parquet")
            hidden = pa.table({"pair_id": keys, "label": pa.array(labels, pa.int8()), "split": split})
            pq.write_table(hidden, private / task / "test_labels.parquet")
        truth[task] = dict(zip(keys, labels))
    return public, private, truth


def predictions(task: str, truth: dict[str, object], rng: np.random.Generator, right: float) -> dict[str, list]:
    keys = list(truth)
    if task == "leak_items":
        guess = [CLASSES[int(c)] for c in rng.integers(0, 3, len(keys))]
        labels = [truth[k] if rng.random() < right else g for k, g in zip(keys, guess)]
        return {"id": keys, "label": labels}
    labels = [int(truth[k]) if rng.random() < right else int(rng.random() < 0.3) for k in keys]
    return {"pair_id": keys, "label": labels, "score": [round(float(x), 4) for x in rng.random(len(keys))]}


def write(folder: Path, task: str, columns: dict[str, list]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), folder / f"{task}.parquet")
    return folder


class Round:
    """One challenge round in a temporary folder: submit, evaluate, publish; logs captured."""

    def __init__(self, root: Path, board: LeaderboardParams):
        self.root = root
        self.public, self.private, self.truth = make_release(root / "data")
        self.contracts = load_contracts(self.public, list(self.truth))
        self.board_params = board
        self.logs: list[str] = []
        self.day = 0

    def send(self, team: str, task: str, columns: dict[str, list]) -> None:
        self.day += 1
        folder = write(self.root / "uploads" / f"{team}-{self.day}", task, columns)
        result = submit(
            folder,
            team,
            submissions_root=self.root / "submissions",
            contracts=self.contracts,
            params=SUBMIT.model_copy(update={"max_per_day": 100, "max_total": 1000}),
            now=utc(f"2026-11-{1 + self.day // 20:02d}T{self.day % 20:02d}:00:00Z"),
        )
        assert result.accepted, result.summary()
        self.logs.append(result.summary())

    def publish(self) -> None:
        tasks = list(self.truth)
        report = evaluate(
            self.root / "submissions",
            self.public,
            self.private,
            tasks,
            self.root / "results",
            EvaluateParams(threads=2, memory_limit="1GB"),
        )
        self.logs.append(report.summary())
        out = io.StringIO()
        with redirect_stdout(out):
            result = update_leaderboard(
                self.root / "results",
                self.root / "leaderboard",
                self.board_params,
                challenge_name="leak scan",
                closed=False,
                now=utc(f"2026-11-{1 + self.day // 20:02d}T23:00:00Z"),
                code={"commit": "test"},
                weights={"status": "test"},
                params_used={},
            )
            write_latest(result, self.root / "leaderboard")
        self.logs.append(result.summary() + out.getvalue())

    def published_files(self) -> list[Path]:
        return sorted(p for p in (self.public, self.root / "leaderboard") for p in p.rglob("*") if p.is_file())

    def board_numbers(self, team: str) -> list:
        """Every published number of a team's rows: the board's Parquet, as stored."""
        board = pq.read_table(self.root / "leaderboard" / "latest.parquet").to_pylist()
        return sorted(
            json.dumps({k: v for k, v in row.items() if isinstance(v, float)}, sort_keys=True)
            for row in board
            if row["team"] == team
        )


def as_text(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    return path.read_bytes().decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def challenge(tmp_path_factory) -> Round:
    params = load_params(ROOT / "params.yaml").leaderboard.model_copy(
        update={"bootstrap": load_params(ROOT / "params.yaml").leaderboard.bootstrap.model_copy(update={"reps": 50})}
    )
    game = Round(tmp_path_factory.mktemp("leaks"), params)
    rng = np.random.default_rng(SEED + 1)  # not the release's draws
    for team, right in (("careful", 0.8), ("sloppy", 0.5), ("guesser", 0.0)):
        for task, truth in game.truth.items():
            game.send(team, task, predictions(task, truth, rng, right))
    game.publish()
    return game


def test_no_published_file_maps_a_test_key_to_its_label(challenge):
    """Test keys appear only in the release's own test tables, and no column there agrees with the
    hidden labels more often than the majority class does."""
    key_pattern = re.compile(r"LK[CP]-\d{4}-[TP]")
    own_tables = {"test.parquet", "test_pairs.parquet", "test.csv", "test_pairs.csv"}
    texts = {p: as_text(p) for p in challenge.published_files()}
    texts[Path("prefect-artifact:leaderboard-changes")] = _changes_artifact(challenge.root)
    texts[Path("logs")] = "\n".join(challenge.logs)
    assert len(texts) >= 8, sorted(map(str, texts))
    for path, text in texts.items():
        if path.name in own_tables and path.is_relative_to(challenge.public):
            continue
        found = key_pattern.findall(text)
        assert not found, f"{path} names test keys: {found[:3]}"
    for task, truth in challenge.truth.items():
        table = pq.read_table(
            challenge.public / task / ("test.parquet" if task == "leak_items" else "test_pairs.parquet")
        )
        key = table.column_names[0]
        labels = [str(truth[k]) for k in table.column(key).to_pylist()]
        majority = max(labels.count(c) for c in set(labels)) / len(labels)
        for column in table.column_names[1:]:
            values = [str(v) for v in table.column(column).to_pylist()]
            agree = np.mean([v == y for v, y in zip(values, labels)])
            assert agree <= majority, f"{task}: column {column} agrees with the hidden labels on {agree:.0%}"


def test_no_private_score_is_published_while_the_challenge_is_open(challenge):
    scores = pq.read_table(challenge.root / "results" / "scores.parquet").to_pylist()
    private = {r["value"] for r in scores if r["split"] == "private"}
    public = {r["value"] for r in scores if r["split"] != "private"}
    only_private = {v for v in private - public if v not in (0.0, 1.0)}
    assert only_private, "the round must have private scores to look for"
    for path in challenge.published_files():
        if path.suffix != ".parquet" or not path.is_relative_to(challenge.root / "leaderboard"):
            continue
        rows = pq.read_table(path).to_pylist()
        for row in rows:
            for name, value in row.items():
                if isinstance(value, float) and value in only_private:
                    pytest.fail(f"{path.name}: column {name} publishes a private score ({value}) while open")
                if name.startswith("private") and value is not None:
                    pytest.fail(f"{path.name}: column {name} is set while the challenge is open")
    assert (challenge.root / "leaderboard" / SNAPSHOTS_DIR).is_dir()


def _changes_artifact(root: Path) -> str:
    """The Markdown the nightly flow publishes as its Prefect artifact (flows/nightly.py)."""
    from flows.nightly import _changes_markdown

    return _changes_markdown(root)


def test_public_scores_are_published_rounded(challenge):
    decimals = challenge.board_params.public_decimals
    for row in pq.read_table(challenge.root / "leaderboard" / "latest.parquet").to_pylist():
        for name, value in row.items():
            if isinstance(value, float) and name.startswith("public"):
                assert round(value, decimals) == value, f"{name} = {value!r} is not rounded to {decimals} decimals"


def test_a_submission_of_one_changed_row_reveals_no_test_label(tmp_path):
    """Given a team's submission S and, one at a time, S with one public row changed, when each is
    scored and published under the Ladder, then the team's published numbers are the same after
    every probe: the change tells nothing about that row's label."""
    base = load_params(ROOT / "params.yaml").leaderboard
    params = base.model_copy(
        update={"ladder": "fixed", "ladder_step": 0.01, "bootstrap": base.bootstrap.model_copy(update={"reps": 0})}
    )
    game = Round(tmp_path, params)
    rng = np.random.default_rng(SEED + 1)  # not the release's draws
    task = "leak_items"
    preds = predictions(task, game.truth[task], rng, 0.6)
    game.send("prober", task, preds)
    game.publish()
    before = game.board_numbers("prober")
    keys = list(game.truth[task])
    # the probes a prober learns most from: a wrong public row (even positions) set to its true
    # label, so that the public score rises by one row (1/150) each time, without a defence
    wrong = [i for i in range(0, N_TEST, 2) if preds["label"][i] != game.truth[task][keys[i]]][:4]
    assert len(wrong) == 4
    for row in wrong:
        probe = {k: list(v) for k, v in preds.items()}
        probe["label"][row] = game.truth[task][keys[row]]
        game.send("prober", task, probe)
        game.publish()
        after = game.board_numbers("prober")
        assert after == before, f"one changed row ({keys[row]}) moved the published numbers"
