"""Say a user's error in one line on stderr: what went wrong and, where it helps, what to do."""

from __future__ import annotations

import sys


def fail(message: str, code: int) -> int:
    """Print ``thinkedit: error: MESSAGE`` (one line, configured secrets masked) and return the exit code."""
    from thinkedit.tools.secrets import mask_secrets

    print(f"thinkedit: error: {' '.join(mask_secrets(message).split())}", file=sys.stderr, flush=True)
    return code
