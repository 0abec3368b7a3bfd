"""The real pipeline under real DVC on a copy of the repository: full run, no-op rerun,
and a change to one task reruns that task only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tasks.core.schema import CANONICAL_SUFFIX
from tests.conftest import CORPUS
from tests.integration.conftest import ALWAYS_RUN, run, stages_run
from tests.stage_deps import ROOT, TASKS, stage_code, uncovered

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def tasks_of(repo):
    return yaml.safe_load((repo / "params.yaml").read_text())["challenge"]["tasks"]


@pytest.fixture(scope="module")
def built(built_repo):
    return built_repo


def test_every_stage_used_only_code_its_deps_cover(built_demo):
    """On the real run: every module loaded and every file opened under tasks/ (SQL, templates,
    model configs) by each stage's process lies inside that stage's deps in dvc.yaml."""
    by_command = {s.command: s for s in stage_code()}
    records = [json.loads(p.read_text()) for p in sorted(built_demo.audit.glob("*.json"))]
    seen = set()
    for record in records:
        stage = by_command.get(record["argv"][0]) if record["argv"] else None
        if stage is None:
            continue
        seen.add(stage.stage)
        used = [Path(f).resolve() for f in record["modules"] + record["opened"]]
        files = [f.relative_to(ROOT).as_posix() for f in used if f.is_relative_to(TASKS) and f.is_file()]
        assert not uncovered(files, stage.deps), (
            f"{stage.stage} ({' '.join(record['argv'])}) used {uncovered(files, stage.deps)} outside its deps {stage.deps}"
        )
    assert seen == {s.stage for s in stage_code()}, f"no record of {sorted({s.stage for s in stage_code()} - seen)}"


def test_first_run_builds_every_task(built):
    repo, output = built
    for task in tasks_of(repo):
        assert f"ingest@{task}" in stages_run(output)
        assert (repo / "data" / "public" / task / "card.json").is_file()
        assert (repo / "data" / "private" / task / "test_labels.parquet").is_file()


def test_second_run_is_a_no_op(built):
    repo, _ = built
    again = run(["dvc", "repro"], repo)
    # resolve_weights always runs (cheap): it notices weights that appeared or changed in the caches
    assert stages_run(again.stdout) <= ALWAYS_RUN
    assert "didn't change, skipping" in again.stdout


def test_no_public_file_carries_a_test_label(built):
    repo, _ = built
    for task in tasks_of(repo):
        public, private = repo / "data" / "public" / task, repo / "data" / "private" / task
        hidden = pq.read_table(private / "test_labels.parquet")
        key = hidden.column_names[0]
        for stem in ("test", "test_pairs"):
            if (public / f"{stem}.parquet").exists():
                assert "label" not in pq.read_schema(public / f"{stem}.parquet").names
                header = (public / f"{stem}.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
                assert "label" not in header and key in header
        test_ids = set(hidden.column(key).to_pylist())
        for path in public.rglob("*.parquet"):
            table = pq.read_table(path)
            if "label" in table.column_names:  # train tables only: their rows are not test rows
                own_ids = set(table.column(key).to_pylist()) if key in table.column_names else set()
                assert not own_ids & test_ids, path
        card = json.loads((public / "card.json").read_text())
        assert "test_counts" not in json.dumps(card)


def nightly(repo: Path) -> dict:
    """The nightly flow, end to end (Prefect's temporary server), in its own process."""
    code = "from flows.nightly import nightly_reevaluation; import json; print('OUTCOME', json.dumps(nightly_reevaluation(repo='.')))"
    result = run(["python", "-c", code], repo)
    line = next(s for s in result.stdout.splitlines() if s.startswith("OUTCOME "))
    return json.loads(line.removeprefix("OUTCOME "))


def tree_bytes(root: Path, *folders: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for folder in folders
        for p in sorted((root / folder).rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_the_nightly_intake_versions_every_upload_and_a_fresh_clone_rebuilds_the_same_board(built, tmp_path):
    """Uploads of five kinds wait in the inbox; the nightly flow (nightly.commit and push) records
    each one (or keeps it, for the link), versions them with DVC, commits the pointers and
    dvc.lock, pushes to a local remote; a fresh clone pulls and `dvc repro` gives the same board."""
    repo, _ = built
    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "-d", "backup", str(remote)], repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["nightly"] |= {"commit": True, "push": True}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "the built demo, a backup remote, nightly commit and push"], repo)

    source = max(p for p in (repo / "submissions" / "one-rule").iterdir() if p.is_dir())
    inbox = repo / params["nightly"]["inbox"]
    (inbox / "late-team" / "full-try").mkdir(parents=True)
    for f in source.iterdir():
        if f.suffix in (".csv", ".parquet") and not f.name.endswith(CANONICAL_SUFFIX):  # the files as sent
            shutil.copy(f, inbox / "late-team" / "full-try" / f.name)
    shutil.copy(source / "car_class.csv", inbox / "late-team" / "car_class.csv")  # a name that is not a slug
    (inbox / "late-team" / "broken.csv").write_text("id,label\n")
    (inbox / "Bad_Team").mkdir()
    shutil.copy(source / "car_class.csv", inbox / "Bad_Team" / "car_class.csv")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(source / "car_class.csv", outside / "car_class.csv")
    (inbox / "linked-team").symlink_to(outside, target_is_directory=True)
    uploads = 5

    outcome = nightly(repo)
    intake = outcome["intake"]
    assert sorted(intake["accepted"]) == ["late-team/car_class.csv", "late-team/full-try"], intake
    assert sorted(intake["rejected"]) == ["Bad_Team/car_class.csv", "late-team/broken.csv"], intake
    assert len(intake["kept_for_retry"]) == 1 and intake["kept_for_retry"][0].startswith("linked-team: a link")
    lost = uploads - len(intake["accepted"]) - len(intake["rejected"]) - len(intake["kept_for_retry"])
    assert lost == 0
    assert (inbox / "linked-team").is_symlink() and (outside / "car_class.csv").is_file(), "never followed nor deleted"
    assert not any((inbox / "late-team").iterdir()) and not any((inbox / "Bad_Team").iterdir())
    assert outcome["recorded"].startswith("committed and pushed"), outcome

    # versioned: the pointers are in git history, the files in DVC's cache and the remote
    log = run(["git", "log", "--format=%s", "-n", "3"], repo).stdout
    assert "Intake " in log and "2 accepted, 2 rejected" in log and "Nightly re-evaluation" in log
    tracked = run(["git", "ls-files", "submissions"], repo).stdout.split()
    assert {"submissions/late-team.dvc", "submissions/_rejected/late-team.dvc"} <= set(tracked)
    assert "submissions/_rejected/_invalid-team.dvc" in tracked
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout.strip() == ""
    assert "in sync" in run(["dvc", "status", "--cloud"], repo).stdout
    board = (repo / "leaderboard" / "latest.md").read_text()
    assert "late-team" in board

    # a fresh clone: dvc pull, dvc repro; the same submissions and the same board, byte for byte
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull", "-q"], clone)
    folders = ("submissions/late-team", "submissions/_rejected/late-team", "submissions/_rejected/_invalid-team")
    original = tree_bytes(repo, *folders)
    assert len(original) >= 12 and tree_bytes(clone, *folders) == original
    print(f"submissions restored byte-identical: {len(original)} files")
    repro = run(["dvc", "repro"], clone)
    assert stages_run(repro.stdout) <= ALWAYS_RUN | {"evaluate"}, repro.stdout  # the score cache is not versioned
    # and rebuilt from the versioned data: scores and board again, from the submissions pulled
    run(["dvc", "repro", "--force", "--single-item", "evaluate"], clone)
    run(["dvc", "repro", "--force", "--single-item", "leaderboard"], clone)
    board_files = ("leaderboard",)
    assert tree_bytes(clone, *board_files) == tree_bytes(repo, *board_files), "the board rebuilt from versioned data"
    assert (clone / "results" / "scores.parquet").read_bytes() == (repo / "results" / "scores.parquet").read_bytes()


