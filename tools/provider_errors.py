"""Sort any provider SDK's failure into our errors, naming the provider and model it came from.

Works by the shape the SDKs share (a status code, a response with headers, a connection or
timeout error class) rather than importing each SDK, so one function serves openai, anthropic,
google-genai and replicate alike.
"""

from __future__ import annotations

from typing import Any

from thinkedit.tools.errors import BackendError, BadInputError, ThinkeditError, TransientBackendError
from thinkedit.tools.retry import is_retryable_status, retry_after_seconds

#: Exception class names (anywhere in the MRO) that mean the request never got an answer.
_CONNECTION_ERRORS = frozenset({"APIConnectionError", "APITimeoutError", "TransportError", "TimeoutException"})


def status_of(exc: BaseException) -> int | None:
    """Return the HTTP status a provider error carries (``status_code``, ``code`` or ``status``)."""
    for attr in ("status_code", "code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _message(exc: BaseException) -> str:
    """Return the provider's own message when the SDK parsed one, else the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    for attr in ("message", "detail"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    return str(exc) or type(exc).__name__


def _sdk_error(exc: BaseException) -> BaseException:
    """Return the SDK's own error behind a wrapper (LangChain packages re-raise with the cause attached)."""
    seen = exc
    for _ in range(4):
        if status_of(seen) is not None:
            return seen
        cause = seen.__cause__ or seen.__context__
        if cause is None:
            break
        seen = cause
    return exc


def answer_timed_out(exc: BaseException) -> bool:
    """Say whether ``exc`` is a request that went out and whose answer did not come in time (httpx's ReadTimeout).

    The provider may have done that work, and billed it, all the same: unlike a connection that
    never opened, such a request is not safe to send again.
    """
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if any(cls.__name__ == "ReadTimeout" for cls in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def edit_timed_out(label: str, exc: BaseException) -> BackendError:
    """Return the error of an edit whose answer timed out: final, since a retry could pay for the edit twice."""
    return BackendError(f"{label} did not answer in time ({type(exc).__name__}); not sent again, since the edit "
                        "may have been made, and billed, all the same: raise the editor's timeout_s")


def provider_error(exc: BaseException, *, role: str, provider: str, model: str, where: str | None = None,
                   idempotent: bool = False) -> Exception:
    """Map ``exc``: connection trouble, 408/409/429/5xx are transient (with Retry-After); 4xx are not.

    An editor's request whose answer timed out is final (``answer_timed_out``), each edit being paid
    for, unless the request is ``idempotent`` (a status check, a download).
    """
    if isinstance(exc, ThinkeditError):
        return exc  # already ours
    label = f"{role} {provider}:{model}" + (f" at {where}" if where else "")
    if role == "editor" and not idempotent and answer_timed_out(exc):
        return edit_timed_out(label, exc)
    inner = _sdk_error(exc)
    status = status_of(inner)
    if status is not None:
        exc = inner
        headers: Any = getattr(getattr(exc, "response", None), "headers", None)
        message = f"{label} answered {status}: {_message(exc)}"
        if is_retryable_status(status):
            return TransientBackendError(message, retry_after=retry_after_seconds(headers))
        if role == "editor" and status in (400, 413, 422):
            return BadInputError(message)  # the image or settings sent
        return BackendError(message)  # 401/403 (the key), 404 (model or URL): retrying will not help
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _CONNECTION_ERRORS or isinstance(exc, ConnectionError | TimeoutError):
        return TransientBackendError(f"cannot reach {label}: {_message(exc)}")
    return BackendError(f"{label} failed: {type(exc).__name__}: {_message(exc)}")
