"""Errors the backends raise, sorted by what the caller should do about them."""

from __future__ import annotations

from typing import Any

from thinkedit.tools.secrets import mask_secrets


class ThinkeditError(Exception):
    """Base class of every error thinkedit raises on purpose; its message never holds a configured secret.

    Masking here, where provider and database failures become our errors, keeps keys out of every
    place the message goes next: stderr, the run record, checkpoints, the gallery, MCP results.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*(mask_secrets(arg) if isinstance(arg, str) else arg for arg in args))


class BadInputError(ThinkeditError, ValueError):
    """Reject input the user can fix (a missing file, not an image, an unknown setting)."""


class ImageTooLargeError(BadInputError):
    """Reject an image with more pixels than allowed (or one that looks like a decompression bomb)."""


class MissingExtraError(BadInputError):
    """Say which optional extra to install for a backend or command whose packages are missing."""


class BackendError(ThinkeditError, RuntimeError):
    """Report a backend failure that retrying will not fix.

    A ``RuntimeError`` too, so LangGraph Server passes its message on to SDK callers.
    """


class TransientBackendError(BackendError):
    """Report a backend failure worth retrying (connection refused, 5xx, 429, timeouts).

    ``retry_after`` is the wait in seconds the server asked for (its ``Retry-After``), if any.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThinkerOutputError(ThinkeditError, RuntimeError):
    """Report thinker output that could not be parsed into a verdict.

    Carries the raw text so it can be logged and shown; sampling again may well succeed, so
    the critique node retries on it. ``billed`` is the (input, output) tokens the provider charged
    for the unusable answer, when it said, so the run's usage still counts them.
    """

    def __init__(self, message: str, raw: str = "", billed: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.billed = billed


def one_line(exc: BaseException) -> str:
    """Return ``exc`` as one line: a pydantic error by its messages, any other with its lines joined."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors():
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, Exception):  # a validator's own error (unknown profile, ...): its message
                parts.append(str(cause))
                continue
            where = ".".join(str(part) for part in error.get("loc", ()))
            parts.append(f"{where}: {error['msg']}" if where else error["msg"])
        text = "; ".join(parts)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def problems(exc: Any) -> str:
    """Say what a pydantic ``ValidationError`` found, field by field, without the values it was given.

    Pydantic's own message repeats each input, so a profile file that is not one (or holds a secret
    beside its settings) would be echoed back to whoever named it.
    """
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the value'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )
