"""Errors as application/problem+json (RFC 9457), each naming the field that was wrong.

Every 4xx carries `field` (the request field, upload part or header at fault) so that a client can point at it
without parsing prose; `errors` lists all of them when validation found several.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mdmtune.errors import InvalidInput, MdmtuneError

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, as every 4xx/5xx of this API is written."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = Field(None, description="The request field, upload part, header or path segment at fault.")
    errors: list[dict[str, str]] | None = Field(None, description="Every field at fault, when there are several.")
    instance: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json answers for these statuses."""
    schema = {"$ref": "#/components/schemas/ProblemDocument"}
    return {
        status: {
            "description": _TITLES.get(status, "Error"),
            "model": ProblemDocument,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in statuses
    }


class Problem(Exception):
    """An HTTP error the service raises on purpose; rendered as problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers or {}
        self.errors = errors


def problem_response(
    status: int,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    """The one place a problem document is shaped."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "a_bounds", 0) -> "a_bounds[0]"; the leading "body"/"query"/"path" is where, not what."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie") and len(parts) > 1:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name = f"{name}.{part}" if name else str(part)
    return name or "body"


def _validation_errors(error: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for item in error.errors():
        kind = item.get("type", "")
        loc = item.get("loc", ())
        if kind == "json_invalid":
            field, message = "body", f"malformed JSON: {item.get('ctx', {}).get('error', item.get('msg'))}"
        elif kind == "extra_forbidden":
            field, message = _loc_to_field(loc), "unknown field; see the OpenAPI schema for the allowed fields"
        else:
            field, message = _loc_to_field(loc), str(item.get("msg", "invalid"))
        out.append({"field": field, "message": message})
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, exc.field, exc.headers, exc.errors, request.url.path)


async def _on_invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return problem_response(422, exc.message, exc.field, instance=request.url.path)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    field = errors[0]["field"] if errors else "body"
    return problem_response(422, detail, field, errors=errors, instance=request.url.path)


_HTTP_FIELDS = {400: "body", 405: "method", 413: "body", 415: "body"}
"""What Starlette's and FastAPI's own errors are about: a 400 is a body that could not be parsed (bytes that are
not UTF-8 JSON), a 404 the path, a 405 the method."""


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    field = _HTTP_FIELDS.get(exc.status_code, "path")
    return problem_response(exc.status_code, str(exc.detail), field, headers, instance=request.url.path)


async def _on_internal(request: Request, exc: Exception) -> JSONResponse:
    # No logging here: Starlette re-raises after this response and the server logs the traceback once.
    detail = str(exc) if isinstance(exc, MdmtuneError) else "internal error; see the server log"
    return problem_response(500, detail, instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through problem_response."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(InvalidInput, _on_invalid_input)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(MdmtuneError, _on_internal)
    app.add_exception_handler(Exception, _on_internal)
