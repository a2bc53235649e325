"""The editor server: any editor backend behind the OpenAI Images edits API, with a queue and micro-batching."""
