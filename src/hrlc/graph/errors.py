"""`GraphError`: a failure of a process graph as an openEO error (code, message, HTTP status)."""

from __future__ import annotations


class GraphError(Exception):
    """An openEO error of graph evaluation: `code` from the openEO error list, a message a user can act on."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
