"""Thinker backends, their prompts and the parsers for what they answer."""
