"""The thinker server: ``vllm serve`` with the right flags on GPUs, or a small local chat server on CPUs."""
