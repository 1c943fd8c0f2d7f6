"""Batch jobs: `/jobs` CRUD, start and cancel (`POST/DELETE /jobs/{id}/results`), results, logs and the
(cost-free) estimate.

Thin over `hrlc.jobs.service.JobService` (the job store, planner and broker live there); this module turns
its objects into openEO JSON and its exceptions into openEO errors. A graph is validated here first (unknown
processes, missing arguments, unknown collections), so a bad one never reaches the job store. Another user's
job is `JobNotFound`, exactly like a job that does not exist.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from hrlc.api.openeo.auth import current_user
from hrlc.api.openeo.context import OpenEOContext, base_url, context
from hrlc.api.openeo.errors import OpenEOError
from hrlc.api.openeo.process_graphs import raise_first
from hrlc.api.openeo.processes import validate_process
from hrlc.catalog.static import STAC_VERSION

router = APIRouter()

_STATUSES = {"created", "queued", "running", "canceled", "finished", "error"}


def _ts(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def job_json(job: Any, base: str, *, full: bool) -> dict[str, Any]:
    """The openEO batch job of a `Job` (`full`: with its process, for `GET /jobs/{id}`)."""
    status = str(job.status)
    out: dict[str, Any] = {
        "id": str(job.id),
        "title": job.title,
        "description": job.description,
        "status": status if status in _STATUSES else "queued",
        # the job store keeps a fraction (0..1); openEO shows percent
        "progress": round(min(max(float(job.progress), 0.0), 1.0) * 100, 1)
        if job.progress is not None
        else None,
        "created": _ts(job.created),
        "updated": _ts(job.updated),
        "queued": _ts(job.queued),
        "started": _ts(job.started),
        "finished": _ts(job.finished),
    }
    out = {k: v for k, v in out.items() if v is not None or k in {"title", "description"}}
    if full:
        out["process"] = job.process
        if job.error:
            out["error"] = str(job.error)
        out["links"] = [
            {"rel": "self", "href": f"{base}/jobs/{job.id}", "type": "application/json"},
            {"rel": "monitor", "href": f"{base}/jobs/{job.id}/logs", "type": "application/json"},
        ]
    return out


def _admission(user: str, ctx: OpenEOContext) -> Any:
    """What a job of `user` may ask for (`hrlc.jobs.planner.Admission`): budget and allowed inputs."""
    from hrlc.jobs.allowlist import InputAllowlist
    from hrlc.jobs.planner import Admission

    return Admission(user, ctx.settings.pixel_budget(user), InputAllowlist.from_settings(ctx.settings))


# Longest title and description of a job, characters (the openEO API sets none; a database row should).
TEXT_LIMITS = {"title": 1_000, "description": 100_000}


def _text(body: dict[str, Any], name: str) -> str | None:
    """The job's `name` field: null or a string within `TEXT_LIMITS` (400 otherwise)."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise OpenEOError("BadRequest", f"The job's {name} must be a string.")
    if value is not None and len(value) > TEXT_LIMITS[name]:
        raise OpenEOError(
            "BadRequest",
            f"The job's {name} has {len(value)} characters; at most {TEXT_LIMITS[name]} are accepted.",
        )
    return value


@contextmanager
def _job_errors(job_id: str) -> Iterator[None]:
    from hrlc.jobs.planner import InputNotAllowed, PlanError, TooLarge
    from hrlc.jobs.service import JobNotFound, JobStateError

    try:
        yield
    except JobNotFound:
        raise OpenEOError("JobNotFound", f"The batch job '{job_id}' does not exist.") from None
    except JobStateError as e:
        raise OpenEOError("JobLocked", f"Batch job '{job_id}': {e}") from None
    except TooLarge as e:
        raise OpenEOError("ProcessGraphComplexity", f"The job is too large: {e}") from None
    except InputNotAllowed as e:
        raise OpenEOError("ProcessParameterInvalid", f"The job names an input it may not use: {e}") from None
    except PlanError as e:
        raise OpenEOError("ProcessGraphInvalid", f"Invalid process graph specified: {e}") from None


def _check_process(process: Any, user: str, ctx: OpenEOContext) -> dict[str, Any]:
    raise_first(
        validate_process(
            process, user_processes=ctx.user_process(user), collection_exists=ctx.collection_exists
        )
    )
    assert isinstance(process, dict)
    from hrlc.api.openeo.execute import check_data_available

    check_data_available(process["process_graph"], ctx, user)  # no data the user may see: nothing stored
    return process


