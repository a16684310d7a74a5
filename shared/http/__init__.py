"""HTTP plumbing every service shares: RFC 9457 problems, request ids, the body-size limit,
415 for non-JSON bodies, If-Match preconditions (412) and the 405 `Allow` header.

Domain code raises `ProblemError` subclasses (`class QuantityTooHigh(Unprocessable)`); one set of
handlers turns every error into `application/problem+json`. The middlewares are pure ASGI: they
sit on the hot path of every request. Idempotency-Key and cursors live in `shared.idempotency`
and `shared.pagination`.
"""

from shared.http.limits import BodyLimitMiddleware
from shared.http.media import JsonBodyMiddleware
from shared.http.preconditions import IfMatch, parse_if_match
from shared.http.problems import (
    PROBLEM_BASE,
    PROBLEM_JSON,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    Problem,
    ProblemError,
    ServiceUnavailable,
    Unauthorized,
    UnhandledErrorMiddleware,
    Unprocessable,
    UnsupportedMediaType,
    ValidationFailed,
    error_response,
    field_path,
    field_problems,
    install_problem_handlers,
    problem_response,
    problem_type,
    validation_errors,
)
from shared.http.request_id import RequestIdMiddleware, current_request_id

__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_JSON",
    "BadRequest",
    "BodyLimitMiddleware",
    "Conflict",
    "FieldError",
    "Forbidden",
    "IfMatch",
    "JsonBodyMiddleware",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Problem",
    "ProblemError",
    "RequestIdMiddleware",
    "ServiceUnavailable",
    "Unauthorized",
    "UnhandledErrorMiddleware",
    "Unprocessable",
    "UnsupportedMediaType",
    "ValidationFailed",
    "current_request_id",
    "error_response",
    "field_path",
    "field_problems",
    "install_problem_handlers",
    "parse_if_match",
    "problem_response",
    "problem_type",
    "validation_errors",
]
