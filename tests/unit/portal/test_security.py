"""Signed sessions, CSRF tokens bound to both cookies, the sign-in rate limit, write-up sanitising."""

from __future__ import annotations

from tasks.portal.app import render_markdown
from tasks.portal.security import RateLimiter, Signer, load_key


def test_a_session_round_trips_and_a_tampered_one_does_not(tmp_path):
    signer = Signer(load_key(tmp_path))
    value = signer.session("alpha", "f" * 16, 60)
    assert signer.read_session(value) == ("alpha", "f" * 16)
    payload, mac = value.split(".")
    assert signer.read_session(payload + "." + mac[:-2] + "AA") is None
    other = Signer(b"k" * 32).session("beta", "f" * 16, 60)
    assert signer.read_session(other) is None  # signed with another key
    assert signer.read_session(other.split(".")[0] + "." + mac) is None  # a payload swapped under a valid mac
    assert signer.read_session(signer.session("alpha", "f" * 16, -1)) is None  # expired
    assert signer.read_session(None) is None and signer.read_session("garbage") is None


def test_the_key_is_made_once_and_kept_private(tmp_path):
    key = load_key(tmp_path)
    assert load_key(tmp_path) == key and len(key) == 32
    assert (tmp_path / "session.key").stat().st_mode & 0o077 == 0


def test_csrf_tokens_are_bound_to_both_cookies(tmp_path):
    signer = Signer(load_key(tmp_path))
    token = signer.csrf("c1", "s1")
    assert signer.check_csrf(token, "c1", "s1")
    assert not signer.check_csrf(token, "c2", "s1")
    assert not signer.check_csrf(token, "c1", "s2")
    assert not signer.check_csrf(None, "c1", "s1") and not signer.check_csrf(token, None, "s1")


def test_the_rate_limit_counts_failures_in_a_sliding_window():
    now = [0.0]
    limiter = RateLimiter(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.blocked_for("1.2.3.4") == 0
        limiter.failed("1.2.3.4")
    assert limiter.blocked_for("1.2.3.4") == 60
    assert limiter.blocked_for("5.6.7.8") == 0  # per address
    now[0] = 61
    assert limiter.blocked_for("1.2.3.4") == 0


def test_write_ups_lose_html_scripts_and_unsafe_links():
    html = str(
        render_markdown(
            "# Method\n\n<script>alert(1)</script> **bold** [x](javascript:alert(1)) "
            "[ok](https://example.org) <img src=x onerror=alert(1)>\n\n| a | b |\n|---|---|\n| 1 | 2 |"
        )
    )
    assert "<script" not in html and "onerror" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in html  # shown as text, not run
    assert 'href="javascript' not in html
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>' in html
    assert "<strong>bold</strong>" in html and "<table>" in html and "<h1>Method</h1>" in html


def test_an_unknown_key_id_costs_one_hash_like_a_wrong_secret(tmp_path, monkeypatch):
    """The answer's time does not tell which key ids exist: both pay for one scrypt hash."""
    from tasks.portal import teams

    store = teams.TeamStore(tmp_path)
    token = store.add("alpha")
    calls = []
    real = teams._hash
    monkeypatch.setattr(teams, "_hash", lambda *a, **k: calls.append(1) or real(*a, **k))
    store.authenticate("mmtc_000000000000_" + "A" * 43)
    store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert len(calls) == 2