@router.post("/jobs", status_code=201)
def create_job(
    request: Request,
    body: dict[str, Any] = Body(...),
    user: str = Depends(current_user),
    ctx: OpenEOContext = Depends(context),
) -> Response:
    process = _check_process(body.get("process"), user, ctx)
    with _job_errors("new"):
        job = ctx.jobs.create_job(
            user,
            process,
            title=_text(body, "title"),
            description=_text(body, "description"),
            resolve=ctx.user_process(user),
            admit=_admission(user, ctx),
        )
    location = f"{base_url(request)}/jobs/{job.id}"
    return Response(status_code=201, headers={"Location": location, "OpenEO-Identifier": str(job.id)})


@router.get("/jobs")
def list_jobs(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**62),  # a PostgreSQL bigint, with room for offset + limit
    user: str = Depends(current_user),
    ctx: OpenEOContext = Depends(context),
) -> dict[str, Any]:
    base = base_url(request)
    jobs, total = ctx.jobs.list_jobs(user, limit, offset)
    links: list[dict[str, Any]] = [
        {"rel": "self", "href": f"{base}/jobs?{urlencode({'limit': limit, 'offset': offset})}"}
    ]
    if offset + len(jobs) < total:
        links.append(
            {"rel": "next", "href": f"{base}/jobs?{urlencode({'limit': limit, 'offset': offset + limit})}"}
        )
    if offset > 0:
        prev = max(offset - limit, 0)
        links.append({"rel": "prev", "href": f"{base}/jobs?{urlencode({'limit': limit, 'offset': prev})}"})
    return {"jobs": [job_json(j, base, full=False) for j in jobs], "links": links}


