"""What each team got wrong: per-class precision, recall and F1 and the confusion matrix against
sklearn on the released part, matching precision and recall at the team's threshold and its PR
curve; only the public part while the challenge is open."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_curve, precision_recall_fscore_support

from tests.board_support import TEAMS, scored_board
from tests.scoring_support import perfect


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    out = {}
    for closed in (False, True):
        root = tmp_path_factory.mktemp("closed" if closed else "open")
        out[closed] = (root, scored_board(root, closed=closed))
    return out


def released(root, task: str, closed: bool, flip: int):
    labels = pq.read_table(root / "release" / "private" / task / "test_labels.parquet").to_pylist()
    key = "id" if task == "shop_kind" else "pair_id"
    pred = dict(zip(*perfect(root / "release" / "private", task, flip=flip).values()))
    rows = [r for r in labels if closed or r["split"] == "public"]
    return [r["label"] for r in rows], [pred[r[key]] for r in rows]


@pytest.mark.parametrize("closed", [False, True])
def test_per_class_scores_and_the_confusion_matrix_match_sklearn(boards, closed):
    root, result = boards[closed]
    item = next(i for i in result.diagnostics["beta"] if i["task"] == "shop_kind")
    assert item["parts"] == ("public and private" if closed else "public")
    truth, pred = released(root, "shop_kind", closed, TEAMS["beta"][1]["shop_kind"])
    classes = [c["class"] for c in item["classes"]]
    p, r, f, s = precision_recall_fscore_support(truth, pred, labels=classes, zero_division=0)
    for c, pp, rr, ff, ss in zip(item["classes"], p, r, f, s):
        assert (c["precision"], c["recall"], c["f1"], c["support"]) == (round(pp, 3), round(rr, 3), round(ff, 3), ss)
    rows = item["matrix"]["rows"]
    full = confusion_matrix(truth, pred, labels=classes).tolist()
    assert item["matrix"]["counts"] == [full[classes.index(a)] for a in rows]


def test_matching_scores_at_the_threshold_and_the_pr_curve(boards):
    root, result = boards[False]
    item = next(i for i in result.diagnostics["beta"] if i["task"] == "same_item")
    truth, pred = released(root, "same_item", False, TEAMS["beta"][1]["same_item"])
    p, r, _, _ = precision_recall_fscore_support(truth, pred, average="binary", zero_division=0)
    assert (item["at_threshold"]["precision"], item["at_threshold"]["recall"]) == (round(p, 3), round(r, 3))
    score = [0.8 if v == 1 else 0.3 for v in pred]
    precision, recall, thresholds = precision_recall_curve(truth, score)
    expected = {
        (round(float(t), 3), round(float(pp), 3), round(float(rr), 3))
        for t, pp, rr in zip(thresholds, precision, recall)
    }
    assert {(c["threshold"], c["precision"], c["recall"]) for c in item["curve"]} == expected


def test_a_team_sees_only_its_own_submission_and_no_hidden_part_while_open(boards):
    root, result = boards[False]
    assert set(result.diagnostics) == {"alpha", "beta", "gamma", "delta", "baseline-oracle"}
    assert [i["task"] for i in result.diagnostics["delta"]] == ["shop_kind"], "only the tasks it submitted"
    html = (root / "leaderboard" / "latest.html").read_text()
    section = html[html.index('id="team-delta"') : html.index("</section>", html.index('id="team-delta"'))]
    assert "same_item" not in section and "(public)" in section
