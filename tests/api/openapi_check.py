"""Validates responses of the openEO API against the openEO API 1.2.0 `openapi.yaml` (offline copy).

`OpenAPIResponses.check(method, path, status, content_type, body)` finds the operation of a concrete path,
the response of the status (exact, else `4XX`/`5XX`), and validates a JSON body against its schema with
openapi-schema-validator's OAS 3.0 validator (`$ref`s resolved inside the document)."""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class OpenAPIResponses:
    def __init__(self, spec_path: Path):
        self.doc: dict[str, Any] = yaml.safe_load(spec_path.read_text())
        # A flaw of the 1.2.0 document: `process_json_schema` is `oneOf` [Generic (matches anything), Process
        # Graph, Data Cube], and the latter two have no required `subtype`, so *every* data type of every
        # process matches more than one branch and fails `oneOf`. Validated as `anyOf`, as clients read it.
        pjs = self.doc["components"]["schemas"]["process_json_schema"]
        pjs["anyOf"] = pjs.pop("oneOf")
        self.uri = "urn:openeo-api-1.2.0"

    @cached_property
    def registry(self) -> Registry:
        resource = Resource.from_contents(self.doc, default_specification=DRAFT4)
        return Registry().with_resource(self.uri, resource)

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str]]:
        out = []
        for template in self.doc["paths"]:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            out.append((re.compile(rx), template))
        # literal paths win over templated ones (`/jobs/x` vs `/jobs/{job_id}`)
        return sorted(out, key=lambda t: t[1].count("{"))

    def template(self, path: str) -> str | None:
        for rx, template in self._templates:
            if rx.match(path):
                return template
        return None

    def _resolve(self, obj: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in obj:
            node: Any = self.doc
            for part in obj["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
        return obj

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        """AssertionError when the response does not match the spec."""
        template = self.template(path)
        assert template is not None, f"{method} {path}: not a path of the openEO API"
        op = self.doc["paths"][template].get(method.lower())
        assert op is not None, f"{method} {template}: not an operation of the openEO API"
        responses = op["responses"]
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        assert key in responses, f"{method} {template} -> {status}: status not allowed ({sorted(responses)})"
        response = self._resolve(responses[key])
        content = response.get("content")
        if template == "/result" and status == 200:
            assert body, "POST /result -> 200 without a file"
            return  # the file of the requested format (the spec gives no content schema)
        if not content:
            assert not body, f"{method} {template} -> {status}: the spec has no body, got {body[:200]!r}"
            return
        mime = content_type.split(";")[0].strip()
        assert mime in content, (
            f"{method} {template} -> {status}: content type {mime} not in {sorted(content)}"
        )
        ptr = "/".join(
            _escape(p)
            for p in ["paths", template, method.lower(), "responses", key, "content", mime, "schema"]
        )
        if "$ref" in responses[key]:  # a shared response of components
            ptr = (
                responses[key]["$ref"].removeprefix("#/")
                + "/"
                + "/".join(_escape(p) for p in ["content", mime, "schema"])
            )
        schema = {"$ref": f"{self.uri}#/{ptr}"}
        validator = OAS30Validator(schema, registry=self.registry)
        instance = json.loads(body)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {path} -> {status}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5]
        )
