"""`mmtc upload`: a small client of the portal's JSON API (httpx), for teams' scripts."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx

from tasks.core.errors import InputError


def upload(
    url: str, token: str, files: list[Path], name: str | None = None, description: str = "", timeout: float = 300
) -> tuple[bool, str]:
    """(accepted, what to print). Raises InputError when the portal cannot be reached or refuses the call."""
    for f in files:
        if not Path(f).is_file():
            raise InputError(problem=f"{f} is not a file", fix="give task files (<task>.csv or .parquet) or one zip")
    data = {"description": description} | ({"name": name} if name else {})
    with ExitStack() as stack:
        parts = [("file", (Path(f).name, stack.enter_context(open(f, "rb")))) for f in files]
        try:
            r = httpx.post(
                url.rstrip("/") + "/api/v1/submissions",
                headers={"Authorization": f"Bearer {token}"},
                files=parts,
                data=data,
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise InputError(
                problem=f"the portal at {url} could not be reached ({exc})",
                fix="check --url and that `mmtc portal` runs",
            ) from None
    try:
        body = r.json()
    except ValueError:
        body = {"detail": r.text[:500]}
    if r.status_code in (201, 422):
        head = f"{body['status']} {body['team']}/{body['submission_id']} ({body['name']})"
        if body["accepted"]:
            rows = ", ".join(f"{t} {n}" for t, n in sorted(body["rows"].items()))
            again = " (already recorded)" if body["duplicate"] else ""
            return True, f"{head}{again}: {len(body['tasks'])} task(s): {rows}; scored by the next evaluation"
        return False, "\n".join([head + ": nothing will be scored"] + [f"  - {x['message']}" for x in body["reasons"]])
    raise InputError(
        problem=f"the portal refused the upload (HTTP {r.status_code}): {body.get('detail')}", fix="see the message"
    )
