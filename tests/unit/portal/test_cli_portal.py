"""`mmtc team ...`: tokens printed once and working; rotate, disable, enable, list, organiser."""

from __future__ import annotations

import os
import re

from tasks import cli
from tasks.portal.teams import TeamStore


def token_in(text: str) -> str:
    return re.search(r"mmtc_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", text).group(0)


def test_team_commands(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    args = ["--params", "params.yaml", "team"]
    assert cli.main([*args, "add", "red-pandas", "--display-name", "Red Pandas", "--member", "a@example.org"]) == 0
    first = token_in(capsys.readouterr().out)
    store = TeamStore(project / ".portal")
    assert store.authenticate(first).name == "red-pandas"
    assert first not in (project / ".portal" / "teams.json").read_text()
    assert cli.main([*args, "rotate", "red-pandas"]) == 0
    second = token_in(capsys.readouterr().out)
    assert store.authenticate(first) is None and store.authenticate(second).name == "red-pandas"
    assert cli.main([*args, "disable", "red-pandas"]) == 0 and store.authenticate(second) is None
    assert cli.main([*args, "enable", "red-pandas"]) == 0 and store.authenticate(second) is not None
    capsys.readouterr()
    assert cli.main([*args, "list"]) == 0
    assert capsys.readouterr().out == "red-pandas\tRed Pandas\tenabled\ta@example.org\n"
    assert cli.main([*args, "organiser"]) == 0
    assert store.authenticate(token_in(capsys.readouterr().out)).organiser
    assert cli.main([*args, "add", "Bad Name"]) == 2
    assert cli.main([*args, "rotate"]) == 2
    assert "needs a team name" in capsys.readouterr().err
    assert os.stat(project / ".portal" / "teams.json").st_mode & 0o077 == 0


def test_upload_needs_a_token(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MMTC_TOKEN", raising=False)
    (tmp_path / "a.csv").write_text("id,label\n")
    assert cli.main(["upload", str(tmp_path / "a.csv")]) == 2
    assert "no team token" in capsys.readouterr().err
    monkeypatch.setenv("MMTC_TOKEN", "mmtc_x")
    assert cli.main(["upload", str(tmp_path / "a.csv"), "--url", "http://127.0.0.1:9"]) == 2
    assert "could not be reached" in capsys.readouterr().err
