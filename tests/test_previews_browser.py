"""The preview pages in a real headless browser (Debian's chromium, driven by Selenium).

Screenshots are kept under test-artifacts/ for a person to look at. Without chromium and
selenium the test is skipped, unless ASYNC_EMAIL_REQUIRE_BROWSER=1 (as in CI) makes that a
failure.
"""

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser_or_skip():
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        missing = "selenium"
    else:
        missing = None if CHROMIUM and CHROMEDRIVER else "chromium and chromium-driver"
    if missing:
        if os.environ.get("ASYNC_EMAIL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{missing} is required for the browser test (apt-get install chromium chromium-driver)")
        pytest.skip(f"{missing} not installed")


@pytest.fixture
def browser():
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.mark.django_db(transaction=True)
def test_previews_render_in_a_real_browser(browser, live_server, admin_user, client):
    from selenium.webdriver.common.by import By

    client.force_login(admin_user)
    session = client.cookies["sessionid"].value
    browser.get(live_server.url + "/emails/previews/")
    browser.add_cookie({"name": "sessionid", "value": session, "path": "/"})
    browser.get(live_server.url + "/emails/previews/")
    kinds = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.kind")]
    assert kinds == ["verification", "password_reset", "password_changed", "invitation", "welcome", "notification"]
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "previews-index.png"))

    browser.find_element(By.LINK_TEXT, "password_reset").click()
    assert browser.find_element(By.ID, "subject").text == "Reset your password on ZamIO"
    assert "reset-password?uid=" in browser.find_element(By.ID, "text").text
    frame = browser.find_element(By.ID, "html")
    assert frame.size["width"] > 400 and frame.size["height"] > 400
    browser.save_screenshot(str(ARTIFACTS / "previews-password_reset.png"))
    browser.switch_to.frame(frame)
    button = browser.find_element(By.LINK_TEXT, "Choose a new password")
    assert button.is_displayed() and "token=preview-token" in button.get_attribute("href")
    browser.switch_to.default_content()
    assert (ARTIFACTS / "previews-password_reset.png").stat().st_size > 10_000
