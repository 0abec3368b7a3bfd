"""The portal under its real server (uvicorn on loopback), driven over HTTP: sign-in, wrong and
other teams' tokens, uploads accepted and rejected (reasons for that team only), the daily
limit, CSRF, oversized uploads, escaping zips, `mmtc upload`, and no write outside its data paths."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile

import httpx
import pytest
import yaml

from tasks.portal.teams import ORGANISER, TeamStore
from tests.integration.portal_server import BIN, serve
from tests.unit.portal.conftest import good_files, make_project

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CAP_MB = 0.05  # 52 KB: the corpus predictions are a few hundred bytes
MAX_PER_DAY = 3


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def files_of(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("portal") / "project")
    data = yaml.safe_load((root / "params.yaml").read_text())
    data["submit"] |= {"max_file_mb": CAP_MB, "max_per_day": MAX_PER_DAY}
    (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    store = TeamStore(root / ".portal")
    tokens = {
        "alpha": store.add("alpha", "Alpha <script>"),
        "beta": store.add("beta"),
        ORGANISER: store.rotate(ORGANISER),
    }
    before = files_of(root)
    tries = [{p.name: p.read_bytes() for p in good_files(root.parent / f"try{k}", flip=k)} for k in range(1, 6)]
    with serve(root, root.parent / "portal.log") as url:
        yield {"url": url, "root": root, "tokens": tokens, "tries": tries, "before": before}


def browser(portal) -> httpx.Client:
    return httpx.Client(base_url=portal["url"], timeout=30)


def sign_in(c: httpx.Client, token: str) -> httpx.Response:
    return c.post("/signin", data={"token": token, "csrf": csrf(c.get("/signin").text)})


def api(portal, token, files: dict[str, bytes], **fields) -> httpx.Response:
    return httpx.post(
        portal["url"] + "/api/v1/submissions",
        headers={"Authorization": f"Bearer {token}"},
        files=[("file", (n, b)) for n, b in files.items()],
        data=fields,
        timeout=60,
    )


def test_sign_in_with_the_right_token_and_refusal_of_a_wrong_one(portal):
    with browser(portal) as c:
        wrong = sign_in(c, "mmtc_000000000000_" + "Z" * 43)
        assert wrong.status_code == 401 and "mmtc_session" not in wrong.headers.get("set-cookie", "")
        right = sign_in(c, portal["tokens"]["alpha"])
        assert right.status_code == 303 and right.headers["location"] == "/history"
        cookie = [h for h in right.headers.get_list("set-cookie") if h.startswith("mmtc_session=")][0]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        page = c.get("/history")
        assert page.status_code == 200 and "Alpha &lt;script&gt;" in page.text and "<script>" not in page.text


def test_an_upload_is_accepted_and_another_teams_token_cannot_see_it(portal):
    with browser(portal) as c:
        sign_in(c, portal["tokens"]["alpha"])
        form = c.get("/upload").text
        files = [("file", (n, b)) for n, b in portal["tries"][0].items()]
        r = c.post("/upload", data={"csrf": csrf(form), "name": "form-try", "description": "<i>x</i>"}, files=files)
        assert r.status_code == 303
        sid = r.headers["location"].rsplit("/", 1)[1]
        page = c.get(f"/history/{sid}").text
        assert 'class="status-accepted"' in page and "&lt;i&gt;x&lt;/i&gt;" in page
    assert (portal["root"] / "submissions" / "alpha" / sid / "submission.json").is_file()
    beta = {"Authorization": f"Bearer {portal['tokens']['beta']}"}
    assert httpx.get(f"{portal['url']}/api/v1/submissions/{sid}", headers=beta).status_code == 404
    assert sid not in httpx.get(f"{portal['url']}/api/v1/submissions", headers=beta).text
    with browser(portal) as c:
        sign_in(c, portal["tokens"]["beta"])
        assert c.get(f"/history/{sid}").status_code == 404


def test_a_rejected_upload_shows_its_reasons_to_that_team_only(portal):
    r = api(portal, portal["tokens"]["alpha"], {"shop_kind.csv": b"id,label\ns01,teapot\n"})
    assert r.status_code == 422
    body = r.json()
    assert not body["accepted"] and body["reasons"]
    sid = body["submission_id"]
    recorded = json.loads((portal["root"] / "submissions" / "_rejected" / "alpha" / sid / "rejection.json").read_text())
    assert [x["message"] for x in body["reasons"]] == [x["message"] for x in recorded["reasons"]]
    mine = httpx.get(
        f"{portal['url']}/api/v1/submissions/{sid}", headers={"Authorization": f"Bearer {portal['tokens']['alpha']}"}
    )
    assert mine.json()["reasons"] == body["reasons"]
    for token in (portal["tokens"]["beta"], None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        other = httpx.get(f"{portal['url']}/api/v1/submissions/{sid}", headers=headers)
        assert other.status_code in (401, 404) and "teapot" not in other.text
    assert "teapot" not in httpx.get(f"{portal['url']}/board").text + httpx.get(f"{portal['url']}/").text


def test_the_daily_limit_holds_over_http(portal):
    token = portal["tokens"]["beta"]
    codes = [api(portal, token, files).status_code for files in portal["tries"][: MAX_PER_DAY + 1]]
    assert codes == [201] * MAX_PER_DAY + [422]
    last = api(portal, token, portal["tries"][4]).json()
    assert "daily limit" in last["reasons"][0]["message"]
    assert len(list((portal["root"] / "submissions" / "beta").iterdir())) == MAX_PER_DAY


def test_an_upload_outside_the_phase_is_rejected_with_its_dates(portal):
    """The organisers set phases in params.yaml while the server runs: it reads them at once."""
    path = portal["root"] / "params.yaml"
    before = path.read_text()
    data = yaml.safe_load(before)
    data["challenge"]["phases"] = [
        {"name": "warm-up", "start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"},
        {"name": "final", "start": "2099-01-01T00:00:00Z", "end": "2099-02-01T00:00:00Z"},
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        r = api(portal, portal["tokens"]["alpha"], portal["tries"][3])
        assert r.status_code == 422
        message = r.json()["reasons"][0]["message"]
        assert "no phase is open" in message and "warm-up 2026-01-01T00:00:00Z" in message
        assert (portal["root"] / "submissions" / "_rejected" / "alpha" / r.json()["submission_id"]).is_dir()
        assert "between phases: final opens 2099-01-01T00:00:00Z" in httpx.get(portal["url"] + "/").text
    finally:
        path.write_text(before)


def test_a_form_without_its_csrf_token_is_refused_and_stores_nothing(portal):
    root = portal["root"]
    count = len(list(root.joinpath("submissions").rglob("submission.json")))
    with browser(portal) as c:
        sign_in(c, portal["tokens"]["alpha"])
        files = [("file", (n, b)) for n, b in portal["tries"][1].items()]
        assert c.post("/upload", files=files).status_code == 403
        assert c.post("/upload", data={"csrf": "x" * 43}, files=files).status_code == 403
        assert c.post("/team", data={"writeup": "defaced"}).status_code == 403
    assert len(list(root.joinpath("submissions").rglob("submission.json"))) == count


def test_oversized_uploads_are_cut_while_streaming_or_refused_before(portal):
    cap = int(CAP_MB * (1 << 20))
    r = api(portal, portal["tokens"]["alpha"], {"shop_kind.csv": b"id,label\n" + b"s01,mug\n" * (cap // 8 + 100)})
    assert r.status_code == 422 and "larger than the cap" in r.json()["reasons"][0]["message"]
    headers = {
        "Authorization": f"Bearer {portal['tokens']['alpha']}",
        "Content-Type": "multipart/form-data; boundary=b",
    }
    # more than every file at the cap together (20 x 52 KB + 1 MB): refused from its Content-Length, unread
    huge = httpx.post(
        portal["url"] + "/api/v1/submissions", headers=headers, content=b"--b\r\n" + b"x" * (60 * cap), timeout=60
    )
    assert huge.status_code == 413

    def chunks():  # no Content-Length: stopped while it streams
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="shop_kind.csv"\r\n\r\n'
        for _ in range(60):
            yield b"x" * cap

    streamed = httpx.post(portal["url"] + "/api/v1/submissions", headers=headers, content=chunks(), timeout=60)
    assert streamed.status_code == 413 and "reading stopped" in streamed.json()["detail"]


def test_a_zip_with_a_path_that_escapes_is_refused_and_nothing_lands_outside(portal):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("shop_kind.csv", portal["tries"][2]["shop_kind.csv"])
        zf.writestr("../../../escaped.csv", b"pwned")
    r = api(portal, portal["tokens"]["alpha"], {"preds.zip": buf.getvalue()})
    assert r.status_code == 400 and "outside the archive" in r.json()["detail"]
    assert not list(portal["root"].parent.parent.rglob("escaped.csv"))


def test_mmtc_upload_uses_the_api(portal, tmp_path):
    folder = tmp_path / "preds"
    good_files(folder, flip=4)
    token_file = tmp_path / "token"
    token_file.write_text(portal["tokens"]["alpha"])
    cmd = [
        str(BIN / "mmtc"),
        "upload",
        *map(str, sorted(folder.iterdir())),
        "--url",
        portal["url"],
        "--token-file",
        str(token_file),
        "--name",
        "cli-try",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("accepted alpha/"), done.stdout + done.stderr
    (tmp_path / "bad.csv").write_text("id,label\n")
    bad = subprocess.run(
        [*cmd[:2], str(tmp_path / "bad.csv"), *cmd[-6:-2]], capture_output=True, text=True, cwd=tmp_path
    )
    assert bad.returncode == 2 and bad.stderr.startswith("rejected alpha/"), bad.stdout + bad.stderr


def test_the_server_wrote_only_under_its_data_paths(portal):
    changed = {p for p, t in files_of(portal["root"]).items() if portal["before"].get(p) != t}
    outside = sorted(p for p in changed if not p.startswith((".portal/", "submissions/")))
    assert outside == [], outside
    assert not any("test_labels" in p for p in changed)
