"""Presigned links to the Data Lake's objects: what the STAC API's items and the openEO API's job results hand
out instead of `s3://` hrefs, so that a client downloads straight from the lake without credentials."""

from __future__ import annotations

from typing import Any

from hrlc.lake.store import Store


class Presigner:
    """Turns `s3://` hrefs of the Data Lake into presigned, read-only HTTPS GET URLs valid `ttl_s` seconds.

    Only objects inside the lake's bucket and prefix (`HRLC_STORE` on S3) are signed, by the lake's store
    (`S3Store.presign`); any other href, another bucket's included, is left as it is: the lake's credentials
    never sign what a catalogue item merely names (a lake in a folder signs nothing). Signing is local."""

    def __init__(self, lake: Store, ttl_s: int):
        self.lake = lake
        self.ttl_s = ttl_s
        self.signs = lake.url.startswith("s3://")

    def __call__(self, href: str) -> str:
        if not self.signs or not href.startswith("s3://"):
            return href
        try:
            key = self.lake.key_of(href)
        except ValueError:  # outside the lake (or a key with '..'): not ours to sign
            return href
        return str(self.lake.presign(key, self.ttl_s))

    def item(self, item: dict[str, Any]) -> None:
        """Presign the lake's `s3://` hrefs of an item's assets, in place."""
        for asset in (item.get("assets") or {}).values():
            if isinstance(asset, dict) and isinstance(asset.get("href"), str):
                href = asset["href"]
                signed = self(href)
                if signed != href:
                    asset["href"] = signed
                    asset.setdefault("alternate", {})["s3"] = {"href": href}
