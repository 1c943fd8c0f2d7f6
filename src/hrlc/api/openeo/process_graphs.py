"""User-defined processes: `GET /process_graphs`, `GET/PUT/DELETE /process_graphs/{id}` (per user)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from hrlc.api.openeo.auth import current_user
from hrlc.api.openeo.context import OpenEOContext, base_url, context
from hrlc.api.openeo.errors import OpenEOError
from hrlc.api.openeo.processes import predefined, validate_process

router = APIRouter()
_ID = re.compile(r"^\w+$")


def raise_first(errors: list[dict[str, Any]]) -> None:
    """Raise the first of a list of openEO validation errors (nothing when empty)."""
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        raise OpenEOError(first["code"], first["message"] + more)


def _summary(process: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in process.items() if k != "process_graph"}


@router.get("/process_graphs")
def list_process_graphs(
    request: Request, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> dict[str, Any]:
    base = base_url(request)
    return {
        "processes": [_summary(p) for p in ctx.udps.list(user)],
        "links": [{"rel": "self", "href": f"{base}/process_graphs", "type": "application/json"}],
    }


@router.get("/process_graphs/{process_graph_id}")
def get_process_graph(
    process_graph_id: str, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> dict[str, Any]:
    process = ctx.udps.get(user, process_graph_id)
    if process is None:
        raise OpenEOError(
            "ProcessGraphNotFound", f"User-defined process '{process_graph_id}' does not exist."
        )
    return process


@router.put("/process_graphs/{process_graph_id}")
def put_process_graph(
    process_graph_id: str,
    body: dict[str, Any] = Body(...),
    user: str = Depends(current_user),
    ctx: OpenEOContext = Depends(context),
) -> Response:
    if not _ID.match(process_graph_id):
        raise OpenEOError(
            "ProcessGraphInvalid", f"Invalid process id '{process_graph_id}': use letters, digits, _."
        )
    if process_graph_id in predefined():
        raise OpenEOError(
            "PredefinedProcessExists",
            f"A predefined process with the identifier '{process_graph_id}' exists.",
        )
    # an `id` in the body that differs from the path's is replaced by it (openEO API, store-custom-process)
    stored = ctx.user_process(user)

    def as_it_will_be(
        pid: str,
    ) -> dict[str, Any] | None:  # this process with its new graph: cycles through it
        return body if pid == process_graph_id else stored(pid) if stored else None

    raise_first(validate_process(body, user_processes=as_it_will_be, collection_exists=ctx.collection_exists))
    ctx.udps.put(user, process_graph_id, {**body, "id": process_graph_id})
    return Response(status_code=200)


@router.delete("/process_graphs/{process_graph_id}", status_code=204)
def delete_process_graph(
    process_graph_id: str, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> Response:
    if not ctx.udps.delete(user, process_graph_id):
        raise OpenEOError(
            "ProcessGraphNotFound", f"User-defined process '{process_graph_id}' does not exist."
        )
    return Response(status_code=204)
