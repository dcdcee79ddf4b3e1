"""/docs (Swagger UI) and /redoc (ReDoc) served from files installed with mdmtune, so that they work offline.

FastAPI's own pages load Swagger UI, ReDoc and a favicon from a CDN, and an offline or firewalled server shows blank
pages. The package `fastapi-offline` ships swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and a favicon;
they are mounted under STATIC_URL and the pages are FastAPI's own (`get_swagger_ui_html`, `get_redoc_html`, as in
FastAPI's "Self-hosting JavaScript and CSS for docs") pointed at them. Nothing on either page names another host:
no Google Fonts, and Swagger UI's online validator is switched off.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/docs-assets"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_folder() -> Path:
    """Where the installed `fastapi-offline` keeps the Swagger UI and ReDoc files."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def _page(app: FastAPI, request: Request, name: str) -> tuple[str, dict[str, str]]:
    """The proxy's root path, and the schema URL and title every page takes: behind a proxy (root_path) each URL
    must be the proxied one, or the browser asks the wrong path."""
    root = request.scope.get("root_path", "")
    return root, {"openapi_url": f"{root}{app.openapi_url}", "title": f"{app.title} - {name}"}


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Mount the assets and add the two pages (the app must be built with docs_url=None, redoc_url=None)."""
    app.mount(STATIC_URL, StaticFiles(directory=assets_folder()), name="docs-assets")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root, page = _page(app, request, "Swagger UI")
        assets = f"{root}{STATIC_URL}"
        return get_swagger_ui_html(
            **page,
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}" if oauth2_redirect_url else None,
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root, page = _page(app, request, "ReDoc")
        assets = f"{root}{STATIC_URL}"
        return get_redoc_html(
            **page,
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )
