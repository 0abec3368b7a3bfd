"""The schedule through the portal: uploads outside a phase are recorded as rejected with the
phase dates, the overview shows the phases, and teams mark their final submissions (form and
API) until the close."""

from __future__ import annotations

import io

import yaml

from tests.unit.portal.conftest import csrf_of, good_files, sign_in

PHASES = [
    {"name": "development", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
    {"name": "final", "start": "2026-12-10T00:00:00Z", "end": "2026-12-20T00:00:00Z", "tasks": ["shop_kind"]},
]


def set_phases(project, phases) -> None:
    data = yaml.safe_load((project / "params.yaml").read_text())
    data["challenge"]["phases"] = phases
    (project / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def upload(client, token, files):
    return client.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {token}"},
        files=[("file", (n, io.BytesIO(b))) for n, b in files.items()],
    )


def files(tmp_path, k):
    return {p.name: p.read_bytes() for p in good_files(tmp_path / f"f{k}", flip=k)}


def test_an_upload_between_phases_is_rejected_with_the_phase_dates(client, tokens, project, tmp_path, monkeypatch):
    set_phases(project, PHASES)
    monkeypatch.setenv("MMTC_NOW", "2026-12-05T12:00:00Z")
    overview = client.get("/").text
    assert "development" in overview and "2026-12-10T00:00:00Z" in overview and "between phases" in overview
    r = upload(client, tokens["alpha"], files(tmp_path, 1))
    assert r.status_code == 422
    assert "no phase is open at 2026-12-05T12:00:00Z" in r.json()["reasons"][0]["message"]
    monkeypatch.setenv("MMTC_NOW", "2026-12-12T00:00:00Z")  # the final phase takes shop_kind only
    r = upload(client, tokens["alpha"], files(tmp_path, 2))
    assert r.status_code == 422 and "not open in phase final" in r.json()["reasons"][0]["message"]
    r = upload(client, tokens["alpha"], {"shop_kind.csv": files(tmp_path, 3)["shop_kind.csv"]})
    assert r.status_code == 201, r.text
    assert 'class="open"' in client.get("/").text


def test_a_team_marks_its_finals_by_form_and_api_until_the_close(client, tokens, project, tmp_path, monkeypatch):
    a = upload(client, tokens["alpha"], files(tmp_path, 1)).json()["submission_id"]
    b = upload(client, tokens["alpha"], files(tmp_path, 2)).json()["submission_id"]
    other = upload(client, tokens["beta"], files(tmp_path, 3)).json()["submission_id"]
    sign_in(client, tokens["alpha"])
    page = client.get("/history").text
    assert f'value="{a}"' in page and f'value="{b}"' in page and other not in page
    r = client.post("/history/finals", data={"csrf": csrf_of(page), "final": [a]})
    assert r.status_code == 200 and "version 1" in r.text and f'value="{a}" checked' in r.text
    auth = {"Authorization": f"Bearer {tokens['alpha']}"}
    assert client.get("/api/v1/finals", headers=auth).json()["submission_ids"] == [a]
    r = client.post("/api/v1/finals", headers=auth, json={"submission_ids": [a, b]})
    assert r.status_code == 200 and r.json()["version"] == 2
    bad = client.post("/api/v1/finals", headers=auth, json={"submission_ids": [other]})
    assert bad.status_code == 400 and "not an accepted submission of team 'alpha'" in bad.json()["detail"]
    too_many = client.post("/api/v1/finals", headers=auth, json={"submission_ids": [a, b, a]})
    assert too_many.status_code == 400
    no_csrf = client.post("/history/finals", data={"final": [b]})
    assert no_csrf.status_code == 403
    assert client.get("/api/v1/finals", headers=auth).json()["submission_ids"] == [a, b]
    monkeypatch.setenv("MMTC_NOW", "2030-01-01T00:00:00Z")
    set_phases(project, [{"name": "all", "start": "2026-11-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}])
    closed = client.post("/api/v1/finals", headers=auth, json={"submission_ids": [b]})
    assert closed.status_code == 400 and "closed" in closed.json()["detail"]
    assert 'id="finals-form"' not in client.get("/history").text
