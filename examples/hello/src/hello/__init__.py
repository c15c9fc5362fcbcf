"""pyport's example CLI."""

__version__ = "1.0.0"
