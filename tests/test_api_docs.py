"""/docs and /redoc work offline: the pages name only this server's URLs, the assets come from the installed
package, and a real browser (headless Chromium, every other host unresolvable) lists every operation of the schema.

The browser checks are skipped where no `chromium` is installed (CI does not install it: about 480 MB).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from apiserver import database, running_server

from mdmtune.service.app.docs_pages import ASSETS, STATIC_URL, assets_folder
from mdmtune.service.settings import Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    with database("sqlite", folder) as url, running_server(_settings(folder, url)) as srv:
        yield srv


def _settings(folder, url):
    return Settings(data_dir=folder, database_url=url, workers=0)


class _Links(HTMLParser):
    """Every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_name_only_local_urls(server, page):
    response = httpx.get(server.base_url + page)
    assert response.status_code == 200
    links = _Links()
    links.feed(response.text)
    assert links.urls, "the page loads its script from somewhere"
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
    assert not re.search(r"https?://|//[a-z]", response.text, re.IGNORECASE), "no other host anywhere on the page"
    script = "swagger-ui-bundle.js" if page == "/docs" else "redoc.standalone.js"
    assert f"{STATIC_URL}/{script}" in links.urls


@pytest.mark.parametrize("asset", ASSETS)
def test_assets_are_served_as_installed(server, asset):
    response = httpx.get(f"{server.base_url}{STATIC_URL}/{asset}")
    assert response.status_code == 200
    assert response.content == (assets_folder() / asset).read_bytes()
    assert len(response.content) > 1000


def _browser(*arguments: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a throwaway profile; every host but 127.0.0.1 fails to resolve (offline)."""
    profile = tempfile.mkdtemp(prefix="mdmtune-chromium-")
    try:
        return subprocess.run(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=15000",
                *arguments,
            ],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize(("page", "element_id"), [("/docs", "operations-{tag}-{op}"), ("/redoc", "operation/{op}")])
def test_a_browser_offline_lists_every_operation(server, page, element_id):
    schema = httpx.get(f"{server.base_url}/openapi.json").json()
    expected = [
        element_id.format(tag=op["tags"][0], op=op["operationId"])
        for ops in schema["paths"].values()
        for op in ops.values()
    ]
    assert len(expected) >= 10
    result = _browser("--dump-dom", server.base_url + page)
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = set(re.findall(r'id="([^"]+)"', result.stdout))
    missing = [one for one in expected if one not in rendered]
    assert not missing, f"{page} does not show {missing}"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_browser_screenshot_of_the_docs(server, tmp_path):
    """A PNG of /docs as a person sees it (tests/test_api_docs.py -k screenshot --basetemp=DIR keeps it)."""
    shot = tmp_path / "docs.png"
    result = _browser(f"--screenshot={shot}", "--window-size=1280,1400", server.base_url + "/docs")
    assert result.returncode == 0, result.stderr[-2000:]
    data = Path(shot).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
