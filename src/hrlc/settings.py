"""Configuration of hrlc: one `Settings` object read from `HRLC_*` environment variables.

Defaults give the embedded default (a local folder as Data Lake, a static STAC catalogue inside it),
so a first run needs no server. Servers are switched on by pointing the URLs elsewhere.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All configuration of hrlc (environment variables prefixed `HRLC_`)."""

    model_config = SettingsConfigDict(env_prefix="HRLC_", extra="ignore")

    store: str = Field(
        default="file://./hrlc-lake",
        description="Data Lake root: file:///path or s3://bucket/prefix (the spec's /data/ folder).",
    )
    catalog: str = Field(
        default="static",
        description="STAC catalogue back end: 'static' (JSON under metadata/stac/ in the lake) "
        "or a PostgreSQL DSN of a pgstac database.",
    )
    s3_endpoint: str | None = Field(default=None, description="S3 endpoint URL (MinIO, moto); None = AWS.")
    s3_region: str = Field(default="us-east-1")
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    presign_ttl_s: int = Field(default=900, description="Lifetime of presigned GET URLs, seconds.")
    api_write_token: str | None = Field(
        default=None,
        description="Bearer token that authorises writes (STAC transactions) through the API; "
        "unset = every write is refused.",
    )
    api_root_path: str = Field(
        default="",
        description="Path prefix under which a proxy serves the API (ASGI root_path), e.g. '/hrlc'.",
    )
    users_file: str | None = Field(
        default=None,
        description="openEO API users: a JSON or TOML file {user: password hash} "
        "(hashes from `hrlc.api.openeo.auth.hash_password`); unset = nobody can log in.",
    )
    token_secret: str | None = Field(
        default=None,
        description="Secret that signs the openEO API's access tokens (HS256); unset = a random secret per "
        "process (tokens die with the process; set it when several API processes serve).",
    )
    token_ttl_s: int = Field(default=3600, description="Lifetime of openEO API access tokens, seconds.")
    sync_max_pixels: int = Field(
        default=1_000_000,
        description="Pixel budget of synchronous openEO processing (POST /result); larger requests are "
        "refused and pointed to batch jobs.",
    )
    chunk_px: int = Field(default=1024, description="Spatial chunk size of cubes, pixels.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()


def local_path(url: str) -> Path:
    """The local path of a `file://` URL or a plain path."""
    return Path(url.removeprefix("file://")).expanduser()
