"""Terminal output: logging setup, error lines, progress and tables."""
