"""The FastAPI application factory: `create_app(settings)` wires the routers, the store, the database and errors.

It does not run migrations or workers: `mdmtune serve` upgrades the database first and starts the in-process
workers beside it, so that an API-only node (`--workers 0`) is the same app.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import mdmtune
from mdmtune.service.app.deps import Services, storable_url
from mdmtune.service.app.docs_pages import install_docs
from mdmtune.service.app.problems import install_problem_handlers
from mdmtune.service.app.routes import artifacts, health, tune
from mdmtune.service.app.store import ArtifactStore
from mdmtune.service.db.session import make_engine, make_session_factory
from mdmtune.service.settings import Settings

log = logging.getLogger(__name__)
GIL_SWITCH_WITH_WORKERS_S = 0.001
"""With in-process worker threads (the embedded `mdmtune serve`) the worker's numpy/Optuna loop holds the GIL for the
default 5 ms at a time, and a poll needs the GIL several times: 1 ms cut a poll's median latency about four-fold
with a busy worker (22 -> 5 ms, measured); pure-API nodes (workers = 0) keep Python's default."""


def build_services(settings: Settings) -> Services:
    """The long-lived objects of one app: engine, sessions, artifact store."""
    engine = make_engine(settings.resolved_database_url)
    store = ArtifactStore(settings.resolved_artifact_dir, settings.max_upload_bytes)
    swept = store.sweep_staging(older_than_s=settings.lease_seconds)
    if swept:
        log.info("removed %d abandoned staging areas (uploads of a process that was killed)", len(swept))
    return Services(settings=settings, engine=engine, sessions=make_session_factory(engine), store=store)


def create_app(settings: Settings) -> FastAPI:
    """The mdmtune HTTP service for these settings (docs/api.md)."""
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        previous = sys.getswitchinterval()
        if settings.workers > 0:
            sys.setswitchinterval(min(previous, GIL_SWITCH_WITH_WORKERS_S))
        yield
        sys.setswitchinterval(previous)
        services.engine.dispose()

    app = FastAPI(
        title="mdmtune",
        version=getattr(mdmtune, "__version__", "0"),
        description="Tune the mask schedule of a masked diffusion model: upload a checkpoint and an eval set, "
        "POST /v1/tune, poll GET /v1/tune/{id}, then GET /v1/tune/{id}/best.",
        lifespan=lifespan,
        docs_url=None,  # served from packaged files by install_docs: FastAPI's own pages load them from a CDN
        redoc_url=None,
        dependencies=[Depends(storable_url)],
    )
    app.state.services = services
    install_problem_handlers(app)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(artifacts.router)
    app.include_router(tune.router)
    app.openapi = lambda: _openapi_with_bearer(app)  # type: ignore[method-assign]
    return app


def _openapi_with_bearer(app: FastAPI) -> dict:
    """The schema with its security scheme: every /v1 route takes `Authorization: Bearer <key>` (keys from
    `mdmtune keys create`); health checks take none. Declared here because the key is read by a dependency that
    also allows the keyless embedded mode, which FastAPI's own security classes cannot express."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from `mdmtune keys create NAME`; not needed by an embedded server that "
                "listens on loopback only.",
            }
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
    return app.openapi_schema
