"""Which optional extra brings which package, so a missing one is named, not a traceback."""

from __future__ import annotations

from thinkedit.tools.errors import MissingExtraError

#: Top-level module → the extra of ours that installs it.
MODULE_EXTRAS: dict[str, str] = {
    **dict.fromkeys(
        ["torch", "diffusers", "transformers", "tokenizers", "safetensors", "accelerate", "xgrammar", "numpy"], "local"
    ),
    **dict.fromkeys(
        ["fastapi", "uvicorn", "multipart", "python_multipart", "prometheus_client", "openai", "langchain_openai",
         "httpx", "starlette", "langchain", "swagger_ui_bundle"],
        "server",
    ),
    **dict.fromkeys(["langchain_anthropic", "anthropic"], "anthropic"),
    **dict.fromkeys(["langchain_google_genai", "google"], "google"),
    "replicate": "replicate",
    "ray": "ray",
    "mcp": "mcp",
    **dict.fromkeys(["tqdm", "matplotlib", "pyarrow"], "eval"),
    **dict.fromkeys(["psycopg", "psycopg_pool"], "postgres"),
}


def extra_for(module: str | None) -> str | None:
    """Return the extra that installs ``module`` (a dotted name is looked up by its top level)."""
    if not module:
        return None
    if module.startswith("langgraph.checkpoint.postgres"):
        return "postgres"
    return MODULE_EXTRAS.get(module.split(".")[0])


def missing_extra(exc: ModuleNotFoundError, needed_by: str) -> MissingExtraError | None:
    """Turn an import failure into an error naming the extra to install (None: not one of ours)."""
    extra = extra_for(exc.name)
    if extra is None:
        return None
    return MissingExtraError(
        f"{needed_by} needs the {extra} extra (missing module {exc.name!r}): pip install 'thinkedit[{extra}]'"
    )
