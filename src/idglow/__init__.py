"""IdGlow: dynamic identity modulation for multi-subject generation on flow-matching transformers."""

__version__ = "0.1.0"
