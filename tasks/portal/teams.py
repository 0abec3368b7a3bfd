"""Teams and their tokens: `<data_dir>/teams.json`, written atomically under a lock.

A token is shown once, when it is issued, and stored only as a salted scrypt hash; it is
checked in constant time. Rotating a token or disabling a team ends its sessions too: a
session cookie carries a fingerprint of the token hash it was issued under.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tasks.core.errors import InputError
from tasks.core.files import atomic_write_bytes
from tasks.submissions.submit import check_team

TEAMS_FILE = "teams.json"
ORGANISER = "_organiser"  # the organisers' entry: never a team (a team name cannot start with "_")
TOKEN_PREFIX = "mmtc_"
# scrypt cost: ~16 MB and a few tens of ms per check, so a stolen teams.json is slow to attack
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,190}$")


def _hash(token: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(token.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def new_token() -> tuple[str, str]:
    """(key id, token): the id, inside the token, finds its entry, so a check costs one hash."""
    key_id = secrets.token_hex(6)
    return key_id, f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


TOKEN = re.compile(r"^mmtc_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Identity:
    """Who a request acts for: a team, or the organisers."""

    name: str
    organiser: bool
    fingerprint: str  # changes when the token is rotated: old sessions stop working

    @property
    def team(self) -> str | None:
        return None if self.organiser else self.name


class TeamStore:
    def __init__(self, data_dir: Path):
        self.dir = Path(data_dir)
        self.path = self.dir / TEAMS_FILE

    # --- reading ---------------------------------------------------------------------------------

    def load(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(
                problem=f"{self.path} is not valid JSON ({exc.msg}, line {exc.lineno})",
                fix="restore it from a backup; tokens cannot be recovered from it, only reissued",
            ) from None

    def teams(self) -> dict[str, dict]:
        """Every team (organisers excluded), without token material."""
        return {
            name: {k: v for k, v in entry.items() if k != "token"}
            for name, entry in sorted(self.load().items())
            if name != ORGANISER
        }

    def get(self, team: str) -> dict | None:
        entry = self.load().get(team)
        return None if entry is None or team == ORGANISER else {k: v for k, v in entry.items() if k != "token"}

    def authenticate(self, token: str) -> Identity | None:
        """The identity a token belongs to, or None. Every entry is checked (no early exit on a match)."""
        m = TOKEN.match(token) if isinstance(token, str) else None
        if not m:
            return None
        for name, entry in self.load().items():
            t = entry.get("token")
            if t and hmac.compare_digest(t["id"], m.group(1)):
                digest = _hash(token, bytes.fromhex(t["salt"]), t["n"], t["r"], t["p"])
                if hmac.compare_digest(digest, bytes.fromhex(t["hash"])) and not entry.get("disabled"):
                    return Identity(name, name == ORGANISER, t["hash"][:16])
                return None
        _hash(token, b"\0" * 16, **SCRYPT)  # an unknown id costs the same time as a wrong secret
        return None

    def identity(self, name: str, fingerprint: str) -> Identity | None:
        """The identity of a session: still enabled and under the same token."""
        entry = self.load().get(name)
        if not entry or entry.get("disabled") or not entry.get("token"):
            return None
        if not hmac.compare_digest(entry["token"]["hash"][:16], fingerprint):
            return None
        return Identity(name, name == ORGANISER, fingerprint)

    # --- writing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".teams.lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                data = self.load()
                yield data
                atomic_write_bytes(self.path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
                os.chmod(self.path, 0o600)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _token_entry(key_id: str, token: str) -> dict:
        salt = secrets.token_bytes(16)
        return {
            "id": key_id,
            "salt": salt.hex(),
            "hash": _hash(token, salt, **SCRYPT).hex(),
            "scheme": "scrypt",
            **SCRYPT,
        }

    def add(self, team: str, display_name: str = "", members: list[str] | None = None) -> str:
        """Register a team; returns its token (shown once, never stored)."""
        check_team(team)
        display_name = _display_name(display_name or team)
        members = [_email(m) for m in members or []]
        key_id, token = new_token()
        with self._editing() as data:
            if team in data:
                raise InputError(
                    problem=f"team '{team}' exists already", fix=f"use `mmtc team rotate {team}` for a new token"
                )
            data[team] = {
                "display_name": display_name,
                "members": members,
                "created_at": _now(),
                "disabled": False,
                "token": self._token_entry(key_id, token),
            }
        return token

    def rotate(self, team: str) -> str:
        """A new token for a team (or the organisers): the old one and its sessions stop working."""
        key_id, token = new_token()
        with self._editing() as data:
            if team not in data and team != ORGANISER:
                raise InputError(problem=f"no team '{team}'", fix="add it first: mmtc team add NAME")
            entry = data.setdefault(team, {"display_name": "organisers", "members": [], "created_at": _now()})
            entry["token"] = self._token_entry(key_id, token)
            entry["rotated_at"] = _now()
            entry["disabled"] = False if team == ORGANISER else entry.get("disabled", False)
        return token

    def set_disabled(self, team: str, disabled: bool = True) -> None:
        with self._editing() as data:
            if team not in data or team == ORGANISER:
                raise InputError(problem=f"no team '{team}'", fix="see `mmtc team list`")
            data[team]["disabled"] = disabled
            data[team]["disabled_at" if disabled else "enabled_at"] = _now()

    def set_writeup(self, team: str, markdown: str, max_chars: int = 20000) -> None:
        if len(markdown) > max_chars:
            raise InputError(
                problem=f"the write-up has {len(markdown)} characters, more than {max_chars}", fix="shorten it"
            )
        with self._editing() as data:
            if team not in data or team == ORGANISER:
                raise InputError(problem=f"no team '{team}'", fix="sign in again")
            data[team]["writeup"] = markdown
            data[team]["writeup_at"] = _now()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _display_name(text: str) -> str:
    text = " ".join(str(text).split())
    if not 1 <= len(text) <= 80 or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise InputError(
            problem="the display name must be 1 to 80 printable characters",
            fix="shorten or clean it",
            values=[text[:80]],
        )
    return text


def _email(text: str) -> str:
    if not EMAIL.match(text):
        raise InputError(
            problem="not an e-mail address", fix="give each member as name@example.org", values=[text[:80]]
        )
    return text
