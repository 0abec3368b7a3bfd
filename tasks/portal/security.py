"""Sessions, CSRF and sign-in rate limits, with no state beyond one key file.

* The session cookie holds the identity's name, the fingerprint of its token hash and an
  expiry, signed with HMAC-SHA256 under `<data_dir>/session.key`: rotating a token or
  disabling a team ends its sessions, and a restart keeps them.
* CSRF: every form carries HMAC(key, csrf cookie | session cookie); a mutating request whose
  field does not match is refused. Both cookies are HttpOnly and SameSite=Strict.
* Sign-in attempts that fail (form or bearer token) are counted per client address in a
  sliding window; past the limit every attempt is refused with 429 until the window frees.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path

SESSION_COOKIE = "mmtc_session"
CSRF_COOKIE = "mmtc_csrf"
CSRF_FIELD = "csrf"
KEY_FILE = "session.key"


def load_key(data_dir: Path) -> bytes:
    """The signing key, created (0600) on first use."""
    path = Path(data_dir) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < 32:
            raise ValueError(
                f"{path} holds fewer than 32 bytes: delete it to make a new key (signs everyone out)"
            ) from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: bytes):
        self.key = key

    def _mac(self, purpose: str, payload: str) -> str:
        return _b64(hmac.new(self.key, f"{purpose}\0{payload}".encode(), hashlib.sha256).digest())

    def session(self, name: str, fingerprint: str, seconds: float) -> str:
        payload = _b64(json.dumps({"n": name, "f": fingerprint, "e": int(time.time() + seconds)}).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def read_session(self, value: str | None) -> tuple[str, str] | None:
        """(name, fingerprint) of a sound, unexpired session cookie, else None."""
        if not value or value.count(".") != 1 or len(value) > 1000:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("e", 0) < time.time():
            return None
        return str(data["n"]), str(data["f"])

    def csrf(self, csrf_cookie: str | None, session_cookie: str | None) -> str:
        return self._mac("csrf", f"{csrf_cookie or ''}|{session_cookie or ''}")

    def check_csrf(self, given: str | None, csrf_cookie: str | None, session_cookie: str | None) -> bool:
        if not given or not csrf_cookie:
            return False
        return hmac.compare_digest(given, self.csrf(csrf_cookie, session_cookie))


class RateLimiter:
    """Failed attempts per key (a client address) in a sliding window."""

    def __init__(self, attempts: int, window_s: float, clock=time.monotonic):
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str) -> deque:
        q = self._failures.setdefault(key, deque())
        now = self.clock()
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def blocked_for(self, key: str) -> float:
        """Seconds until `key` may try again (0: it may now)."""
        with self._lock:
            q = self._trim(key)
            if len(q) < self.attempts:
                return 0.0
            return max(0.0, self.window_s - (self.clock() - q[0]))

    def failed(self, key: str) -> None:
        with self._lock:
            self._trim(key).append(self.clock())
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures = {k: v for k, v in self._failures.items() if v}
