"""The inbox: uploads waiting as `<inbox>/<team>/<upload>` (a file or a folder of task files),
taken in through `submit()` so that every one ends as a record, accepted or rejected.

The rules, each because an upload must never be lost:

* an upload leaves the inbox only after its record (`submission.json` or `rejection.json`) is on
  disk; a submit that crashes puts it back where it was, and the report says why;
* a run killed at any point loses no upload and records none twice: each upload is claimed
  (`inbox/.intake/`) before it is submitted, and the next run finishes the claims first;
* the submission's name is derived from the upload's name (`car_class.csv` -> `car-class`), so a
  name can never be the cause of a rejection;
* a team folder whose name is not a team (not a slug, reserved) gives a *recorded* rejection, kept
  under `submissions/_rejected/_invalid-team/` with the name as given;
* a link anywhere (the inbox itself, a team folder, an upload, an entry inside an upload folder)
  is refused: never followed, never deleted, reported until an organiser removes it;
* names starting with a dot are skipped (uploads still being written, editor files) and reported.

`take_in()` changes only `submissions/` and the inbox; versioning what it wrote is
`version_folders()` (DVC and git), called by `mmtc intake` and the nightly flow.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tasks.core.errors import InputError
from tasks.core.files import fsync_dir
from tasks.core.params import Phase, SubmitParams
from tasks.core.schema import FINAL_DIR, REJECTION_META, SUBMISSION_META
from tasks.submissions.submit import SubmitResult, check_team, record_refused, submit
from tasks.submissions.validate import TaskContract


@dataclass
class UploadOutcome:
    upload: str  # relative to the inbox, as found (escaped when shown)
    status: str  # accepted | rejected | kept
    reason: str = ""
    record: str | None = None  # the record folder, relative to submissions/

    def line(self) -> str:
        where = f" -> {self.record}" if self.record else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{self.status} {ascii(self.upload)[1:-1]}{where}{why}"


@dataclass
class IntakeReport:
    outcomes: list[UploadOutcome] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # folders under submissions/ that gained a record

    def of(self, status: str) -> list[UploadOutcome]:
        return [o for o in self.outcomes if o.status == status]

    def summary(self) -> str:
        head = (
            f"intake: {len(self.of('accepted'))} accepted, {len(self.of('rejected'))} rejected (both recorded), "
            f"{len(self.of('kept'))} kept in the inbox"
        )
        return "\n".join([head, *("  " + o.line() for o in self.outcomes)])

    def as_dict(self) -> dict:
        return {
            "accepted": [o.upload for o in self.of("accepted")],
            "rejected": [o.upload for o in self.of("rejected")],
            "kept_for_retry": [f"{o.upload}: {o.reason}" for o in self.of("kept")],
            "changed": list(self.changed),
        }


def _is_link(path: Path) -> bool:
    return stat.S_ISLNK(os.lstat(path).st_mode)


def _link_inside(upload: Path) -> str | None:
    """The first link (or non-regular entry) inside an upload folder, never following one."""
    for dirpath, dirnames, filenames in os.walk(upload, followlinks=False):
        for name in sorted(dirnames + filenames):
            mode = os.lstat(Path(dirpath) / name).st_mode
            if stat.S_ISLNK(mode):
                return str((Path(dirpath) / name).relative_to(upload))
    return None


CLAIMS_DIR = ".intake"  # inbox/.intake/<claim>/: uploads being taken in (see `_claim`)
CLAIM_META = "claim.json"
CLAIM_FILES = "files"


def take_in(
    inbox: Path,
    submissions_root: Path,
    *,
    contracts: dict[str, TaskContract],
    params: SubmitParams,
    now: datetime,
    phases: Sequence[Phase] | None = None,
    closed: bool = False,
    reserved_teams: Sequence[str] = (),
    submit_fn: Callable[..., SubmitResult] = submit,
) -> IntakeReport:
    """Submit every upload of `inbox` at time `now`; see the module's rules. `reserved_teams`
    (the demo teams, whose folders are DVC stage outputs) are refused like a bad team name.

    Uploads that an interrupted run had claimed (`inbox/.intake/`) are finished first, at the time
    and state of that run, so that a kill between the record and the upload's removal never
    records an upload twice."""
    inbox, root = Path(inbox), Path(submissions_root)
    report = IntakeReport()
    if not os.path.lexists(inbox):
        return report
    if _is_link(inbox) or not inbox.is_dir():
        report.outcomes.append(UploadOutcome(".", "kept", "the inbox is a link or not a folder: nothing taken in"))
        return report
    intake = _Intake(inbox, root, contracts, params, phases, reserved_teams, submit_fn, report)
    intake.recover()
    for team_dir in sorted(inbox.iterdir()):
        shown = team_dir.name
        if shown == CLAIMS_DIR:
            if _is_link(team_dir) or not team_dir.is_dir():
                report.outcomes.append(
                    UploadOutcome(shown, "kept", "the intake's own folder is a link or a file: ignored")
                )
            continue
        if _is_link(team_dir):
            report.outcomes.append(UploadOutcome(shown, "kept", "a link: refused, neither followed nor deleted"))
            continue
        if shown.startswith("."):
            report.outcomes.append(UploadOutcome(shown, "kept", "a hidden name: skipped"))
            continue
        if not team_dir.is_dir():
            report.outcomes.append(UploadOutcome(shown, "kept", "not inside a team folder: move it to <team>/"))
            continue
        for upload in sorted(team_dir.iterdir()):
            report.outcomes.append(intake.take_one(upload, team_dir.name, now, closed))
    return report


@dataclass
class _Intake:
    """One run of the intake over one inbox.

    An upload is first *claimed*: moved (one rename) into `inbox/.intake/<claim>/files/`, beside a
    `claim.json` written before it that holds the team, the upload's name and the run's time and
    state. It is submitted from there and the claim removed once its record is on disk. A run
    killed anywhere leaves the upload in its team folder or in a claim, never nowhere; the next
    run resubmits a claim with the claim's time, which gives the same submission id, so a record
    already made is found (`duplicate`) instead of made twice."""

    inbox: Path
    root: Path
    contracts: dict[str, TaskContract]
    params: SubmitParams
    phases: Sequence[Phase] | None
    reserved_teams: Sequence[str]
    submit_fn: Callable[..., SubmitResult]
    report: IntakeReport

    def take_one(self, upload: Path, team: str, now: datetime, closed: bool) -> UploadOutcome:
        shown = f"{team}/{upload.name}"
        if _is_link(upload):
            return UploadOutcome(shown, "kept", "a link: refused, neither followed nor deleted")
        if upload.name.startswith("."):
            return UploadOutcome(shown, "kept", "a hidden name (an upload still being written?): skipped")
        if upload.is_dir():
            link = _link_inside(upload)
            if link is not None:
                return UploadOutcome(
                    shown, "kept", f"holds a link ({ascii(link)[1:-1]}): refused, neither followed nor deleted"
                )
        claim = self._claim(upload, team, now, closed)
        return self._finish(claim, team, upload.name, now, closed)

    def recover(self) -> None:
        """Finish the claims an interrupted run left, oldest first."""
        claims = self.inbox / CLAIMS_DIR
        if not os.path.lexists(claims) or _is_link(claims) or not claims.is_dir():
            return
        for claim in sorted(claims.iterdir()):
            meta = claim / CLAIM_META
            files = claim / CLAIM_FILES
            held = sorted(files.iterdir()) if files.is_dir() else []
            if not held:  # killed before the upload moved in, or after its record and removal began
                _remove_claim(claim)
                continue
            state = json.loads(meta.read_text())  # written whole before the upload moved in
            when = datetime.fromisoformat(state["taken_at"])
            outcome = self._finish(claim, state["team"], held[0].name, when, state["closed"])
            outcome.reason = "; ".join(filter(None, ["finished after an interrupted intake", outcome.reason]))
            self.report.outcomes.append(outcome)

    def _claim(self, upload: Path, team: str, now: datetime, closed: bool) -> Path:
        claims = self.inbox / CLAIMS_DIR
        claims.mkdir(exist_ok=True)
        claim = claims / f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
        claim.mkdir()
        state = {"team": team, "upload": upload.name, "taken_at": now.isoformat(), "closed": closed}
        with open(claim / CLAIM_META, "x") as f:
            json.dump(state, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        (claim / CLAIM_FILES).mkdir()
        os.rename(upload, claim / CLAIM_FILES / upload.name)
        fsync_dir(upload.parent)
        return claim

    def _finish(self, claim: Path, team: str, name: str, now: datetime, closed: bool) -> UploadOutcome:
        """Submit the claimed upload; on a record, remove the claim, otherwise put the upload back."""
        shown = f"{team}/{name}"
        source = claim / CLAIM_FILES / name
        try:
            result = self._submit(source, team, now, closed)
        except Exception as exc:
            return self._put_back(claim, team, name, f"submit crashed ({type(exc).__name__}: {exc})")
        if not result.recorded:
            return self._put_back(
                claim,
                team,
                name,
                "the team's daily cap of rejected submissions (submit.max_rejected_per_day) is reached",
            )
        meta = SUBMISSION_META if result.accepted else REJECTION_META
        if not (result.folder / meta).is_file():
            return self._put_back(claim, team, name, f"no record found at {result.folder}")
        _remove_claim(claim)
        record = result.folder.relative_to(self.root).as_posix()
        parent = result.folder.parent.relative_to(self.root).as_posix()
        if parent not in self.report.changed:
            self.report.changed.append(parent)
        reason = "" if result.accepted else "; ".join(e.problem for e in result.errors)[:300]
        return UploadOutcome(shown, "accepted" if result.accepted else "rejected", reason, record)

    def _submit(self, source: Path, team: str, now: datetime, closed: bool) -> SubmitResult:
        kwargs: dict = dict(submissions_root=self.root, contracts=self.contracts, params=self.params, now=now)
        try:
            check_team(team)
            if team in self.reserved_teams:
                raise InputError(
                    problem=f"the team name '{team}' is reserved for a demo team", fix="choose another team name"
                )
        except InputError as problem:
            return record_refused(source, team, [problem], team_folder=team not in self.reserved_teams, **kwargs)
        try:
            return self.submit_fn(source, team, phases=self.phases, closed=closed, **kwargs)
        except InputError as exc:  # an empty folder, an unreadable name: still recorded
            return record_refused(source, team, [exc], **kwargs)

    def _put_back(self, claim: Path, team: str, name: str, why: str) -> UploadOutcome:
        """Return an unrecorded upload to its team folder (under a fresh name if the team has sent
        another of the same name meanwhile), to be taken in by a later run at that run's time."""
        source = claim / CLAIM_FILES / name
        team_dir = self.inbox / team
        team_dir.mkdir(exist_ok=True)
        target = team_dir / name
        if os.path.lexists(target):
            stem = name.split(".", 1)[0]
            retry = next(
                team_dir / f"{stem}-retry-{n}"
                for n in range(1, 10_000)
                if not os.path.lexists(team_dir / f"{stem}-retry-{n}")
            )
            if source.is_dir():
                target = retry
            else:
                retry.mkdir()
                target = retry / name
        os.rename(source, target)
        fsync_dir(target.parent)
        _remove_claim(claim)
        shown = target.relative_to(self.inbox).as_posix()
        return UploadOutcome(shown, "kept", f"{why}; kept for the next run")