def test_changing_one_generator_reruns_that_task_only(built):
    repo, _ = built
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["demo"]["tasks"]["product_type"]["n_items"] += 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = run(["dvc", "repro"], repo).stdout
    ran = stages_run(output)
    assert ran and all(stage.endswith("@product_type") or "@" not in stage for stage in ran), ran
    assert {"demo@product_type", "ingest@product_type"} <= ran


def budgets(repo: Path) -> dict[str, float]:
    folder = repo / "data" / "train_budget"
    return {p.stem: json.loads(p.read_text())["seconds"] for p in folder.glob("*.json")}


def test_add_task_ingests_only_the_new_task(built, tmp_path):
    repo, _ = built
    new = tmp_path / "shop_items"
    shutil.copytree(CORPUS / "broken" / "missing_image", new)
    (new / "items.csv").write_text((new / "items.csv").read_text().replace("img/nope.png", "img/a3.png"))
    (new / "task.yaml").write_text((new / "task.yaml").read_text().replace("missing_image", "shop_items"))
    (new / "expect.json").unlink()
    before = budgets(repo)
    out = run(["mmtc", "add-task", str(new)], repo).stdout
    assert "shop_items: added" in out
    assert (repo / "contributions" / "shop_items.dvc").is_file()
    assert "shop_items" in tasks_of(repo)
    ran = stages_run(run(["dvc", "repro"], repo).stdout)
    assert {s for s in ran if s.startswith(("ingest@", "embed@"))} == {"ingest@shop_items", "embed@shop_items"}
    # the challenge's tuning budget is shared anew: a task retrains only when its share changed
    after = budgets(repo)
    changed = {task for task, seconds in before.items() if after[task] != seconds}
    assert all(
        s.endswith("@shop_items") or "@" not in s or (s.startswith("train@") and s.split("@")[1] in changed)
        for s in ran
    ), (ran, changed)
    assert {f"train@{task}" for task in changed} <= ran
    # a new version of the contribution reruns that task again, and only it
    (new / "items.csv").write_text((new / "items.csv").read_text().replace("12.5", "13.5"))
    run(["mmtc", "add-task", str(new), "--replace"], repo)
    ran = stages_run(run(["dvc", "repro"], repo).stdout)
    assert {s for s in ran if s.startswith("ingest@")} == {"ingest@shop_items"}


