"""Shared utilities: the typed config loader, atomic file I/O of weights and logs, shared names and default paths."""
