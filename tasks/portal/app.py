"""The portal's FastAPI app: participants' pages, organisers' pages and the JSON API.

`create_app(params, root)` builds it; `mmtc portal` serves it with uvicorn. It writes only
under its data paths: `portal.data_dir` (teams, session key, staging, caches) and, through
submit() and the moderation log, `portal.submissions`. Uploads are stored only by submit().
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import nh3
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from markdown_it import MarkdownIt
from markupsafe import Markup
from pydantic import BaseModel, Field
from slugify import slugify
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tasks.core.clock import challenge_state, utc_now
from tasks.core.errors import InputError
from tasks.core.moderation import decide, history
from tasks.core.params import Params
from tasks.core.schema import CARD, FINAL_DIR, SAMPLE_SUBMISSION
from tasks.portal import views
from tasks.portal.live import LiveParams
from tasks.portal.reevaluate import AlreadyRunning, DeploymentRunner, Reevaluator
from tasks.portal.schedule import edit_challenge
from tasks.portal.security import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, RateLimiter, Signer, load_key
from tasks.portal.teams import Identity, TeamStore
from tasks.portal.uploads import UploadRefused, receive
from tasks.portal.versioning import Versioner
from tasks.submissions.selection import current_selection, select_finals
from tasks.submissions.submit import SLUG, SUBMISSION_ID, SubmitResult, check_team, submit
from tasks.submissions.validate import TaskContract, load_contracts

TEMPLATES = Path(__file__).parent / "templates"
API = "/api/v1"
PAGE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
BOARD_PAGE_CSP = (  # the board's own static page: its inline scripts draw the plots
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)
WRITEUP_TAGS = {
    "p",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
}
DOCS_CSP = (  # FastAPI's Swagger UI page loads its script and style from a CDN, and starts with an inline script
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; style-src https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'"
)
TOKEN_CACHE_S = 60


class FinalsBody(BaseModel):
    submission_ids: list[str] = Field(description="accepted submissions of your team; [] withdraws the selection")


@dataclass
class Paths:
    root: Path
    data: Path
    submissions: Path
    public: Path
    results: Path
    leaderboard: Path

    @classmethod
    def of(cls, params: Params, root: Path) -> Paths:
        root = Path(root).resolve()
        p = params.portal
        return cls(
            root,
            (root / p.data_dir).resolve(),
            (root / p.submissions).resolve(),
            (root / p.public).resolve(),
            (root / p.results).resolve(),
            (root / p.leaderboard).resolve(),
        )


@dataclass
class Portal:
    params: LiveParams
    paths: Paths
    store: TeamStore
    signer: Signer
    limiter: RateLimiter
    reevaluator: Reevaluator
    versioner: Versioner
    env: jinja2.Environment
    contracts: dict[str, tuple[int, TaskContract]] = field(default_factory=dict)
    token_cache: dict[str, tuple[float, Identity]] = field(default_factory=dict)
    board_cache: tuple[tuple, dict | None] | None = None

    # --- the challenge's contracts, reloaded when a card changes ---------------------------------

    def task_contracts(self) -> dict[str, TaskContract]:
        out = {}
        for task in self.params.challenge.tasks:
            card = self.paths.public / task / CARD
            stamp = card.stat().st_mtime_ns if card.is_file() else -1
            cached = self.contracts.get(task)
            if cached is None or cached[0] != stamp:
                cached = (stamp, load_contracts(self.paths.public, [task])[task])
                self.contracts[task] = cached
            out[task] = cached[1]
        return out


def sweep_staging(folder: Path, older_than_s: float = 3600) -> None:
    """Uploads left half-received by a portal that stopped: nothing of them was stored (only
    submit() stores), so their staging folders go. Recent ones may belong to another portal process."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if time.time() - entry.lstat().st_mtime > older_than_s:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def render_markdown(text: str) -> Markup:
    """A team's write-up: CommonMark with raw HTML off, then an allow-list sanitiser (links http(s)/mailto only)."""
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(text or "")
    clean = nh3.clean(
        html,
        tags=WRITEUP_TAGS,
        attributes={"a": {"href", "title"}, "th": {"align"}, "td": {"align"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)


def create_app(
    initial: Params,
    root: Path = Path("."),
    params_path: Path | None = None,
    deployments: DeploymentRunner | None = None,
) -> FastAPI:
    """The portal over the project at `root`. With `params_path`, params are read again when that
    file changes (the `portal:` section itself is read once, at the start). `deployments`: where
    "re-evaluate now" starts the nightly deployment (None: the configured command, in a worker)."""
    paths = Paths.of(initial, root)
    params = LiveParams(params_path, initial)
    paths.data.mkdir(parents=True, exist_ok=True)
    sweep_staging(paths.data / "staging")
    settings = params.portal
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["markdown"] = render_markdown
    portal = Portal(
        params,
        paths,
        TeamStore(paths.data),
        Signer(load_key(paths.data)),
        RateLimiter(settings.sign_in_attempts, settings.sign_in_window_s),
        Reevaluator(paths.data, paths.root, settings.reevaluate.command, settings.reevaluate.deployment, deployments),
        Versioner(
            paths.root,
            paths.submissions,
            enabled=lambda: params.nightly.version,
            commit=lambda: params.nightly.commit,
            push=lambda: params.nightly.push,
        ),
        env,
    )
    app = FastAPI(
        title=f"{params.challenge.name}: portal API",
        description="Upload submissions, list yours, read the board. Authenticate with `Authorization: Bearer <team token>`.",
        version="1",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.portal = portal

    # --- plumbing -------------------------------------------------------------------------------

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        csp = DOCS_CSP if request.url.path == app.docs_url else PAGE_CSP
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def state():
        return challenge_state(params.challenge, utc_now())

    def closed_now() -> bool:
        """Closed by challenge.closed or by the end of the last phase: private scores are shown."""
        return state().closed

    def phase_rows() -> list[dict]:
        now = state()
        return [
            {
                "name": p.name,
                "start": p.start,
                "end": p.end or "no end set",
                "tasks": p.tasks or ["every task"],
                "max_per_day": p.max_per_day or params.submit.max_per_day,
                "open": now.phase is not None and now.phase.name == p.name,
            }
            for p in params.challenge.schedule()
        ]

    def client_key(request: Request) -> str:
        if settings.trust_forwarded and request.headers.get("x-forwarded-for"):
            return request.headers["x-forwarded-for"].split(",")[0].strip()
        return request.client.host if request.client else "unknown"

    def is_tls(request: Request) -> bool:
        if settings.secure_cookies != "auto":
            return bool(settings.secure_cookies)
        if settings.trust_forwarded and request.headers.get("x-forwarded-proto"):
            return request.headers["x-forwarded-proto"].split(",")[0].strip() == "https"
        return request.url.scheme == "https"

    def session_identity(request: Request) -> Identity | None:
        found = portal.signer.read_session(request.cookies.get(SESSION_COOKIE))
        return portal.store.identity(*found) if found else None

    def csrf_value(request: Request) -> tuple[str, str | None]:
        """(csrf token for forms, a new csrf cookie to set or None)."""
        cookie = request.cookies.get(CSRF_COOKIE)
        new = None
        if not cookie or len(cookie) > 100:
            cookie = new = secrets.token_hex(32)
            request.state.csrf_cookie = cookie
        return portal.signer.csrf(cookie, request.cookies.get(SESSION_COOKIE)), new

    def check_csrf(request: Request, given: object) -> None:
        """`given`: the form's field as parsed (a str, or an UploadFile when forged as a file)."""
        if not portal.signer.check_csrf(
            given if isinstance(given, str) else None,
            request.cookies.get(CSRF_COOKIE),
            request.cookies.get(SESSION_COOKIE),
        ):
            raise HTTPException(
                403, "the form's CSRF token is missing or does not match: reload the page and try again"
            )

    def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", secure=is_tls(request), path="/"
        )

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        who = getattr(request.state, "identity", None) or session_identity(request)
        token, new_cookie = csrf_value(request)
        html = env.get_template(template).render(
            challenge=params.challenge,
            who=who,
            team=portal.store.get(who.name) if who and not who.organiser else None,
            csrf_field=CSRF_FIELD,
            csrf=token,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if new_cookie:
            set_cookie(response, request, CSRF_COOKIE, new_cookie, None)
        return response

    def need_session(request: Request, organiser: bool = False) -> Identity:
        who = session_identity(request)
        if who is None:
            raise HTTPException(303, headers={"Location": "/signin"})
        if organiser and not who.organiser:
            raise HTTPException(403, "this page is for the organisers")
        request.state.identity = who
        return who

    def need_team(request: Request) -> Identity:
        who = need_session(request)
        if who.organiser:
            raise HTTPException(403, "the organisers' token has no team: sign in with a team token to submit")
        return who

    def bearer(request: Request) -> Identity:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(
                401, "send `Authorization: Bearer <team token>`", headers={"WWW-Authenticate": "Bearer"}
            )
        key = client_key(request)
        wait = portal.limiter.blocked_for(key)
        if wait:
            raise HTTPException(
                429, f"too many failed sign-ins; try again in {wait:.0f} s", headers={"Retry-After": str(int(wait) + 1)}
            )
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = portal.token_cache.get(digest)
        who = None
        if cached and cached[0] > time.monotonic():
            who = portal.store.identity(cached[1].name, cached[1].fingerprint)  # still enabled, same token
        if who is None:
            who = portal.store.authenticate(token)
            if who is None:
                portal.limiter.failed(key)
                raise HTTPException(
                    401,
                    "the token is not valid (wrong, rotated, or the team is disabled)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if len(portal.token_cache) > 10_000:
                portal.token_cache.clear()
            portal.token_cache[digest] = (time.monotonic() + TOKEN_CACHE_S, who)
        return who

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 303:
            return RedirectResponse((exc.headers or {})["Location"], status_code=303)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return page(request, "message.html.j2", status=exc.status_code, title="Not possible", message=exc.detail)

    # --- uploads: the one path into submit() ------------------------------------------------------

    async def take_upload(request: Request, who: Identity, form: bool) -> SubmitResult:
        stage = portal.paths.data / "staging" / f"{who.name}-{uuid.uuid4().hex}"
        stage.mkdir(parents=True)
        try:
            received = await receive(
                request.headers.get("content-type"),
                request.headers.get("content-length"),
                request.stream(),
                stage,
                params.submit.max_file_mb,
                settings.max_files_per_upload,
            )
            if form:
                check_csrf(request, received.fields.get(CSRF_FIELD))
            name = received.fields.get("name", "").strip()
            if not name:
                stem = Path(received.names[0]).stem if len(received.names) == 1 else "upload"
                name = slugify(stem, max_length=40) or "upload"
                name = name if SLUG.match(name) else "upload"
            description = received.fields.get("description", "").strip()
            contracts = portal.task_contracts()
            result = await run_in_threadpool(
                submit,
                received.folder,
                who.name,
                submissions_root=portal.paths.submissions,
                contracts=contracts,
                params=params.submit,
                name=name,
                description=description,
                now=utc_now(),
                phases=params.challenge.schedule(),
                closed=params.challenge.closed,
            )
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        portal.versioner.changed(result.folder.parent.relative_to(portal.paths.submissions).as_posix())
        return result

    def result_json(result: SubmitResult) -> dict:
        r = result.record
        return {
            "accepted": result.accepted,
            "status": "accepted" if result.accepted else "rejected",
            "duplicate": result.duplicate,
            "team": r.team,
            "submission_id": r.submission_id,
            "name": r.name,
            "submitted_at": r.submitted_at,
            "tasks": r.tasks,
            "rows": result.rows,
            "reasons": [
                {k: v for k, v in e.as_record().items() if k in ("message", "problem", "fix", "task", "file", "column")}
                for e in result.errors
            ],
            "url": f"/history/{r.submission_id}",
        }

    def find_submission(team: str, submission_id: str) -> dict:
        if not SUBMISSION_ID.match(submission_id):
            raise HTTPException(404, "no such submission")
        for entry in views.team_submissions(portal.paths.submissions, portal.paths.results, team, closed_now()):
            if entry["submission_id"] == submission_id:
                return entry
        raise HTTPException(404, "no such submission of your team")

    # --- participants' pages ----------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request):
        cards = views.release_cards(portal.paths.public, params.challenge.tasks)
        return page(
            request,
            "overview.html.j2",
            cards=cards,
            limits=params.submit,
            policy=params.leaderboard.policy,
            phases=phase_rows(),
            state=state().line(),
            final_selections=params.leaderboard.final_selections,
        )

    @app.get("/release/{task}.zip", include_in_schema=False)
    def release(task: str):
        if task not in params.challenge.tasks or not (portal.paths.public / task / CARD).is_file():
            raise HTTPException(404, "no such task in the release")
        path = views.release_zip(portal.paths.public, task, portal.paths.data / "release-cache")
        return FileResponse(path, media_type="application/zip", filename=f"{task}.zip")

    @app.get("/release/{task}/" + SAMPLE_SUBMISSION, include_in_schema=False)
    def sample(task: str):
        path = portal.paths.public / task / SAMPLE_SUBMISSION
        if task not in params.challenge.tasks or not path.is_file():
            raise HTTPException(404, "no sample submission for this task")
        return FileResponse(path, media_type="text/csv", filename=f"{task}.csv")

    @app.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    def signin_form(request: Request):
        return page(request, "signin.html.j2", error=None)

    @app.post("/signin", include_in_schema=False)
    async def signin(request: Request):
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        key = client_key(request)
        wait = portal.limiter.blocked_for(key)
        if wait:
            return page(
                request,
                "signin.html.j2",
                status=429,
                error=f"Too many failed sign-ins from your address: try again in {wait:.0f} s.",
            )
        who = await run_in_threadpool(portal.store.authenticate, str(form.get("token", "")).strip())
        if who is None:
            portal.limiter.failed(key)
            return page(
                request,
                "signin.html.j2",
                status=401,
                error="That token is not valid (wrong, rotated, or the team is disabled).",
            )
        response = RedirectResponse("/admin" if who.organiser else "/history", status_code=303)
        seconds = int(settings.session_hours * 3600)
        set_cookie(
            response, request, SESSION_COOKIE, portal.signer.session(who.name, who.fingerprint, seconds), seconds
        )
        return response

    @app.post("/signout", include_in_schema=False)
    async def signout(request: Request):
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_form(request: Request):
        need_team(request)
        return page(
            request,
            "upload.html.j2",
            tasks=params.challenge.tasks,
            limits=params.submit,
            max_files=settings.max_files_per_upload,
        )

    @app.post("/upload", include_in_schema=False)
    async def upload(request: Request):
        who = need_team(request)
        try:
            result = await take_upload(request, who, form=True)
        except UploadRefused as exc:
            return page(request, "message.html.j2", status=exc.status, title="Upload refused", message=exc.message)
        except InputError as exc:
            return page(request, "message.html.j2", status=400, title="Upload refused", message=str(exc))
        return RedirectResponse(f"/history/{result.record.submission_id}", status_code=303)

    @app.get("/history", response_class=HTMLResponse, include_in_schema=False)
    def history_page(request: Request):
        who = need_team(request)
        entries = views.team_submissions(portal.paths.submissions, portal.paths.results, who.name, closed_now())
        return page(request, "history.html.j2", **history_context(who.name, entries))

    def history_context(team: str, entries: list[dict], notice: str | None = None) -> dict:
        selection = current_selection(portal.paths.submissions, team)
        return {
            "entries": entries,
            "closed": closed_now(),
            "finals": selection.submission_ids if selection else [],
            "finals_at": selection.selected_at if selection else None,
            "max_finals": params.leaderboard.final_selections,
            "state": state().line(),
            "notice": notice,
        }

    def record_finals(team: str, ids: list[str]):
        record = select_finals(
            portal.paths.submissions,
            team,
            ids,
            challenge=params.challenge,
            max_selections=params.leaderboard.final_selections,
            now=utc_now(),
        )
        portal.versioner.changed(f"{FINAL_DIR}/{team}")
        return record

    @app.post("/history/finals", include_in_schema=False)
    async def finals_form(request: Request):
        who = need_team(request)
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        ids = [str(v) for v in form.getlist("final")]
        try:
            record = await run_in_threadpool(record_finals, who.name, ids)
            notice = f"final selection recorded (version {record.version}): {', '.join(record.submission_ids) or 'none: the policy picks'}"
            status = 200
        except InputError as exc:
            notice, status = f"not recorded: {exc}", 400
        entries = views.team_submissions(portal.paths.submissions, portal.paths.results, who.name, closed_now())
        return page(request, "history.html.j2", status=status, **history_context(who.name, entries, notice))

    @app.get("/history/{submission_id}", response_class=HTMLResponse, include_in_schema=False)
    def submission_page(request: Request, submission_id: str):
        who = need_team(request)
        entry = find_submission(who.name, submission_id)
        return page(
            request,
            "submission.html.j2",
            entry=entry,
            closed=closed_now(),
            decisions=history(portal.paths.submissions, f"{who.name}/{submission_id}"),
        )

    @app.get("/team", response_class=HTMLResponse, include_in_schema=False)
    def team_page(request: Request):
        who = need_team(request)
        return page(request, "team.html.j2", entry=portal.store.get(who.name), name=who.name, saved=False)

    @app.post("/team", include_in_schema=False)
    async def team_save(request: Request):
        who = need_team(request)
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        try:
            portal.store.set_writeup(who.name, str(form.get("writeup", "")))
        except InputError as exc:
            return page(request, "message.html.j2", status=400, title="Not saved", message=str(exc))
        return page(request, "team.html.j2", entry=portal.store.get(who.name), name=who.name, saved=True)

    @app.get("/teams/{team}", response_class=HTMLResponse, include_in_schema=False)
    def public_team(request: Request, team: str):
        entry = portal.store.get(team) if SLUG.match(team) else None
        if entry is None or entry.get("disabled"):
            raise HTTPException(404, "no such team")
        return page(
            request,
            "writeup.html.j2",
            name=team,
            entry={"display_name": entry["display_name"], "writeup": entry.get("writeup", "")},
        )

    def current_board() -> dict | None:
        """The board, read again only when a new snapshot or evaluation lands (readers outnumber runs)."""
        stamp = (closed_now(), params.challenge.name) + tuple(
            p.stat().st_mtime_ns if p.exists() else 0
            for p in (portal.paths.leaderboard / "snapshots", portal.paths.results / "evaluation.json")
        )
        cached = portal.board_cache
        if cached is None or cached[0] != stamp:
            data = views.board(portal.paths.results, portal.paths.leaderboard, closed_now(), params.challenge.name)
            cached = portal.board_cache = (stamp, data)
        return cached[1]

    @app.get("/board", response_class=HTMLResponse, include_in_schema=False)
    def board_page(request: Request):
        data = current_board()
        known = set(portal.store.teams())
        return page(
            request, "board.html.j2", board=data, known=known, full=(portal.paths.leaderboard / "latest.html").is_file()
        )

    @app.get("/board/full", include_in_schema=False)
    def board_full():
        path = portal.paths.leaderboard / "latest.html"
        if not path.is_file():
            raise HTTPException(404, "the board has not been built yet")
        return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": BOARD_PAGE_CSP})

    # --- organisers' pages ------------------------------------------------------------------------

    def admin_context() -> dict:
        subs = []
        for team in views.all_teams_with_submissions(portal.paths.submissions):
            if team.startswith("baseline-"):
                continue
            subs += views.team_submissions(portal.paths.submissions, portal.paths.results, team, closed=True)
        subs.sort(key=lambda e: (e["submitted_at"], e["team"], e["submission_id"]), reverse=True)
        return {
            "teams": portal.store.teams(),
            "submissions": subs,
            "decisions": views.decisions(portal.paths.submissions),
            "reevaluation": portal.reevaluator.status(),
            "prefect": portal.reevaluator.runner.api_url if portal.reevaluator.runner else None,
            "versioning": portal.versioner.why_not() or portal.versioner.last,
            "versioning_pending": portal.versioner.pending(),
            "challenge_closed": params.challenge.closed,
            "state": state().line(),
            "phases": phase_rows(),
            "editable": params.path is not None,
            "new_token": None,
            "notice": params.problem,
        }

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin(request: Request):
        need_session(request, organiser=True)
        return page(request, "admin.html.j2", **admin_context())

    @app.post("/admin/teams", include_in_schema=False)
    async def admin_teams(request: Request):
        need_session(request, organiser=True)
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        action, team = str(form.get("action", "")), str(form.get("team", "")).strip()
        context = admin_context()
        try:
            if action == "add":
                members = [m.strip() for m in str(form.get("members", "")).split(",") if m.strip()]
                token = portal.store.add(team, str(form.get("display_name", "")), members)
            elif action == "rotate":
                check_team(team)
                token = portal.store.rotate(team)
            elif action in ("disable", "enable"):
                check_team(team)
                portal.store.set_disabled(team, action == "disable")
                token = None
            else:
                raise InputError(problem=f"unknown action '{action}'", fix="use the buttons of the page")
        except InputError as exc:
            return page(request, "admin.html.j2", status=400, **context | {"notice": str(exc)})
        portal.token_cache.clear()
        return page(
            request,
            "admin.html.j2",
            **admin_context() | {"new_token": (team, token) if token else None, "notice": f"{team}: {action} done"},
        )

    @app.post("/admin/moderate", include_in_schema=False)
    async def admin_moderate(request: Request):
        who = need_session(request, organiser=True)
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        try:
            decide(
                portal.paths.submissions,
                str(form.get("submission", "")),
                str(form.get("action", "")),
                by=who.name,
                reason=str(form.get("reason", "")),
            )
        except InputError as exc:
            return page(request, "admin.html.j2", status=400, **admin_context() | {"notice": str(exc)})
        return page(
            request,
            "admin.html.j2",
            **admin_context() | {"notice": "recorded; the board follows at the next evaluation"},
        )

    @app.post("/admin/schedule", include_in_schema=False)
    async def admin_schedule(request: Request):
        need_session(request, organiser=True)
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        if params.path is None:
            raise HTTPException(409, "this portal was started without a params file to edit")
        action = str(form.get("action", ""))
        try:
            if action not in ("close", "reopen"):
                raise InputError(problem=f"unknown action '{action}'", fix="use the buttons of the page")
            await run_in_threadpool(edit_challenge, params.path, {"closed": action == "close"})
        except InputError as exc:
            return page(request, "admin.html.j2", status=400, **admin_context() | {"notice": str(exc)})
        notice = f"challenge.closed is now {'true' if action == 'close' else 'false'} in {params.path.name}; the board follows at the next evaluation"
        return page(request, "admin.html.j2", **admin_context() | {"notice": notice})

    @app.post("/admin/reevaluate", include_in_schema=False)
    async def admin_reevaluate(request: Request):
        who = need_session(request, organiser=True)
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        try:
            await run_in_threadpool(portal.reevaluator.start, who.name)
            notice = "re-evaluation started"
            status = 200
        except AlreadyRunning as exc:
            notice, status = str(exc), 409
        return page(request, "admin.html.j2", status=status, **admin_context() | {"notice": notice})

    # --- the JSON API (bearer tokens; no cookies, so no CSRF) ---------------------------------------

    upload_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "<task>.csv or .parquet files, or one zip of them",
                            },
                            "name": {"type": "string", "description": "a slug; default: from the file name"},
                            "description": {"type": "string", "description": "one line of plain text"},
                        },
                        "required": ["file"],
                    }
                }
            },
        }
    }

    @app.post(f"{API}/submissions", status_code=201, openapi_extra=upload_body, summary="Upload a submission")
    async def api_upload(request: Request):
        """Store the files through submit(): 201 when accepted, 422 when rejected (recorded, with its reasons)."""
        who = bearer(request)
        if who.organiser:
            raise HTTPException(403, "the organisers' token has no team")
        try:
            result = await take_upload(request, who, form=False)
        except UploadRefused as exc:
            raise HTTPException(exc.status, exc.message) from None
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse(result_json(result), status_code=201 if result.accepted else 422)

    @app.get(f"{API}/submissions", summary="List my submissions")
    def api_list(request: Request) -> list[dict]:
        who = bearer(request)
        return views.team_submissions(portal.paths.submissions, portal.paths.results, who.name, closed_now())

    @app.get(f"{API}/submissions/{{submission_id}}", summary="Status of one of my submissions")
    def api_one(request: Request, submission_id: str) -> dict:
        who = bearer(request)
        return find_submission(who.name, submission_id)

    @app.get(f"{API}/finals", summary="My final selection")
    def api_finals(request: Request) -> dict:
        who = bearer(request)
        selection = current_selection(portal.paths.submissions, who.name) if who.team else None
        return {
            "submission_ids": selection.submission_ids if selection else [],
            "version": selection.version if selection else 0,
            "selected_at": selection.selected_at if selection else None,
            "max_selections": params.leaderboard.final_selections,
        }

    @app.post(f"{API}/finals", summary="Select my final submissions (before the close; the last call wins)")
    def api_select(request: Request, body: FinalsBody) -> dict:
        who = bearer(request)
        if who.organiser:
            raise HTTPException(403, "the organisers' token has no team")
        try:
            record = record_finals(who.name, body.submission_ids)
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        return record.model_dump()

    @app.get(f"{API}/board", summary="The public board")
    def api_board() -> dict:
        data = current_board()
        if data is None:
            raise HTTPException(404, "the board has not been built yet")
        return data

    @app.get(f"{API}/me", summary="Who the token belongs to")
    def api_me(request: Request) -> dict:
        who = bearer(request)
        entry = {} if who.organiser else (portal.store.get(who.name) or {})
        return {
            "team": who.team,
            "organiser": who.organiser,
            "display_name": entry.get("display_name"),
            "limits": params.submit.model_dump(),
        }

    return app