def _remove_claim(claim: Path) -> None:
    """Files first, then the claim's state, then the folder: a claim with files always has its state."""
    shutil.rmtree(claim / CLAIM_FILES, ignore_errors=True)
    (claim / CLAIM_META).unlink(missing_ok=True)
    claim.rmdir()


# --- versioning: DVC's cache and remote, the pointers in git ----------------------------------------


def folders_to_version(submissions_root: Path, changed: Sequence[str], outputs: Sequence[str]) -> list[Path]:
    """The team folders to `dvc add`: those the intake changed, and every team's selections.

    `outputs` are folders (relative to submissions_root) that DVC stages write (baselines, demo
    teams): DVC versions those through dvc.lock, so they are left out."""
    root = Path(submissions_root)
    wanted = set(changed)
    final = root / FINAL_DIR
    if final.is_dir():
        wanted |= {f"{FINAL_DIR}/{p.name}" for p in final.iterdir() if p.is_dir() and not p.is_symlink()}
    skip = set(outputs)
    return [root / w for w in sorted(wanted) if w not in skip and not any(w.startswith(o + "/") for o in skip)]


def version_folders(repo: Path, folders: Sequence[Path], message: str, *, commit: bool, push: bool) -> str:
    """`dvc add` the folders (their files enter DVC's cache), then optionally commit the pointers
    (`<folder>.dvc` and the .gitignore beside it) and `dvc push` them. Returns what was done."""
    if not folders:
        return "nothing to version"
    repo = Path(repo)
    rel = [str(Path(f).resolve().relative_to(repo.resolve())) for f in folders]
    _run(["dvc", "add", "--quiet", *rel], repo)
    done = f"dvc add of {len(rel)} folder(s)"
    if commit:
        pointers = [f"{r}.dvc" for r in rel] + sorted({str(Path(r).parent / ".gitignore") for r in rel})
        _run(["git", "add", "--", *pointers], repo)
        staged = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=repo)
        if staged.returncode != 0:
            _run(["git", "commit", "--quiet", "-m", message], repo)
            done += ", committed"
    if push:
        _run(["dvc", "push", "--quiet", *[f"{r}.dvc" for r in rel]], repo)
        done += ", pushed"
    return done


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed (exit {result.returncode}): {result.stderr.strip()[-800:]}")
