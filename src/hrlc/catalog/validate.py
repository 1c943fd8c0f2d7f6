"""Offline validation of STAC objects against the STAC core and extension JSON Schemas.

Schema URLs (`https://schemas.stacspec.org/...`, `https://stac-extensions.github.io/...`) are resolved to
local copies through a `url-map.json` (URL prefix -> folder, longest prefix wins), so validation never
touches the network. hrlc's tests use the copies in `shared/schemas/`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource


class StacValidationError(ValueError):
    """A STAC object that does not validate; the message lists every schema error found."""


class OfflineSchemas:
    """Resolves schema URLs to files under a directory that holds `url-map.json`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        mapping = json.loads((self.root / "url-map.json").read_text())
        self.prefixes = sorted(mapping.items(), key=lambda kv: len(kv[0]), reverse=True)
        self.registry: Registry[Any] = Registry(retrieve=self._retrieve)  # type: ignore[call-arg]

    def path_of(self, url: str) -> Path:
        url = url.split("#", 1)[0]
        for prefix, folder in self.prefixes:
            if url.startswith(prefix):
                return self.root / folder / url[len(prefix) :]
        raise NoSuchResource(ref=url)  # type: ignore[call-arg]

    def _retrieve(self, uri: str) -> Resource[Any]:
        path = self.path_of(uri)
        if not path.is_file():
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
        return Resource.from_contents(json.loads(path.read_text()))

    @cache  # noqa: B019 - one validator per schema URL for the life of this object
    def validator(self, url: str) -> jsonschema.protocols.Validator:
        schema = self._retrieve(url).contents
        cls = jsonschema.validators.validator_for(schema)
        return cls(schema, registry=self.registry)


def schema_urls(obj: dict[str, Any]) -> list[str]:
    """The core schema URL of a STAC object followed by its extensions' schema URLs."""
    version = obj.get("stac_version", "1.0.0")
    kind = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}[obj["type"]]
    core = f"https://schemas.stacspec.org/v{version}/{kind}-spec/json-schema/{kind}.json"
    return [core, *obj.get("stac_extensions", [])]


def validate(obj: dict[str, Any], schemas: OfflineSchemas) -> list[str]:
    """Validate a STAC Item/Collection/Catalog dict; returns the schema URLs checked. Raises
    StacValidationError listing every error."""
    errors: list[str] = []
    urls = schema_urls(obj)
    for url in urls:
        try:
            validator = schemas.validator(url)
        except NoSuchResource:
            errors.append(f"{url}: schema not available offline")
            continue
        for err in validator.iter_errors(obj):
            where = "/".join(str(p) for p in err.absolute_path) or "<root>"
            errors.append(f"{url}: {where}: {err.message[:300]}")
    if errors:
        raise StacValidationError(f"{obj.get('id')}: " + "; ".join(errors))
    return urls
