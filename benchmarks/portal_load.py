"""The portal under load, on loopback: teams uploading through the JSON API while clients read
the board page, against the same work done without the portal, side by side.

    .venv/bin/python benchmarks/portal_load.py [--teams 20] [--readers 50] [--seconds 60]

A throw-away project (the corpus release of two tasks) is served by `mmtc portal` (uvicorn,
one process) on 127.0.0.1. For `--seconds` (and at most `--max-uploads` per team), each team
uploads distinct predictions in a loop and each reader fetches /board. Afterwards every
accepted upload must be recorded exactly once on disk (one folder per accepted id, no other).
Prints requests per second and p50/p95 latency of uploads and of the board page, and, as the
reference measured in the same run, the same uploads through submit() directly and the same
board file served as a static file (/board/full).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core.params import load_params  # noqa: E402
from tasks.portal.teams import TeamStore  # noqa: E402
from tasks.submissions.submit import submit  # noqa: E402
from tasks.submissions.validate import load_contracts  # noqa: E402
from tests.integration.portal_server import serve  # noqa: E402
from tests.scoring_support import RELEASE, TASKS, hidden  # noqa: E402
from tests.unit.portal.conftest import make_project  # noqa: E402
from tests.unit.portal.test_board_and_history import evaluate_and_rank  # noqa: E402

CLASSES = ["lamp", "mug", "vase"]


def predictions(rng: random.Random) -> dict[str, bytes]:
    """One upload: both tasks, random labels in a random row order (distinct content every time)."""
    out = {}
    for task in TASKS:
        t = hidden(RELEASE / "private", task)
        key = t.column_names[0]
        ids = t.column(key).to_pylist()
        rng.shuffle(ids)
        labels = [rng.choice(CLASSES) if key == "id" else rng.randint(0, 1) for _ in ids]
        out[f"{task}.csv"] = ("\n".join([f"{key},label"] + [f"{i},{v}" for i, v in zip(ids, labels)]) + "\n").encode()
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def line(name: str, lat: list[float], seconds: float) -> str:
    return (
        f"{name:<28} {len(lat):>6} req  {len(lat) / seconds:>8.1f} req/s  "
        f"p50 {1000 * pct(lat, 0.5):>8.1f} ms  p95 {1000 * pct(lat, 0.95):>8.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", type=int, default=20)
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-uploads", type=int, default=2000, help="per team: the load stops there too")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mmtc-portal-load-"))
    try:
        root = make_project(work / "project")
        data = yaml.safe_load((root / "params.yaml").read_text())
        data["submit"] |= {"max_per_day": 100_000, "max_total": 100_000}
        (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        store = TeamStore(root / ".portal")
        tokens = {f"team-{k:02d}": store.add(f"team-{k:02d}") for k in range(a.teams)}
        rng = random.Random(a.seed)
        first = root / "first"
        first.mkdir()
        for name, body in predictions(rng).items():
            (first / name).write_bytes(body)
        params = load_params(root / "params.yaml")
        contracts = load_contracts(root / "data" / "public", TASKS)
        submit(first, "seed-team", submissions_root=root / "submissions", contracts=contracts, params=params.submit)
        evaluate_and_rank(root)  # a board to read

        results: dict[str, list] = {"upload": [], "board": [], "errors": [], "accepted": []}
        lock = threading.Lock()
        stop = threading.Event()

        with serve(root, work / "portal.log") as url:

            def uploader(team: str, token: str, seed: int) -> None:
                r_ = random.Random(seed)
                with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
                    for _ in range(a.max_uploads):
                        if stop.is_set():
                            return
                        files = [("file", (n, b)) for n, b in predictions(r_).items()]
                        t0 = time.perf_counter()
                        r = c.post("/api/v1/submissions", files=files)
                        dt = time.perf_counter() - t0
                        with lock:
                            if r.status_code == 201:
                                results["upload"].append(dt)
                                results["accepted"].append((team, r.json()["submission_id"], r.json()["duplicate"]))
                            else:
                                results["errors"].append(f"upload {r.status_code}: {r.text[:200]}")

            def reader() -> None:
                with httpx.Client(base_url=url, timeout=120) as c:
                    while not stop.is_set():
                        t0 = time.perf_counter()
                        r = c.get("/board")
                        dt = time.perf_counter() - t0
                        with lock:
                            if r.status_code == 200 and 'class="board"' in r.text:
                                results["board"].append(dt)
                            else:
                                results["errors"].append(f"board {r.status_code}")

            threads = [
                threading.Thread(target=uploader, args=(t, tok, a.seed + k + 1))
                for k, (t, tok) in enumerate(tokens.items())
            ]
            threads += [threading.Thread(target=reader) for _ in range(a.readers)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            time.sleep(a.seconds)
            stop.set()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start

            # the portal alone: one team uploading, one at a time (no queue)
            alone = []
            token = next(iter(tokens.values()))
            with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
                for _ in range(50):
                    files = [("file", (n, b)) for n, b in predictions(rng).items()]
                    t0 = time.perf_counter()
                    r = c.post("/api/v1/submissions", files=files)
                    alone.append(time.perf_counter() - t0)
                    if r.status_code == 201:
                        results["accepted"].append(
                            (next(iter(tokens)), r.json()["submission_id"], r.json()["duplicate"])
                        )
                    else:
                        results["errors"].append(f"upload alone {r.status_code}: {r.text[:200]}")

            # the reference, same run: the static board file, sequential
            static = []
            with httpx.Client(base_url=url, timeout=60) as c:
                for _ in range(200):
                    t0 = time.perf_counter()
                    c.get("/board/full")
                    static.append(time.perf_counter() - t0)

        # the reference: the same kind of upload through submit() directly, sequential
        direct = []
        for k in range(100):
            folder = work / "direct" / str(k)
            folder.mkdir(parents=True)
            for name, body in predictions(rng).items():
                (folder / name).write_bytes(body)
            t0 = time.perf_counter()
            submit(folder, "direct", submissions_root=work / "direct-subs", contracts=contracts, params=params.submit)
            direct.append(time.perf_counter() - t0)

        # every accepted upload recorded exactly once
        accepted = results["accepted"]
        ids = {(t, s) for t, s, _ in accepted}
        on_disk = {
            (t.name, s.name)
            for t in (root / "submissions").iterdir()
            if t.name.startswith("team-")
            for s in t.iterdir()
            if (s / "submission.json").is_file()
        }
        duplicates = sum(1 for _, _, d in accepted if d)

        print(
            f"portal load: {a.teams} teams uploading, {a.readers} board readers, {elapsed:.1f} s, loopback, one uvicorn process"
        )
        print(line("upload (POST, 2 files)", results["upload"], elapsed))
        print(line("board page (GET /board)", results["board"], elapsed))
        total = len(results["upload"]) + len(results["board"])
        print(f"{'all requests':<28} {total:>6} req  {total / elapsed:>8.1f} req/s")
        print(line("upload alone (no load)", alone, sum(alone)) + "  (one client, sequential)")
        print(line("reference: submit() direct", direct, sum(direct)) + "  (sequential)")
        print(line("reference: static board", static, sum(static)) + "  (sequential, GET /board/full)")
        print(
            f"ratios: upload p50 portal alone / submit() direct = {pct(alone, 0.5) / pct(direct, 0.5):.2f}x, "
            f"under load / alone = {pct(results['upload'], 0.5) / pct(alone, 0.5):.2f}x; "
            f"board p50 rendered under load / static file alone = {pct(results['board'], 0.5) / pct(static, 0.5):.2f}x"
        )
        ok = ids == on_disk and len(ids) == len(accepted) - duplicates
        print(
            f"accepted uploads: {len(accepted)} answered 201 ({duplicates} duplicates), {len(ids)} distinct ids, "
            f"{len(on_disk)} folders on disk: {'each recorded exactly once' if ok else 'MISMATCH'}; errors: {len(results['errors'])}"
        )
        for e in results["errors"][:5]:
            print("  ", e)
        if not ok or results["errors"]:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
