"""Assemble the Think-while-Edit state machine.

START → prepare → edit → critique → (refine → edit | stop) → END. ``prepare`` fixes the run's
settings and stores the source image once; the loop itself is edit, critique, refine, stop.
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy
from pydantic import BaseModel

from thinkedit.agent.checkpoint import ArtifactsFirst
from thinkedit.agent.nodes import BackendProvider, LoopNodes
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.state import PreparedInput, RunState
from thinkedit.tools.errors import ThinkerOutputError, TransientBackendError
from thinkedit.tools.registry import BackendCache


def is_transient(exc: BaseException) -> bool:
    """Say whether a failed node is worth retrying: connection trouble, 5xx, 429, timeouts."""
    return isinstance(exc, TransientBackendError | ConnectionError | TimeoutError)


def is_retryable_critique(exc: BaseException) -> bool:
    """Retry a critique on transient faults and on unparseable output (sampling may do better)."""
    return is_transient(exc) or isinstance(exc, ThinkerOutputError)


def default_retry(max_attempts: int = 3, initial_interval: float = 1.0) -> tuple[RetryPolicy, RetryPolicy]:
    """Return the (edit, critique) retry policies."""
    return (
        RetryPolicy(max_attempts=max_attempts, initial_interval=initial_interval, retry_on=is_transient),
        RetryPolicy(max_attempts=max_attempts, initial_interval=initial_interval, retry_on=is_retryable_critique),
    )


def build_graph(
    backends: BackendProvider | None = None,
    *,
    checkpointer: BaseCheckpointSaver | bool | None = None,
    retry: tuple[RetryPolicy, RetryPolicy] | None = None,
    name: str = "think_while_edit",
    input_schema: type[BaseModel] = PreparedInput,
    output_schema: type[BaseModel] = RunState,
    context_schema: type[BaseModel] = LoopSettings,
    confine: bool = False,
) -> CompiledStateGraph:
    """Compile the loop; pass ``backends`` to inject editors/thinkers, ``checkpointer`` to persist runs.

    ``input_schema`` and ``output_schema`` say what a caller gives and gets back (a server shows them
    as the graph's schemas); the state the nodes share is ``RunState`` either way. ``context_schema``
    is what a run's context is read as: resolved ``LoopSettings``, or (for a graph server, whose
    runs bring a partial context or none) a model of optional fields that ``prepare`` resolves. ``confine``
    (a graph server's): the files a run's input names must lie under ``agent.settings.input_roots``.
    """
    settle = checkpointer.settle if isinstance(checkpointer, ArtifactsFirst) else None
    nodes = LoopNodes(backends or BackendCache(), settle=settle, confine=confine)
    edit_retry, critique_retry = retry or default_retry()
    builder = StateGraph(RunState, context_schema=context_schema, input_schema=input_schema,
                         output_schema=output_schema)
    builder.add_node("prepare", nodes.prepare)
    builder.add_node("edit", nodes.edit, retry_policy=edit_retry, destinations=("critique", "stop"))
    builder.add_node("critique", nodes.critique, retry_policy=critique_retry, destinations=("refine", "stop"))
    builder.add_node("refine", nodes.refine, destinations=("edit", "stop"))
    builder.add_node("stop", nodes.stop)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "edit")
    builder.add_edge("stop", END)
    return builder.compile(checkpointer=checkpointer, name=name)
