"""When a generation of the in-process VLM ends: at the model's end-of-turn tokens, or when its caller cancels it.

A server stops a generation whose client has gone away with ``cancel_criteria``: ``generate`` checks it after
every new token, so the model is free again one token after the cancel event is set.
"""

from __future__ import annotations

import threading
from typing import Any

from thinkedit.tools.errors import BackendError


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Return the ids that end a turn: the generation config's EOS ids, else the tokenizer's."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if not ids:
        raise BackendError("the thinker model defines no end-of-sequence token")
    return ids


def cancel_criteria(cancel: threading.Event) -> Any:
    """Return the ``stopping_criteria`` for ``generate`` that end it at the next token once ``cancel`` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        """Stop every sequence of the batch once the caller has set the event."""

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancelled()])
