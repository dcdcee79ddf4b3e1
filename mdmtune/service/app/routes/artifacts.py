"""Uploads: checkpoints (a file, a zipped folder, or a server-side `uri`) and eval sets (JSONL).

Every upload is streamed into a private staging area while it is hashed, validated there, and only then moved to
its content address and given a row; any failure on the way leaves neither a file nor a row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.types import DecoratedCallable
from pydantic import ValidationError
from sqlalchemy.orm import Session

from mdmtune.service.app import intake
from mdmtune.service.app.deps import Services, current_owner, get_services
from mdmtune.service.app.problems import Problem, problem_responses
from mdmtune.service.app.schemas import CheckpointOut, CheckpointUri, EvalSetOut
from mdmtune.service.app.store import ArtifactStore
from mdmtune.service.app.uploads import FilePart
from mdmtune.service.db.models import Checkpoint, EvalSetRow

router = APIRouter(prefix="/v1", tags=["artifacts"], responses=problem_responses(400, 401, 403, 413, 415, 422))

MAX_JSON_BODY = 64 * 1024

_MULTIPART_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
_CHECKPOINT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            **_MULTIPART_DOC["requestBody"]["content"],
            "application/json": {"schema": CheckpointUri.model_json_schema()},
        },
    }
}


def _save_row(services: Services, row: Checkpoint | EvalSetRow, created: bool) -> None:
    """Insert the row; if that fails, take back an artifact this request created, so nothing is left behind."""
    session: Session
    with services.sessions() as session:
        session.add(row)
        try:
            session.commit()
        except Exception:
            session.rollback()
            if created:
                services.store.remove(row.sha256)
            raise


def _relative(store: ArtifactStore, path: Path) -> str:
    return path.relative_to(store.root).as_posix()


async def _streamed(request: Request, store: ArtifactStore, area: Path) -> tuple[intake.Received, str | None]:
    part = FilePart(request, "file", store.max_upload_bytes)
    received = await store.receive(part.chunks(), area / "incoming")
    return received, part.filename


def _commit(store: ArtifactStore, content: Path, sha256: str) -> tuple[Path, bool]:
    """Move staged content to its address: (where it now lies, whether this request created it there)."""
    created = not store.path_for(sha256).exists()
    return store.commit(content, sha256), created


def _upload_route(
    path: str, response_model: type, summary: str, body_doc: dict[str, object]
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """POST `path`, answering 201 with the new artifact; `body_doc` documents the upload body FastAPI cannot infer."""
    return router.post(path, status_code=201, response_model=response_model, summary=summary, openapi_extra=body_doc)


@_upload_route(
    "/checkpoints",
    CheckpointOut,
    "Upload a checkpoint (multipart `file`: a file or a zipped folder) or register a server-side `uri`",
    _CHECKPOINT_DOC,
)
async def create_checkpoint(
    request: Request, owner: str = Depends(current_owner), services: Services = Depends(get_services)
) -> CheckpointOut:
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        return await _checkpoint_from_uri(request, owner, services)
    store = services.store
    with store.staging() as area:
        received, filename = await _streamed(request, store, area)
        content, target = await run_in_threadpool(intake.unpack_checkpoint, received, filename, area, services.settings)
        fmt = await run_in_threadpool(intake.checkpoint_format, target, services.settings)
        meta = await run_in_threadpool(intake.checkpoint_meta, target, fmt)  # JSON files, never weights
        final, created = _commit(store, content, received.sha256)
    path = intake.locate(final, target.relative_to(content)) if target != content else final
    row = Checkpoint(
        owner_key_id=owner,
        sha256=received.sha256,
        format=fmt,
        size=received.size,
        path=_relative(store, path),
        filename=filename,
        meta=meta,
    )
    await run_in_threadpool(_save_row, services, row, created)
    return CheckpointOut.model_validate(row, from_attributes=True)


async def _checkpoint_from_uri(request: Request, owner: str, services: Services) -> CheckpointOut:
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise Problem(413, f"JSON body larger than {MAX_JSON_BODY} bytes", "uri")
    try:
        spec = CheckpointUri.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "body"
        if first.get("type") == "json_invalid":
            raise Problem(422, f"malformed JSON: {first.get('msg')}", "body") from None
        raise Problem(422, f"{field}: {first.get('msg')}", field) from None
    path = intake.allowed_path(spec.uri, services.settings)
    fmt = await run_in_threadpool(intake.checkpoint_format, path, services.settings)
    sha256, size = await run_in_threadpool(intake.hash_path, path)
    meta = await run_in_threadpool(intake.checkpoint_meta, path, fmt)
    row = Checkpoint(owner_key_id=owner, sha256=sha256, format=fmt, size=size, path=str(path), filename=None, meta=meta)
    await run_in_threadpool(_save_row, services, row, False)
    return CheckpointOut.model_validate(row, from_attributes=True)


@_upload_route("/eval-sets", EvalSetOut, "Upload an eval set (JSON Lines, multipart `file`)", _MULTIPART_DOC)
async def create_eval_set(
    request: Request, owner: str = Depends(current_owner), services: Services = Depends(get_services)
) -> EvalSetOut:
    store = services.store
    with store.staging() as area:
        received, filename = await _streamed(request, store, area)
        eval_set = await run_in_threadpool(intake.parse_uploaded_eval_set, received.path)
        facts = await run_in_threadpool(intake.eval_set_facts, eval_set)  # what job submissions read, once
        content = area / "content"
        content.mkdir()
        name = "eval_set.jsonl"
        received.path.rename(content / name)
        final, created = _commit(store, content, received.sha256)
    row = EvalSetRow(
        owner_key_id=owner,
        sha256=received.sha256,
        record_count=len(eval_set),
        kind=eval_set.kind,
        size=received.size,
        path=_relative(store, final / name),
        filename=filename,
        facts=facts,
    )
    await run_in_threadpool(_save_row, services, row, created)
    return EvalSetOut.model_validate(row, from_attributes=True)