def test_add_task_refuses_a_broken_contribution(built):
    repo, _ = built
    result = run(["mmtc", "add-task", str(CORPUS / "broken" / "ragged_rows")], repo, check=False)
    assert result.returncode == 2
    assert "lines 4, 7" in result.stderr and "Fix:" in result.stderr
    assert "ragged_rows" not in tasks_of(repo)


def test_a_broken_contribution_stops_only_its_own_task(built):
    repo, _ = built
    contribution = repo / "contributions" / "shop_items"
    (contribution / "items.csv").write_text((contribution / "items.csv").read_text().replace("13.5", "thirteen"))
    run(["dvc", "add", "contributions/shop_items"], repo)
    # every task re-ingests (forced, that stage alone: the others rebuild the same release, so
    # nothing downstream of them reruns), shop_items from its broken contribution
    ingests = [f"ingest@{task}" for task in tasks_of(repo)]
    result = run(["dvc", "repro", "--keep-going", "--force", "--single-item", *ingests], repo, check=False)
    assert result.returncode != 0
    assert "column 'Price'" in result.stdout + result.stderr and "thirteen" in result.stdout + result.stderr
    ran = stages_run(result.stdout)
    for task in tasks_of(repo):
        if task != "shop_items":
            assert f"ingest@{task}" in ran
            assert (repo / "data" / "public" / task / "card.json").is_file()
    # the real pipeline (`mmtc run`, the Prefect flow): every other task is scored and ranked,
    # the board names the missing task and why, and the exit status says a task failed
    flow = run(["mmtc", "run"], repo, check=False)
    assert flow.returncode == 1, flow.stdout[-3000:] + flow.stderr[-3000:]
    assert "ingest@shop_items" in flow.stderr and "failed" in flow.stderr
    report = json.loads((repo / "results" / "evaluation.json").read_text())
    assert set(report["task_order"]) == set(tasks_of(repo)) - {"shop_items"}
    assert "its ingest failed" in report["unreleased"]["shop_items"]
    board = (repo / "leaderboard" / "latest.md").read_text()
    assert "**Not on the board: shop_items**" in board
    rows = pq.read_table(repo / "leaderboard" / "latest.parquet").to_pylist()
    assert {r["task"] for r in rows if r["level"] == "task"} == set(report["task_order"])
    assert any(r["team"] == "one-rule" for r in rows), "the demo teams still submitted to the other tasks"
