"""The project's own errors, each with a stable machine code and HTTP status.

Every layer raises these; the API renders them in one place
(`backend.api.error_responses`) as ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from typing import Any


class TandemError(Exception):
    code = "internal"
    status = 500
    default_message = "Internal server error."

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(TandemError):
    code, status, default_message = "invalid_request", 400, "The request is not valid."


class Unauthenticated(TandemError):
    code, status, default_message = "unauthenticated", 401, "Sign in first."


class Forbidden(TandemError):
    code, status, default_message = "forbidden", 403, "You may not do that."


class RuleDenied(TandemError):
    code, status, default_message = "rule_denied", 403, "A rule of this collaboration refused it."

    def __init__(self, rule_id: str, message: str):
        super().__init__(message, {"ruleId": rule_id, "message": message})


class NotFound(TandemError):
    code, status, default_message = "not_found", 404, "Not found."


class VersionConflict(TandemError):
    code, status, default_message = "version_conflict", 409, "The collaboration changed meanwhile."


class RequestInProgress(TandemError):
    """An earlier request with the same Idempotency-Key still runs: 409 with `Retry-After`."""

    code, status, default_message = "request_in_progress", 409, "A request with this Idempotency-Key is still running."

    def __init__(self, retry_after: int, message: str | None = None):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, {"retryAfter": self.retry_after})


class InvalidTransition(TandemError):
    code, status, default_message = "invalid_transition", 409, "That change is not allowed now."


class AlreadyDecided(InvalidTransition):
    """An approval that is no longer pending (decided or expired): the contract's invalid_transition, 409."""

    default_message = "That was already decided."


class PayloadTooLarge(TandemError):
    code, status, default_message = "payload_too_large", 413, "The request body is too large."


class HeadersTooLarge(TandemError):
    code, status, default_message = "headers_too_large", 431, "The request headers are too large."


class DocumentTooLarge(TandemError):
    code, status, default_message = "document_too_large", 413, "The collaboration would grow past its size cap."


class ValidationFailed(TandemError):
    """422 with the failing fields: ``details.fields = [{"path", "message"}]``."""

    code, status, default_message = "validation_failed", 422, "Some fields are not valid."

    def __init__(self, fields: list[dict[str, str]] | str, message: str | None = None):
        if isinstance(fields, str):
            fields = [{"path": "", "message": fields}]
        msg = message or "; ".join(f"{f['path'] or 'body'}: {f['message']}" for f in fields)
        super().__init__(msg, {"fields": fields})
        self.fields = fields

    @classmethod
    def at(cls, path: str, message: str) -> "ValidationFailed":
        return cls([{"path": path, "message": message}])


class IdempotencyKeyReused(TandemError):
    """The caller used this Idempotency-Key before for another request (method, path or body): 422."""

    code, status = "idempotency_key_reused", 422
    default_message = "This Idempotency-Key was used for another request; use a new key."


class RateLimited(TandemError):
    code, status, default_message = "rate_limited", 429, "Too many requests; slow down."

    def __init__(self, retry_after: float, message: str | None = None):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(message, {"retryAfter": self.retry_after})


class ServiceUnavailable(TandemError):
    code, status, default_message = "unavailable", 503, "The service is not ready."


class Internal(TandemError):
    pass


ALL_ERRORS: tuple[type[TandemError], ...] = (
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    RuleDenied,
    NotFound,
    VersionConflict,
    InvalidTransition,
    AlreadyDecided,
    PayloadTooLarge,
    HeadersTooLarge,
    DocumentTooLarge,
    ValidationFailed,
    RateLimited,
    ServiceUnavailable,
    Internal,
    IdempotencyKeyReused,
    RequestInProgress,
)
