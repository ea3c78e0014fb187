"""Argosy: artifact storage and data streaming for workflow pods."""

__version__ = "0.1.0"
