"""Presigned links to the Data Lake's objects: what the STAC API's items and the openEO API's job results hand
out instead of `s3://` hrefs, so that a client downloads straight from the lake without credentials."""

from __future__ import annotations

from typing import Any

from hrlc.settings import Settings


class Presigner:
    """Turns `s3://` hrefs of the Data Lake into presigned, read-only HTTPS GET URLs valid `ttl_s` seconds.

    Only objects inside the lake's bucket and prefix (`HRLC_STORE` on S3) are signed, by the lake's store
    (`S3Store.presign`); any other href, another bucket's included, is left as it is: the lake's credentials
    never sign what a catalogue item merely names. Signing is local."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.ttl_s = settings.presign_ttl_s
        self._lake: Any = None
        if settings.store.startswith("s3://"):
            from hrlc.lake.store import open_store

            self._lake = open_store(settings.store, settings)

    def __call__(self, href: str) -> str:
        if self._lake is None or not href.startswith("s3://"):
            return href
        try:
            key = self._lake.key_of(href)
        except ValueError:  # outside the lake (or a key with '..'): not ours to sign
            return href
        return str(self._lake.presign(key, self.ttl_s))

    def item(self, item: dict[str, Any]) -> None:
        """Presign the lake's `s3://` hrefs of an item's assets, in place."""
        for asset in (item.get("assets") or {}).values():
            if isinstance(asset, dict) and isinstance(asset.get("href"), str):
                href = asset["href"]
                signed = self(href)
                if signed != href:
                    asset["href"] = signed
                    asset.setdefault("alternate", {})["s3"] = {"href": href}
