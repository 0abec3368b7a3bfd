"""After an evaluation: the board and the history show public scores only until the close, a
disqualified submission leaves the board at the next run, and the sample submission is accepted."""

from __future__ import annotations

import io
import os

import yaml

from tasks import cli
from tests.unit.portal.conftest import sign_in


def evaluate_and_rank(project) -> None:
    cwd = os.getcwd()
    os.chdir(project)
    try:
        args = ["--params", "params.yaml"]
        assert cli.main([*args, "evaluate", "--public", "data/public", "--private", "data/private"]) == 0
        assert cli.main([*args, "leaderboard", "--quiet"]) == 0
    finally:
        os.chdir(cwd)


def upload(client, token, files):
    return client.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {token}"},
        files=[("file", (n, io.BytesIO(b))) for n, b in files.items()],
    )


def test_scores_reach_history_and_board_without_private_scores_before_the_close(client, tokens, project):
    sample = (project / "data" / "public" / "shop_kind" / "sample_submission.csv").read_bytes()
    got = client.get("/release/shop_kind/sample_submission.csv")
    assert got.status_code == 200 and got.content == sample
    r = upload(client, tokens["alpha"], {"shop_kind.csv": sample})
    assert r.status_code == 201, r.text
    sid = r.json()["submission_id"]
    evaluate_and_rank(project)
    entry = client.get(f"/api/v1/submissions/{sid}", headers={"Authorization": f"Bearer {tokens['alpha']}"}).json()
    assert entry["status"] == "scored" and set(entry["scores"]["shop_kind"]) == {"metric", "public"}
    board = client.get("/api/v1/board").json()
    teams = [r["team"] for t in board["tracks"] for r in t["rows"]]
    assert "alpha" in teams and "private" not in str(board).replace("private scores are hidden", "")
    page = client.get("/board").text
    assert 'data-team="alpha"' in page
    sign_in(client, tokens["alpha"])
    assert "/ " not in client.get("/history").text.split('id="history"')[1].split("</table>")[0].replace("</", "")


def test_a_disqualified_submission_leaves_the_board_at_the_next_run_and_comes_back(client, tokens, project):
    from tasks.core.moderation import decide

    sample = (project / "data" / "public" / "shop_kind" / "sample_submission.csv").read_bytes()
    sid = upload(client, tokens["alpha"], {"shop_kind.csv": sample}).json()["submission_id"]
    evaluate_and_rank(project)
    assert "alpha" in client.get("/api/v1/board").text
    decide(project / "submissions", f"alpha/{sid}", "disqualify", by="_organiser", reason="test")
    evaluate_and_rank(project)
    rows = [r for t in client.get("/api/v1/board").json()["tracks"] for r in t["rows"] if r["team"] == "alpha"]
    assert rows == []
    decide(project / "submissions", f"alpha/{sid}", "reinstate", by="_organiser")
    evaluate_and_rank(project)
    assert "alpha" in client.get("/api/v1/board").text


def test_private_scores_show_once_the_challenge_is_closed_without_a_restart(client, project, tokens):
    sample = (project / "data" / "public" / "shop_kind" / "sample_submission.csv").read_bytes()
    sid = upload(client, tokens["alpha"], {"shop_kind.csv": sample}).json()["submission_id"]
    evaluate_and_rank(project)
    auth = {"Authorization": f"Bearer {tokens['alpha']}"}
    assert set(client.get(f"/api/v1/submissions/{sid}", headers=auth).json()["scores"]["shop_kind"]) == {
        "metric",
        "public",
    }
    data = yaml.safe_load((project / "params.yaml").read_text())
    data["challenge"]["closed"] = True
    (project / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    evaluate_and_rank(project)
    entry = client.get(f"/api/v1/submissions/{sid}", headers=auth).json()
    assert set(entry["scores"]["shop_kind"]) == {"metric", "public", "private"}
    assert client.get("/api/v1/board").json()["closed"] is True
    (project / "params.yaml").write_text("challenge: [broken")  # a typo while editing: the portal keeps going
    assert client.get("/api/v1/board").json()["closed"] is True
