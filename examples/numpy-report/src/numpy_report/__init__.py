"""pyport's numpy example."""
