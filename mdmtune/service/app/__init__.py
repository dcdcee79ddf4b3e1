"""The HTTP service: FastAPI routers, request/response schemas, the artifact store, auth and problem+json errors.

A shell around the core: routes validate, store and enqueue; the workers (mdmtune.service.workers) do the tuning.
"""
