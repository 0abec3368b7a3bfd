"""Tokens: shown once, stored as salted hashes, checked by id then in constant time; rotate and disable."""

from __future__ import annotations

import json

import pytest

from tasks.core.errors import InputError
from tasks.portal.teams import ORGANISER, TeamStore


def test_a_token_is_stored_only_as_a_salted_hash(tmp_path):
    store = TeamStore(tmp_path)
    token = store.add("alpha", "Alpha", ["a@example.org"])
    other = store.add("beta")
    text = (tmp_path / "teams.json").read_text()
    assert token not in text and other not in text
    entries = json.loads(text)
    assert entries["alpha"]["token"]["salt"] != entries["beta"]["token"]["salt"]
    assert (tmp_path / "teams.json").stat().st_mode & 0o077 == 0
    assert store.authenticate(token).name == "alpha"
    assert store.authenticate(other).name == "beta"
    assert store.teams()["alpha"] == store.get("alpha") and "token" not in store.get("alpha")


@pytest.mark.parametrize("wrong", ["", "mmtc_", "x" * 300, "mmtc_000000000000_" + "A" * 43, None, 42])
def test_wrong_tokens_match_nobody(tmp_path, wrong):
    store = TeamStore(tmp_path)
    store.add("alpha")
    assert store.authenticate(wrong) is None


def test_a_token_with_the_right_id_and_a_wrong_secret_is_refused(tmp_path):
    store = TeamStore(tmp_path)
    token = store.add("alpha")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert store.authenticate(forged) is None


def test_rotate_ends_the_old_token_and_its_sessions(tmp_path):
    store = TeamStore(tmp_path)
    old = store.add("alpha")
    fingerprint = store.authenticate(old).fingerprint
    new = store.rotate("alpha")
    assert store.authenticate(old) is None and store.authenticate(new).name == "alpha"
    assert store.identity("alpha", fingerprint) is None


def test_disable_refuses_the_token_and_enable_restores_it(tmp_path):
    store = TeamStore(tmp_path)
    token = store.add("alpha")
    store.set_disabled("alpha")
    assert store.authenticate(token) is None
    store.set_disabled("alpha", False)
    assert store.authenticate(token).name == "alpha"


def test_the_organiser_token_is_not_a_team(tmp_path):
    store = TeamStore(tmp_path)
    token = store.rotate(ORGANISER)
    who = store.authenticate(token)
    assert who.organiser and who.team is None
    assert ORGANISER not in store.teams() and store.get(ORGANISER) is None


@pytest.mark.parametrize(
    "name, display, members",
    [("../etc", "", []), ("Alpha", "", []), ("baseline-x", "", []), ("ok", "a\x00b", []), ("ok", "", ["not-an-email"])],
)
def test_bad_team_entries_are_refused(tmp_path, name, display, members):
    with pytest.raises(InputError):
        TeamStore(tmp_path).add(name, display, members)


def test_a_team_is_added_once(tmp_path):
    store = TeamStore(tmp_path)
    store.add("alpha")
    with pytest.raises(InputError, match="exists already"):
        store.add("alpha")
