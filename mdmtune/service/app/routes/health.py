"""Liveness and readiness: /healthz answers while the process runs; /readyz also needs the database and the store."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import text

from mdmtune.service.app.deps import Services, get_services
from mdmtune.service.app.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: Services = Depends(get_services)) -> dict[str, str]:
    """200 when the database answers and the artifact folder is writable; 503 naming what is not."""
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        raise Problem(503, f"database not reachable: {type(error).__name__}", "database") from None
    if not services.store.blobs.is_dir():
        raise Problem(503, "artifact folder missing", "artifact_dir")
    return {"status": "ready", "database": services.engine.dialect.name}
