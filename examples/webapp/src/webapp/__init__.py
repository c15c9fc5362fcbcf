"""pyport's example HTTP service."""
