"""What every CLI refusal must look like: exit code 2 and one `error:` line naming the problem, no traceback.
(Imported as `cli_errors`: tests/ is on sys.path as the root conftest's folder.)"""

from __future__ import annotations

from typing import Any


def one_line_error(result: Any, *fragments: str) -> None:
    """Assert that typer's CliRunner `result` is exit 2 with exactly one `error:` line holding every fragment."""
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], result.output
