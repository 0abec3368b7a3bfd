"""The portal through FastAPI's TestClient: pages, sign-in, uploads through submit(), history,
what each identity may see, CSRF, organisers' pages and the JSON API."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tasks.core.schema import REJECTED_DIR, SUBMISSION_META
from tasks.portal.teams import ORGANISER
from tests.unit.portal.conftest import csrf_of, good_files, sign_in


def upload_form(client, files: dict[str, bytes], **fields):
    page = client.get("/upload")
    assert page.status_code == 200, page.text
    data = {"csrf": csrf_of(page.text)} | fields
    return client.post(
        "/upload", data=data, files=[("file", (n, io.BytesIO(b))) for n, b in files.items()], follow_redirects=False
    )


def api_upload(client, token: str, files: dict[str, bytes], **fields):
    return client.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {token}"},
        data=fields,
        files=[("file", (n, io.BytesIO(b))) for n, b in files.items()],
    )


@pytest.fixture
def preds(tmp_path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in good_files(tmp_path / "preds")}


def test_the_overview_shows_tasks_rules_and_the_release(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "shop_kind" in page.text and "same_item" in page.text and "5 accepted submissions" in page.text
    assert page.headers["x-frame-options"] == "DENY" and "default-src 'none'" in page.headers["content-security-policy"]
    z = client.get("/release/shop_kind.zip")
    assert z.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert "shop_kind/card.json" in names and not any("label" in n and "test" in n for n in names)
    assert client.get("/release/nope.zip").status_code == 404
    assert client.get("/release/..%2Fprivate.zip").status_code == 404


def test_sign_in_sets_a_strict_http_only_cookie_and_a_wrong_token_is_refused(client, tokens):
    r = sign_in(client, "mmtc_000000000000_" + "A" * 43)
    assert r.status_code == 401 and "not valid" in r.text
    r = sign_in(client, tokens["alpha"])
    assert r.status_code == 303 and r.headers["location"] == "/history"
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("mmtc_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Secure" not in cookie
    assert tokens["alpha"] not in cookie
    assert "Team &lt;Alpha&gt;" in client.get("/history").text  # the display name, escaped


def test_pages_need_a_session(client):
    for path in ("/upload", "/history", "/team", "/admin"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/signin", path


def test_sign_in_is_rate_limited_per_address(client, tokens):
    for _ in range(10):
        assert sign_in(client, "mmtc_000000000000_" + "B" * 43).status_code == 401
    r = sign_in(client, tokens["alpha"])  # even the right token waits now
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['alpha']}"})
    assert r.status_code == 429 and "retry-after" in r.headers


def test_an_upload_is_accepted_through_submit_and_shows_in_the_history(client, tokens, project, preds):
    sign_in(client, tokens["alpha"])
    r = upload_form(client, preds, name="first-try", description="<b>bold</b> & co")
    assert r.status_code == 303
    sid = r.headers["location"].rsplit("/", 1)[1]
    meta = json.loads((project / "submissions" / "alpha" / sid / SUBMISSION_META).read_text())
    assert meta["team"] == "alpha" and meta["name"] == "first-try" and meta["tasks"] == ["same_item", "shop_kind"]
    page = client.get(f"/history/{sid}")
    assert 'id="status" class="status-accepted"' in page.text
    history = client.get("/history").text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in history and "<b>bold</b>" not in history
    assert not list((project / ".portal" / "staging").iterdir())  # staging is emptied


def test_a_rejected_upload_shows_its_reasons_to_its_team_only(client, tokens, project):
    sign_in(client, tokens["alpha"])
    r = upload_form(client, {"shop_kind.csv": b"id,label\nnope,x\n"})
    sid = r.headers["location"].rsplit("/", 1)[1]
    assert (project / "submissions" / REJECTED_DIR / "alpha" / sid).is_dir()
    page = client.get(f"/history/{sid}").text
    reasons = json.loads((project / "submissions" / REJECTED_DIR / "alpha" / sid / "rejection.json").read_text())[
        "reasons"
    ]
    assert reasons and all(r["message"].replace("'", "&#39;").replace('"', "&#34;") in page for r in reasons)
    client.cookies.clear()
    sign_in(client, tokens["beta"])
    assert client.get(f"/history/{sid}").status_code == 404
    assert sid not in client.get("/history").text
    beta = client.get("/api/v1/submissions", headers={"Authorization": f"Bearer {tokens['beta']}"}).json()
    assert beta == []
    assert (
        client.get(f"/api/v1/submissions/{sid}", headers={"Authorization": f"Bearer {tokens['beta']}"}).status_code
        == 404
    )
    board = client.get("/api/v1/board")
    assert sid not in board.text


def test_a_mutating_form_without_its_csrf_token_is_refused(client, tokens, project, preds):
    sign_in(client, tokens["alpha"])
    r = client.post(
        "/upload", files=[("file", ("shop_kind.csv", io.BytesIO(preds["shop_kind.csv"])))], follow_redirects=False
    )
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/upload", data={"csrf": "forged"}, files=[("file", ("shop_kind.csv", io.BytesIO(b"x")))])
    assert r.status_code == 403
    assert not (project / "submissions" / "alpha").exists() and not (project / "submissions" / REJECTED_DIR).exists()
    assert client.post("/team", data={"writeup": "x"}).status_code == 403
    assert client.post("/signin", data={"token": tokens["alpha"]}).status_code == 403


def test_limits_and_caps_are_submits_own(client, tokens, project, tmp_path):
    from tasks.core.params import load_params

    cap = load_params(project / "params.yaml").submit.max_file_mb
    big = b"id,label\n" + b"x" * int(cap * (1 << 20) + 10)
    r = api_upload(client, tokens["alpha"], {"shop_kind.csv": big})
    assert r.status_code == 422 and "larger than the cap" in r.json()["reasons"][0]["message"]
    tries = [{p.name: p.read_bytes() for p in good_files(tmp_path / str(k), flip=k)} for k in range(1, 7)]
    for files in tries[:5]:
        assert api_upload(client, tokens["alpha"], files).status_code == 201
    over = api_upload(client, tokens["alpha"], tries[5])
    assert over.status_code == 422 and "daily limit" in over.json()["reasons"][0]["message"]
    assert len(list((project / "submissions" / "alpha").iterdir())) == 5


def test_the_api_needs_a_bearer_token_and_never_takes_the_cookie(client, tokens, preds):
    assert client.get("/api/v1/submissions").status_code == 401
    sign_in(client, tokens["alpha"])
    assert client.get("/api/v1/submissions").status_code == 401  # a session cookie is not enough
    assert api_upload(client, "mmtc_000000000000_" + "C" * 43, preds).status_code == 401
    r = api_upload(client, tokens["alpha"], preds, name="via-api")
    assert r.status_code == 201 and r.json()["accepted"] and r.json()["team"] == "alpha"
    listed = client.get("/api/v1/submissions", headers={"Authorization": f"Bearer {tokens['alpha']}"}).json()
    assert [e["name"] for e in listed] == ["via-api"] and listed[0]["status"] == "accepted"
    assert api_upload(client, tokens[ORGANISER], preds).status_code == 403
    spec = client.get("/api/openapi.json").json()
    assert {"/api/v1/submissions", "/api/v1/board", "/api/v1/me"} <= set(spec["paths"])


def test_zip_uploads_and_escaping_zips(client, tokens, project, preds):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in preds.items():
            zf.writestr(f"mine/{n}", b)
    assert api_upload(client, tokens["alpha"], {"mine.zip": buf.getvalue()}).status_code == 201
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("shop_kind.csv", preds["shop_kind.csv"])
        zf.writestr("../../escaped.csv", b"x")
    r = api_upload(client, tokens["alpha"], {"evil.zip": evil.getvalue()})
    assert r.status_code == 400 and "outside the archive" in r.json()["detail"]
    assert not list(project.parent.rglob("escaped.csv"))


def test_the_write_up_is_sanitised_and_public(client, tokens):
    sign_in(client, tokens["alpha"])
    page = client.get("/team")
    r = client.post(
        "/team", data={"csrf": csrf_of(page.text), "writeup": "## How\n\n<script>x()</script> [a](javascript:x())"}
    )
    assert r.status_code == 200 and 'id="saved"' in r.text
    public = client.get("/teams/alpha").text
    assert "<h2>How</h2>" in public and "<script>x()" not in public and 'href="javascript' not in public
    assert client.get("/teams/nobody").status_code == 404


def test_organiser_pages_teams_moderation_and_reevaluation(client, tokens, project, preds):
    sid = api_upload(client, tokens["alpha"], preds).json()["submission_id"]
    api_upload(client, tokens["alpha"], {"shop_kind.csv": b"bad"})
    sign_in(client, tokens["alpha"])
    assert client.get("/admin").status_code == 403  # a team is not an organiser
    client.cookies.clear()
    assert sign_in(client, tokens[ORGANISER]).headers["location"] == "/admin"
    admin = client.get("/admin").text
    assert f"alpha/{sid}" in admin and "status-rejected" in admin and "Team &lt;Alpha&gt;" in admin
    # a team issued from the page: its token shown once, and it works
    r = client.post(
        "/admin/teams", data={"csrf": csrf_of(admin), "action": "add", "team": "gamma", "display_name": "G"}
    )
    token = r.text.split("shown once (it is stored only as a salted hash): ")[1].split("<")[0].strip()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["team"] == "gamma"
    assert token not in client.get("/admin").text
    # rotate ends the old token
    r = client.post("/admin/teams", data={"csrf": csrf_of(r.text), "action": "rotate", "team": "gamma"})
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # disqualify, then reinstate: both recorded, in order
    r = client.post(
        "/admin/moderate",
        data={"csrf": csrf_of(r.text), "submission": f"alpha/{sid}", "action": "disqualify", "reason": "leak"},
    )
    assert "recorded" in r.text
    log = (project / "submissions" / "_moderation.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in log] == ["disqualify"]
    entry = client.get(f"/api/v1/submissions/{sid}", headers={"Authorization": f"Bearer {tokens['alpha']}"}).json()
    assert entry["status"] == "disqualified"
    r = client.post(
        "/admin/moderate", data={"csrf": csrf_of(r.text), "submission": f"alpha/{sid}", "action": "reinstate"}
    )
    assert [
        json.loads(line)["action"] for line in (project / "submissions" / "_moderation.jsonl").read_text().splitlines()
    ] == ["disqualify", "reinstate"]
    bad = client.post(
        "/admin/moderate", data={"csrf": csrf_of(r.text), "submission": "alpha/../../etc", "action": "withdraw"}
    )
    assert bad.status_code == 400


def test_reevaluation_runs_in_a_worker_and_never_twice(client, tokens, project):
    import sys

    portal = client.app.state.portal
    marker = project / ".portal" / "ran.txt"
    portal.reevaluator.command = [
        sys.executable,
        "-c",
        f"import time, pathlib; time.sleep(1.5); pathlib.Path({str(marker)!r}).write_text('ok')",
    ]
    sign_in(client, tokens[ORGANISER])
    page = client.get("/admin").text
    first = client.post("/admin/reevaluate", data={"csrf": csrf_of(page)})
    assert first.status_code == 200 and "re-evaluation started" in first.text
    second = client.post("/admin/reevaluate", data={"csrf": csrf_of(first.text)})
    assert second.status_code == 409 and "still running" in second.text
    portal.reevaluator.wait(30)
    assert marker.read_text() == "ok"
    assert portal.reevaluator.status()["state"] == "succeeded"


def test_nothing_private_is_served(client, tokens, project):
    (project / "results").mkdir(exist_ok=True)
    (project / "results" / "secret.txt").write_text("x")
    for path in (
        "/data/private/shop_kind/test_labels.parquet",
        "/results/secret.txt",
        "/release/../data/private",
        "/.portal/teams.json",
    ):
        assert client.get(path).status_code == 404, path


def test_cookies_are_secure_over_tls_and_behind_a_trusted_proxy(tmp_path):
    from fastapi.testclient import TestClient

    from tasks.core.params import load_params
    from tasks.portal.app import create_app
    from tasks.portal.teams import TeamStore
    from tests.unit.portal.conftest import make_project

    root = make_project(tmp_path / "tls")
    token = TeamStore(root / ".portal").add("alpha")
    with TestClient(create_app(load_params(root / "params.yaml"), root), base_url="https://testserver") as c:
        page = c.get("/signin")
        r = c.post("/signin", data={"token": token, "csrf": csrf_of(page.text)}, follow_redirects=False)
        assert r.status_code == 303 and all("Secure" in h for h in r.headers.get_list("set-cookie"))
    proxied = make_project(tmp_path / "proxy", trust_forwarded=True)
    with TestClient(create_app(load_params(proxied / "params.yaml"), proxied)) as c:
        assert "Secure" in c.get("/signin", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
        c.cookies.clear()
        assert "Secure" not in c.get("/signin").headers["set-cookie"]
    with TestClient(create_app(load_params(root / "params.yaml"), root)) as c:  # a proxy not trusted: header ignored
        assert "Secure" not in c.get("/signin", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]


def test_the_organisers_close_the_challenge_in_params_yaml_keeping_its_comments(client, tokens, project):
    before = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(before.replace("challenge:\n", "challenge:  # the organisers' note\n", 1))
    sign_in(client, tokens[ORGANISER])
    page = client.get("/admin").text
    assert "challenge.closed is <strong>false</strong>" in page
    r = client.post("/admin/schedule", data={"csrf": csrf_of(page), "action": "close"})
    assert (
        r.status_code == 200
        and "challenge.closed is now true" in r.text
        and "challenge.closed is <strong>true</strong>" in r.text
    )
    text = (project / "params.yaml").read_text()
    assert "# the organisers' note" in text and "closed: true" in text
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['alpha']}"}).status_code == 200
    r = client.post("/admin/schedule", data={"csrf": csrf_of(r.text), "action": "reopen"})
    assert "closed: false" in (project / "params.yaml").read_text()
    assert client.post("/admin/schedule", data={"csrf": csrf_of(r.text), "action": "explode"}).status_code == 400
    client.cookies.clear()
    sign_in(client, tokens["alpha"])
    page = client.get("/history").text
    assert client.post("/admin/schedule", data={"csrf": csrf_of(page), "action": "close"}).status_code == 403


def test_staging_left_by_a_stopped_portal_is_swept_at_the_start(tmp_path):
    import os
    import time

    from tasks.portal.app import sweep_staging

    old, new = tmp_path / "team-old", tmp_path / "team-new"
    for folder in (old, new):
        (folder / "received").mkdir(parents=True)
        (folder / "received" / "x.csv").write_text("x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    sweep_staging(tmp_path)
    assert not old.exists() and new.exists()
