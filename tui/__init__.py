"""tokendial: a terminal chat app that shows and steers how a local model picks its next token."""

__version__ = "0.1.0"
