"""The page's Explain button, in real headless Chromium against a real server: after a
prediction, it shows the columns that drive it (skipped without Playwright or Chromium)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the web page tests need Playwright for Python")


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def test_explain_button_shows_the_driving_columns(serve, lgb_one):
    executable = _chromium()
    if executable is None:
        pytest.skip("the web page tests need Chromium (/usr/bin/chromium or `chromium` on PATH)")
    url = serve({"lgb": lgb_one})
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(15_000)
        page.goto(url + "/")
        page.get_by_label("x0", exact=True).fill("2.5")
        for name in ("n1", "n2", "n3"):
            page.get_by_label(name, exact=True).fill("0")
        page.get_by_role("button", name="Predict", exact=True).click()
        page.locator("#prediction-value").wait_for()
        with page.expect_request(lambda r: r.url.endswith("/v1/models/lgb/explain")) as sent:
            page.get_by_role("button", name="Explain", exact=True).click()
        assert sent.value.post_data_json["record"]["x0"] == 2.5
        rows = page.locator(".explain-row")
        rows.first.wait_for()
        assert rows.count() == 5 and rows.first.get_attribute("data-column") == "x0"
        assert "probability of 'yes'" in page.locator(".explain-title").inner_text()
        assert page.locator(".explain-fill.up").count() >= 1
        browser.close()
    assert not errors, errors
