"""A team in a real headless Chromium (Debian's package): signs in with its token, uploads a
file through the form, sees it accepted, its history and the board. Screenshots are kept
(MMTC_SCREENSHOT_DIR, else the test's folder). Fails instead of skipping under MMTC_REQUIRE_BROWSER=1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tasks.portal.teams import TeamStore
from tests.integration.portal_server import serve
from tests.integration.test_leaderboard_browser import FLAGS, _browser
from tests.unit.portal.conftest import good_files, make_project
from tests.unit.portal.test_board_and_history import evaluate_and_rank

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def driver(tmp_path_factory):
    binary, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-portal')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield d
    finally:
        d.quit()


def shoot(d, folder: Path, name: str) -> Path:
    path = folder / f"portal-{name}.png"
    assert d.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("MMTC_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def after_click(d, path: str):
    """The page a click navigated to: click() returns once the event is sent, not once the next
    page has loaded (a loaded CI machine showed the sign-in page still there), so wait for it."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(d, 30).until(
            lambda d: (
                urlparse(d.current_url).path.startswith(path)
                and d.execute_script("return document.readyState") == "complete"
            )
        )
    except TimeoutException:
        raise AssertionError(f"still at {d.current_url} after 30 s, not {path}:\n{d.page_source[-2000:]}") from None


def test_a_team_signs_in_uploads_and_sees_its_history_and_the_board(driver, tmp_path):
    from selenium.webdriver.common.by import By

    root = make_project(tmp_path / "project")
    token = TeamStore(root / ".portal").add("alpha", "Team Alpha")
    preds = good_files(tmp_path / "preds", flip=1)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve(root, tmp_path / "portal.log") as url:
        driver.get(url + "/")
        assert "Shop items into kinds" in driver.find_element(By.ID, "tasks").text
        driver.find_element(By.ID, "signin-link").click()
        after_click(driver, "/signin")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "signin").click()
        after_click(driver, "/history")
        assert driver.find_element(By.ID, "empty").text.startswith("No submission yet")
        shoot(driver, shots, "signed-in")

        driver.get(url + "/upload")
        driver.find_element(By.ID, "file").send_keys("\n".join(str(p) for p in preds))
        driver.find_element(By.ID, "name").send_keys("browser-try")
        driver.find_element(By.ID, "description").send_keys("from Chromium")
        driver.find_element(By.ID, "submit").click()
        after_click(driver, "/history/")  # the upload's own page
        assert driver.find_element(By.ID, "status").text == "accepted"
        shoot(driver, shots, "accepted")

        evaluate_and_rank(root)  # the next evaluation run
        driver.get(url + "/history")
        rows = driver.find_elements(By.CSS_SELECTOR, "#history tr.submission")
        assert len(rows) == 1 and rows[0].get_attribute("data-status") == "scored"
        assert "browser-try" in rows[0].text and "from Chromium" in rows[0].text and "shop_kind:" in rows[0].text
        shoot(driver, shots, "history")

        driver.get(url + "/board")
        teams = [
            e.get_attribute("data-team") for e in driver.find_elements(By.CSS_SELECTOR, "table.board tr[data-team]")
        ]
        assert "alpha" in teams
        shoot(driver, shots, "board")

        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        assert severe == [], severe
    assert sorted(p.name for p in shots.iterdir()) == [
        f"portal-{n}.png" for n in ("accepted", "board", "history", "signed-in")
    ]
