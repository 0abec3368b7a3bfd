"""The inbox: uploads waiting as `<inbox>/<team>/<upload>` (a file or a folder of task files),
taken in through `submit()` so that every one ends as a record, accepted or rejected.

The rules, each because an upload must never be lost:

* an upload leaves the inbox only after its record (`submission.json` or `rejection.json`) is on
  disk; a submit that crashes leaves it where it is, and the report says why;
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

import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tasks.core.errors import InputError
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
    (the demo teams, whose folders are DVC stage outputs) are refused like a bad team name."""
    inbox, root = Path(inbox), Path(submissions_root)
    report = IntakeReport()
    if not os.path.lexists(inbox):
        return report
    if _is_link(inbox) or not inbox.is_dir():
        report.outcomes.append(UploadOutcome(".", "kept", "the inbox is a link or not a folder: nothing taken in"))
        return report
    for team_dir in sorted(inbox.iterdir()):
        shown = team_dir.name
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
            report.outcomes.append(
                _take_one(
                    upload,
                    team_dir.name,
                    root,
                    contracts,
                    params,
                    now,
                    phases,
                    closed,
                    reserved_teams,
                    submit_fn,
                    report,
                )
            )
    return report


def _take_one(
    upload: Path,
    team: str,
    root: Path,
    contracts: dict[str, TaskContract],
    params: SubmitParams,
    now: datetime,
    phases: Sequence[Phase] | None,
    closed: bool,
    reserved_teams: Sequence[str],
    submit_fn: Callable[..., SubmitResult],
    report: IntakeReport,
) -> UploadOutcome:
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
    try:
        problem = None
        try:
            check_team(team)
            if team in reserved_teams:
                raise InputError(
                    problem=f"the team name '{team}' is reserved for a demo team", fix="choose another team name"
                )
        except InputError as exc:
            problem = exc
        if problem is not None:
            result = record_refused(
                upload,
                team,
                [problem],
                submissions_root=root,
                contracts=contracts,
                params=params,
                now=now,
                team_folder=team not in reserved_teams,
            )
        else:
            try:
                result = submit_fn(
                    upload,
                    team,
                    submissions_root=root,
                    contracts=contracts,
                    params=params,
                    now=now,
                    phases=phases,
                    closed=closed,
                )
            except InputError as exc:  # an empty folder, an unreadable name: still recorded
                result = record_refused(
                    upload, team, [exc], submissions_root=root, contracts=contracts, params=params, now=now
                )
    except Exception as exc:
        return UploadOutcome(shown, "kept", f"submit crashed ({type(exc).__name__}: {exc}); kept for the next run")
    meta = SUBMISSION_META if result.accepted else REJECTION_META
    if not (result.folder / meta).is_file():
        return UploadOutcome(shown, "kept", f"no record found at {result.folder}; kept for the next run")
    if upload.is_dir():
        shutil.rmtree(upload)
    else:
        upload.unlink()
    record = result.folder.relative_to(root).as_posix()
    parent = result.folder.parent.relative_to(root).as_posix()
    if parent not in report.changed:
        report.changed.append(parent)
    reason = "" if result.accepted else "; ".join(e.problem for e in result.errors)[:300]
    return UploadOutcome(shown, "accepted" if result.accepted else "rejected", reason, record)


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