@router.get("/jobs/{job_id}")
def get_job(
    job_id: str, request: Request, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> dict[str, Any]:
    with _job_errors(job_id):
        job = ctx.jobs.get_job(user, job_id)
    return job_json(job, base_url(request), full=True)


@router.patch("/jobs/{job_id}", status_code=204)
def update_job(
    job_id: str,
    body: dict[str, Any] = Body(...),
    user: str = Depends(current_user),
    ctx: OpenEOContext = Depends(context),
) -> Response:
    editable = {"title", "description", "process"}
    if not set(body) & editable:
        raise OpenEOError("NoDataForUpdate", "No valid data specified: give title, description or process.")
    fixed = sorted(set(body) - editable - {"plan", "budget", "log_level"})
    if fixed:
        raise OpenEOError("PropertyNotEditable", f"Property '{fixed[0]}' can't be updated.")
    changes: dict[str, Any] = {k: _text(body, k) for k in ("title", "description") if k in body}
    if "process" in body:
        changes["process"] = _check_process(body["process"], user, ctx)
    with _job_errors(job_id):
        ctx.jobs.update_job(
            user, job_id, **changes, resolve=ctx.user_process(user), admit=_admission(user, ctx)
        )
    return Response(status_code=204)


@router.delete("/jobs/{job_id}", status_code=204)
def delete_job(
    job_id: str, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> Response:
    with _job_errors(job_id):
        ctx.jobs.delete_job(user, job_id)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/results", status_code=202)
def start_job(
    job_id: str, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> Response:
    with _job_errors(job_id):
        ctx.jobs.start_job(user, job_id, resolve=ctx.user_process(user), admit=_admission(user, ctx))
    return Response(status_code=202)


@router.delete("/jobs/{job_id}/results", status_code=204)
def cancel_job(
    job_id: str, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> Response:
    with _job_errors(job_id):
        ctx.jobs.cancel_job(user, job_id)
    return Response(status_code=204)


@router.get("/jobs/{job_id}/estimate")
def estimate_job(
    job_id: str, user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)
) -> dict[str, Any]:
    """This back end charges nothing: the estimate is costs 0 (duration and size are not estimated)."""
    with _job_errors(job_id):
        ctx.jobs.get_job(user, job_id)
    return {"costs": 0}


def _log_json(entry: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(entry.id),
        "level": str(getattr(entry, "level", "info") or "info"),
        "message": str(entry.message),
    }
    for name in ("code", "time"):
        value = getattr(entry, name, None)
        if value is not None:
            out[name] = _ts(value) if name == "time" else str(value)
    return out


@router.get("/jobs/{job_id}/logs")
def job_logs(
    job_id: str,
    request: Request,
    offset: str | None = Query(None, pattern="^[0-9]{1,18}$"),  # the id of a log entry returned before
    limit: int = Query(100, ge=1, le=10000),
    level: str = Query("debug", pattern="^(debug|info|warning|error)$"),
    user: str = Depends(current_user),
    ctx: OpenEOContext = Depends(context),
) -> dict[str, Any]:
    with _job_errors(job_id):
        entries = ctx.jobs.logs(user, job_id, offset, limit, level)
    logs = [_log_json(e) for e in entries]
    links: list[dict[str, Any]] = []
    if len(logs) == limit:
        query = urlencode({"offset": logs[-1]["id"], "limit": limit, "level": level})
        links.append({"rel": "next", "href": f"{base_url(request)}/jobs/{job_id}/logs?{query}"})
    return {"level": level, "logs": logs, "links": links}


def _read_item(href: str, ctx: OpenEOContext) -> dict[str, Any] | None:
    """A STAC item of the lake by its href (None when it cannot be read)."""
    try:
        return dict(json.loads(ctx.lake.read_bytes(ctx.lake.key_of(href))))
    except Exception:  # an item that vanished or lies outside the lake: listed as a link only
        return None


@router.get("/jobs/{job_id}/results")
def job_results(
    job_id: str,
    request: Request,
    partial: bool = Query(False),
    user: str = Depends(current_user),
    ctx: OpenEOContext = Depends(context),
) -> Response:
    from hrlc.api.presign import Presigner

    base = base_url(request)
    with _job_errors(job_id):
        job = ctx.jobs.get_job(user, job_id)
        status = str(job.status)
        if status == "error":
            entry = {
                "id": "error",
                "code": "JobFailed",
                "level": "error",
                "message": str(job.error or "failed"),
            }
            return JSONResponse(entry, status_code=424)
        if status != "finished" and not partial:
            raise OpenEOError(
                "JobNotFinished",
                f"Batch job '{job_id}' is {status}: results are available once it is finished "
                "(or ask with partial=true).",
            )
        hrefs = ctx.jobs.results(user, job_id, partial=partial)
    presign = Presigner(ctx.lake, ctx.settings.presign_ttl_s)
    assets: dict[str, Any] = {}
    links: list[dict[str, Any]] = [
        {"rel": "self", "href": f"{base}/jobs/{job_id}/results", "type": "application/json"},
        {"rel": "root", "href": f"{base}/", "type": "application/json"},
    ]
    bboxes: list[list[float]] = []
    times: list[str] = []
    for href in hrefs:
        item = _read_item(href, ctx)
        links.append({"rel": "item", "href": presign(href), "type": "application/geo+json"})
        if item is None:
            continue
        presign.item(item)
        if item.get("bbox"):
            bboxes.append(list(item["bbox"])[:4])
        props = item.get("properties") or {}
        times += [
            t for t in (props.get("start_datetime"), props.get("end_datetime"), props.get("datetime")) if t
        ]
        for name, asset in (item.get("assets") or {}).items():
            assets[f"{item['id']}/{name}"] = {**asset, "title": asset.get("title") or f"{item['id']} {name}"}
    bbox = (
        [
            min(b[0] for b in bboxes),
            min(b[1] for b in bboxes),
            max(b[2] for b in bboxes),
            max(b[3] for b in bboxes),
        ]
        if bboxes
        else [-180.0, -90.0, 180.0, 90.0]
    )
    interval = [min(times), max(times)] if times else [_ts(job.created), None]
    doc: dict[str, Any] = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": str(job.id),
        "title": job.title or f"Results of batch job {job.id}",
        "description": job.description or "Products of an hrlc batch job.",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
        "assets": assets,
        "links": links,
        "openeo:status": status if status in {"running", "canceled", "finished", "error"} else "running",
    }
    return JSONResponse(doc, headers={"OpenEO-Costs": "0"})


@router.get("/processors")
def processors(user: str = Depends(current_user), ctx: OpenEOContext = Depends(context)) -> dict[str, Any]:
    """hrlc extension (not openEO): the processor registry with each version's live workers; their hosts,
    process ids and entry points only for operators (and admins)."""
    operator = bool(ctx.authenticator.roles(user) & {"operator", "admin"})
    registry = ctx.jobs.registry()
    out = []
    for p in registry["processors"]:
        workers = [
            {
                "id": w["id"],
                "host": w["host"],
                "pid": w["pid"],
                "capacity": int(w["capacity"]),
                "started": _ts(w["started"]),
                "heartbeat": _ts(w["heartbeat"]),
            }
            for w in registry["workers"]
            if w["processor"] == p["name"] and w["processor_version"] == p["version"]
        ]
        entry = {
            "name": p["name"],
            "version": p["version"],
            "updated": _ts(p["updated"]),
            "live_workers": len(workers),
            "capacity": sum(w["capacity"] for w in workers),
        }
        if operator:
            entry |= {"entry_point": p["entry_point"], "image": p["image"], "workers": workers}
        out.append(entry)
    return {"processors": out, "links": []}
