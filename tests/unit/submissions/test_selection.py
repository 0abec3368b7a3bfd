"""select_finals(): what it records, and what it refuses (after the close, another team's or a
rejected submission, too many); versions (last call wins); `mmtc select`."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from tasks import cli
from tasks.core.clock import NOW_ENV
from tasks.core.errors import InputError
from tasks.core.params import ChallengeParams
from tasks.core.schema import FINAL_DIR
from tasks.submissions.selection import current_selection, read_final_picks, select_finals
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts
from tests.conftest import ROOT
from tests.scoring_support import RELEASE, SUBMIT, TASKS, perfect, utc, write_predictions

CHALLENGE = ChallengeParams(
    name="c",
    opens_at="2026-11-01T00:00:00Z",
    tasks=TASKS,
    phases=[{"name": "development", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}],
)
BEFORE, AFTER = utc("2026-11-20T10:00:00Z"), utc("2026-12-01T00:00:00Z")


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(RELEASE / "public", TASKS)


@pytest.fixture
def stored(tmp_path, contracts):
    """Three accepted submissions of team-a, one of team-b, one rejected of team-a."""
    root = tmp_path / "submissions"
    ids = {}
    for n, (team, flip, when) in enumerate(
        [
            ("team-a", 1, "2026-11-02"),
            ("team-a", 2, "2026-11-03"),
            ("team-a", 3, "2026-11-04"),
            ("team-b", 4, "2026-11-06"),
        ]
    ):
        folder = tmp_path / f"p{n}"
        write_predictions(folder, "shop_kind", perfect(RELEASE / "private", "shop_kind", flip=flip))
        r = submit(
            folder, team, submissions_root=root, contracts=contracts, params=SUBMIT, now=utc(f"{when}T10:00:00Z")
        )
        assert r.accepted
        ids.setdefault(team, []).append(r.record.submission_id)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "shop_kind.csv").write_text("id,label\n")
    r = submit(
        bad, "team-a", submissions_root=root, contracts=contracts, params=SUBMIT, now=utc("2026-11-05T10:00:00Z")
    )
    assert not r.accepted
    ids["rejected"] = [r.record.submission_id]
    return root, ids


def select(root, team, ids, now=BEFORE, n=2):
    return select_finals(root, team, ids, challenge=CHALLENGE, max_selections=n, now=now)


def test_none_one_two_selected_each_call_a_new_read_only_version(stored):
    root, ids = stored
    assert read_final_picks(root) == {} and current_selection(root, "team-a") is None
    one = select(root, "team-a", ids["team-a"][:1])
    assert one.version == 1 and one.submission_ids == ids["team-a"][:1]
    assert read_final_picks(root) == {"team-a": ids["team-a"][:1]}
    two = select(root, "team-a", ids["team-a"][1:])
    assert two.version == 2 and read_final_picks(root) == {"team-a": ids["team-a"][1:]}, "last call wins"
    files = sorted((root / FINAL_DIR / "team-a").iterdir())
    assert [f.name for f in files] == ["0001.json", "0002.json"], "earlier versions are kept"
    assert all(not os.stat(f).st_mode & 0o222 for f in files), "recorded selections are read-only"
    assert json.loads(files[1].read_text())["selected_at"] == "2026-11-20T10:00:00Z"
    withdrawn = select(root, "team-a", [])
    assert withdrawn.version == 3 and read_final_picks(root) == {}, "an empty selection: the policy's pick again"


def test_a_selection_after_the_close_is_refused_and_records_nothing(stored):
    root, ids = stored
    with pytest.raises(InputError, match="the challenge is closed .*selections are frozen"):
        select(root, "team-a", ids["team-a"][:1], now=AFTER)
    closed = CHALLENGE.model_copy(update={"closed": True})
    with pytest.raises(InputError, match=r"challenge.closed is true"):
        select_finals(root, "team-a", ids["team-a"][:1], challenge=closed, max_selections=2, now=BEFORE)
    assert not (root / FINAL_DIR).exists()


def test_another_team_s_rejected_or_unknown_submissions_and_too_many_are_refused(stored):
    root, ids = stored
    with pytest.raises(InputError, match="is not an accepted submission of team 'team-a'"):
        select(root, "team-a", ids["team-b"])
    with pytest.raises(InputError, match="was rejected and is never scored"):
        select(root, "team-a", ids["rejected"])
    with pytest.raises(InputError, match="not a submission id"):
        select(root, "team-a", ["../team-b/" + ids["team-b"][0]])
    with pytest.raises(InputError, match="at most 2"):
        select(root, "team-a", ids["team-a"])
    with pytest.raises(InputError, match="more than once"):
        select(root, "team-a", [ids["team-a"][0]] * 2)
    with pytest.raises(InputError, match="reserved"):
        select(root, "baseline-x", [])
    assert select(root, "team-a", ids["team-a"], n=3).version == 1, "the limit is the param's"
    assert len(list((root / FINAL_DIR / "team-a").iterdir())) == 1, "refusals record nothing"


def test_mmtc_select(stored, tmp_path, capsys, monkeypatch):
    root, ids = stored
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["challenge"]["phases"] = [p.model_dump() for p in CHALLENGE.phases]
    params["challenge"]["tasks"] = TASKS
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--params", str(tmp_path / "params.yaml"), "select", "--team", "team-a", "--submissions", str(root)]
    monkeypatch.setenv(NOW_ENV, "2026-11-20T10:00:00Z")
    assert cli.main(argv + ids["team-a"][:2]) == 0
    assert f"final selection version 1 at 2026-11-20T10:00:00Z: {ids['team-a'][0]}, {ids['team-a'][1]}" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv(NOW_ENV, "2026-12-01T00:00:00Z")
    assert cli.main(argv + ids["team-a"][:1]) == 2
    assert "final selections are frozen" in capsys.readouterr().err
    shutil.rmtree(root / FINAL_DIR)
