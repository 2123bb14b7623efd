"""One module per CLI command: the async body behind the click definition in ``cli.py``."""
