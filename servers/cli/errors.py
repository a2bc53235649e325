"""Say a user's error in one line on stderr: what went wrong and, where it helps, what to do."""

from __future__ import annotations

import sys


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


def fail(message: str, code: int) -> int:
    """Print ``thinkedit: error: MESSAGE`` (one line, configured secrets masked) and return the exit code."""
    from thinkedit.tools.secrets import mask_secrets

    print(f"thinkedit: error: {' '.join(mask_secrets(message).split())}", file=sys.stderr, flush=True)
    return code
