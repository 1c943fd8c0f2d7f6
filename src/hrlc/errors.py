"""Errors that cross layers: raised low (AOI parsing, a processor refusing its input, a cancel check in a
processor or a graph evaluation) and caught high (the CLI, the worker, the API). They live here, below
everything, so that no layer imports upward to name them."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a user (a command-line option, a request field, a file): one line they can act on."""


class Cancelled(Exception):
    """The task was cancelled while running."""


class ProcessorError(Exception):
    """Bad input or an impossible request to a processor: the message is one line a user can act on."""
