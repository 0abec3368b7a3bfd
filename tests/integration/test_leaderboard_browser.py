"""The leaderboard page in a real headless Chromium: tables, sorting by clicking a header,
baseline badges, plots drawn by plotly, no console errors; a screenshot is kept.

Fails (does not skip) when MMTC_REQUIRE_BROWSER=1 and Chromium or chromedriver is missing,
so CI cannot pass without running it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.board_support import scored_board
from tests.unit.board.test_leaderboard import BASE_ROWS, run_board, score_rows, write_results

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,2600",
]


def _browser(which=shutil.which) -> tuple[str, str]:
    binary = which("chromium") or which("chromium-browser")
    driver = which("chromedriver") or which("/usr/bin/chromedriver")
    if binary and driver:
        return binary, driver
    message = "Chromium and chromedriver are needed (Debian: apt-get install -y chromium chromium-driver)"
    if os.environ.get("MMTC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MMTC_REQUIRE_BROWSER=1 but {message}")
    pytest.skip(message)


@pytest.fixture
def page(tmp_path) -> Path:
    write_results(tmp_path / "results", BASE_ROWS, rejected={"b": 1})
    run_board(tmp_path, "2026-11-10T00:00:00Z")
    rows = (
        BASE_ROWS
        + score_rows("c", "s1", "2026-11-10T12:00:00Z", "m1", 0.9, 0.5)
        + score_rows("a", "s2", "2026-11-11T09:00:00Z", "c2", 0.7, 0.6)
        + score_rows("baseline-x", "c1", "2026-11-01T00:00:00Z", "c1", 0.4, 0.4, baseline=True)
    )
    write_results(tmp_path / "results", rows, rejected={"b": 1})
    run_board(tmp_path, "2026-11-12T00:00:00Z")
    return tmp_path / "leaderboard" / "latest.html"


@pytest.fixture
def driver(tmp_path_factory):
    binary, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:  # a fresh profile
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield d
    finally:
        d.quit()


def texts(d, css: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in d.find_elements(By.CSS_SELECTOR, css)]


def test_the_page_renders_sorts_and_draws(page, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.as_uri())
    WebDriverWait(driver, 90).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-plots-rendered"))

    # tables: one per track, one per task
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.board")) == 2
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.task-table")) == 3
    matching = "#table-track-matching tbody tr"
    teams = [e.get_attribute("data-team") for e in driver.find_elements(By.CSS_SELECTOR, matching)]
    assert teams == ["c", "b", "baseline-x"]
    assert texts(driver, f"{matching} td:first-child") == ["1", "2", "–"]

    # baselines: a badge, a marked row, no rank
    badges = driver.find_elements(By.CSS_SELECTOR, "#table-track-matching .badge-baseline")
    assert len(badges) == 1 and badges[0].text == "baseline"
    assert (
        driver.find_element(By.CSS_SELECTOR, "#table-track-matching tr.baseline").get_attribute("data-team")
        == "baseline-x"
    )
    assert "missing" in texts(driver, "#table-track-classification td.missing")

    # sorting: click the Team header (text, ascending then descending), then Rank (baselines last)
    header = driver.find_element(By.XPATH, "//table[@id='table-track-matching']//th[normalize-space()='Team']")
    header.click()
    assert [e.get_attribute("data-team") for e in driver.find_elements(By.CSS_SELECTOR, matching)] == [
        "b",
        "baseline-x",
        "c",
    ]
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert [e.get_attribute("data-team") for e in driver.find_elements(By.CSS_SELECTOR, matching)] == [
        "c",
        "baseline-x",
        "b",
    ]
    driver.find_element(By.XPATH, "//table[@id='table-track-matching']//th[normalize-space()='Rank']").click()
    assert [e.get_attribute("data-team") for e in driver.find_elements(By.CSS_SELECTOR, matching)] == [
        "c",
        "b",
        "baseline-x",
    ]
    mean = driver.find_element(By.XPATH, "//table[@id='table-track-matching']//th[normalize-space()='Mean']")
    mean.click()
    values = [float(v) for v in texts(driver, f"{matching} td:nth-child(4)")]
    assert values == sorted(values)

    # plots: four figures drawn as SVG by plotly, with their traces
    plots = driver.find_elements(By.CSS_SELECTOR, "#plots .plot")
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-plots-rendered") == str(len(plots)) == "4"
    for plot in plots:
        assert plot.find_elements(By.CSS_SELECTOR, "svg.main-svg"), plot.get_attribute("id")
        assert plot.find_elements(By.CSS_SELECTOR, "g.trace, g.scatterlayer g.trace, g.barlayer g.trace"), (
            plot.get_attribute("id")
        )
    history = driver.find_element(By.ID, "plot-history-matching")
    assert len(history.find_elements(By.CSS_SELECTOR, "g.scatterlayer g.trace")) == 3
    legend = " ".join(e.text for e in history.find_elements(By.CSS_SELECTOR, "g.legend text"))
    assert "baseline-x (baseline)" in legend

    # the changes since the previous snapshot are on the page
    assert "c enters track matching at rank 1" in driver.find_element(By.ID, "changes").text

    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], severe

    shot = tmp_path / "leaderboard.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    keep = os.environ.get("MMTC_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "leaderboard.png")


def test_intervals_ties_rules_and_diagnostics_on_a_closed_board(driver, tmp_path):
    """A board scored from real submissions (the bootstrap has its counts), closed: intervals,
    rank ranges, tie brackets, the aggregation comparison, the gap, the banner, every plot drawn,
    each team's own diagnostics; a screenshot is kept."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    result = scored_board(tmp_path, closed=True)
    driver.get((tmp_path / "leaderboard" / "latest.html").as_uri())
    WebDriverWait(driver, 90).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-plots-rendered"))

    banner = driver.find_element(By.ID, "weights-banner")
    assert banner.is_displayed() and "RANDOMLY INITIALISED CLIP weights" in banner.text
    assert "paired bootstrap" in driver.find_element(By.ID, "intervals-note").text
    rows = {r["team"]: r for r in result.board.to_pylist() if r["level"] == "track" and r["track"] == "classification"}
    table = "#table-track-classification tbody tr"
    for tr in driver.find_elements(By.CSS_SELECTOR, table):
        r = rows[tr.get_attribute("data-team")]
        cells = tr.find_elements(By.TAG_NAME, "td")
        assert cells[4].text == f"{r['private_lo']:.3f}–{r['private_hi']:.3f}", tr.get_attribute("data-team")
        if r["rank"] is not None:
            low, high = r["rank_lo"], r["rank_hi"]
            assert cells[9].text == (str(low) if low == high else f"{low}–{high}")
    brackets = texts(driver, "#table-track-classification td.tie")
    assert brackets.count("┬") == 1 and brackets.count("┴") == 1, brackets  # one tie group of the four teams
    assert "adjacent pairs of ranked teams are separated" in driver.find_element(By.ID, "separated-classification").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#table-rules-classification tbody tr")) == 4
    assert "Kendall's tau" in driver.find_element(By.ID, "kendall-classification").text

    plots = driver.find_elements(By.CSS_SELECTOR, ".plot")
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-plots-rendered") == str(len(plots))
    ids = {p.get_attribute("id") for p in plots}
    assert {"plot-intervals-classification", "plot-public-private-matching", "plot-pr-beta-same_item"} <= ids
    for plot in plots:
        assert plot.find_elements(By.CSS_SELECTOR, "svg.main-svg g.trace"), plot.get_attribute("id")

    beta = driver.find_element(By.ID, "team-beta")
    assert len(beta.find_elements(By.CSS_SELECTOR, "table.per-class tbody tr")) >= 2
    assert beta.find_elements(By.CSS_SELECTOR, "table.confusion td.off"), "beta's wrong rows show off the diagonal"
    assert "precision" in beta.find_element(By.CSS_SELECTOR, "p.at-threshold").text

    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], severe
    shot = tmp_path / "leaderboard-intervals.png"
    driver.set_window_size(1400, 5200)
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
    keep = os.environ.get("MMTC_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def test_a_missing_browser_fails_when_ci_requires_it(monkeypatch):
    monkeypatch.setenv("MMTC_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="MMTC_REQUIRE_BROWSER=1"):
        _browser(which=lambda name: None)
    monkeypatch.delenv("MMTC_REQUIRE_BROWSER")
    with pytest.raises(pytest.skip.Exception):
        _browser(which=lambda name: None)
