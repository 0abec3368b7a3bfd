"""`mmtc leaderboard` and the schedule: the board shows the phase and when it ends; the end of
the last phase closes it (private scores shown) and the final selections then decide."""

from __future__ import annotations

import pyarrow.parquet as pq
import yaml

from tasks import cli
from tasks.core.clock import NOW_ENV
from tasks.core.schema import FINAL_DIR
from tests.conftest import ROOT
from tests.unit.board.test_leaderboard import TASKS, score_rows, write_results

ROWS = (
    score_rows("a", "20261102T100000Z-00000001", "2026-11-02T10:00:00Z", "m1", 0.90, 0.50)
    + score_rows("a", "20261103T100000Z-00000002", "2026-11-03T10:00:00Z", "m1", 0.70, 0.80)
    + score_rows("b", "20261102T110000Z-00000003", "2026-11-02T11:00:00Z", "m1", 0.80, 0.60)
)


def setup(tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["challenge"]["tasks"] = [t.task for t in TASKS]
    params["challenge"]["phases"] = [
        {"name": "development", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        {"name": "final", "start": "2026-12-01T00:00:00Z", "end": "2026-12-15T00:00:00Z"},
    ]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write_results(tmp_path / "results", ROWS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "submissions").mkdir()


def board(tmp_path, now, monkeypatch) -> tuple[str, list[dict]]:
    monkeypatch.setenv(NOW_ENV, now)
    assert cli.main(["--params", "params.yaml", "leaderboard", "--quiet"]) == 0
    rows = pq.read_table(tmp_path / "leaderboard" / "latest.parquet").to_pylist()
    return (tmp_path / "leaderboard" / "latest.md").read_text(), [r for r in rows if r["level"] == "task"]


def test_the_board_shows_the_phase_and_closes_at_the_end_of_the_last(tmp_path, monkeypatch):
    setup(tmp_path, monkeypatch)
    md, rows = board(tmp_path, "2026-11-20T00:00:00Z", monkeypatch)
    assert "**phase development (ends 2026-12-01T00:00:00Z)**" in md
    assert "final: 2026-12-01T00:00:00Z to 2026-12-15T00:00:00Z" in md
    assert all(r["private"] is None for r in rows), "open: private scores hidden"
    html = (tmp_path / "leaderboard" / "latest.html").read_text()
    assert 'id="schedule"' in html and "phase development (ends 2026-12-01T00:00:00Z)" in html

    md, _ = board(tmp_path, "2026-12-02T00:00:00Z", monkeypatch)
    assert "**phase final (ends 2026-12-15T00:00:00Z)**" in md, "a new phase makes a new snapshot"

    # team a marks its second submission final before the close, through the CLI
    monkeypatch.setenv(NOW_ENV, "2026-12-10T00:00:00Z")
    (tmp_path / "submissions" / "a" / "20261103T100000Z-00000002").mkdir(parents=True)
    (tmp_path / "submissions" / "a" / "20261103T100000Z-00000002" / "submission.json").write_text("{}")
    assert cli.main(["--params", "params.yaml", "select", "--team", "a", "20261103T100000Z-00000002"]) == 0
    assert (tmp_path / "submissions" / FINAL_DIR / "a" / "0001.json").is_file()

    md, rows = board(tmp_path, "2026-12-15T00:00:00Z", monkeypatch)
    assert "closed (the last phase, final, ended 2026-12-15T00:00:00Z)" in md and "The challenge is **closed**" in md
    a = next(r for r in rows if r["team"] == "a")
    assert a["submission_id"] == "20261103T100000Z-00000002" and a["private"] == 0.80, "its final selection counts"
    b = next(r for r in rows if r["team"] == "b")
    assert b["private"] == 0.60, "a team without a selection: the policy's pick, private revealed"
