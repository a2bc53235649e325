"""Editor backends: in-process diffusers pipelines and OpenAI-Images-compatible servers."""
