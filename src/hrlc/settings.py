"""Configuration of hrlc: one `Settings` object read from `HRLC_*` environment variables.

Defaults give the embedded default (a local folder as Data Lake, a static STAC catalogue inside it),
so a first run needs no server. Servers are switched on by pointing the URLs elsewhere.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_JOBS_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_TRAINING_DSN = (
    "postgresql://postgres@127.0.0.1:5432/hrlc"  # the PostGIS database of scripts/services.sh
)


def pg_dsn(catalog: str) -> str | None:
    """The PostgreSQL DSN a catalogue setting names (`HRLC_CATALOG`), or None for the static catalogue."""
    dsn = catalog.strip()
    return dsn if dsn.startswith(("postgresql://", "postgres://")) else None


class OidcProvider(BaseModel):
    """An OpenID Connect provider whose access tokens the APIs accept (`Bearer oidc/<id>/<token>`)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The provider's id in /credentials/oidc.")
    issuer: str = Field(
        description="Issuer URL: tokens must carry it as `iss`; discovery and JWKS come from it."
    )
    title: str = Field(default="", description="Name shown to users.")
    audience: str = Field(default="hrlc", description="The `aud` access tokens must hold (this API).")
    scopes: list[str] = Field(default_factory=lambda: ["openid"])
    roles_claim: str = Field(default="roles", description="Claim with the user's roles (operator, admin).")
    default_clients: list[dict[str, Any]] = Field(
        default_factory=list,
        description="openEO default clients (id, grant_types, redirect_urls) for notebooks.",
    )


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
    oidc_providers: list[OidcProvider] = Field(
        default_factory=list,
        description='OpenID Connect providers, as JSON: [{"id": "egi", "issuer": "https://...", "audience": "hrlc"}].',
    )
    oidc_jwks_cooldown_s: float = Field(
        default=30.0,
        ge=0,
        description="Least time between two JWKS fetches forced by an unknown key id, seconds.",
    )
    api_login_max_failures: int = Field(
        default=5, ge=1, description="Wrong passwords of one user within the login window before 429."
    )
    api_login_max_attempts: int = Field(
        default=30,
        ge=1,
        description="Login attempts from one client address within the login window before 429.",
    )
    api_login_window_s: float = Field(default=60.0, gt=0, description="The login window, seconds.")
    sync_max_pixels: int = Field(
        default=1_000_000,
        description="Pixel budget of synchronous openEO processing (POST /result); larger requests are "
        "refused and pointed to batch jobs.",
    )
    # -- limits of every API request, checked before any parser sees it (hrlc.api.limits)
    api_max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest request body the APIs read, bytes (413 above).",
    )
    api_max_json_depth: int = Field(
        default=100, ge=8, description="Deepest nesting of arrays and objects in a JSON request body."
    )
    api_max_filter_chars: int = Field(
        default=20_000, ge=100, description="Longest STAC filter (CQL2 text or JSON) or free-text query `q`."
    )
    api_max_filter_depth: int = Field(
        default=50, ge=4, description="Deepest nesting of parentheses in a CQL2 text filter or `q`."
    )
    api_workers: int = Field(
        default=2,
        ge=1,
        description="API worker processes of `hrlc serve`; with 2 or more, uvicorn's supervisor restarts a "
        "worker that dies, so a crash costs one request, not the service.",
    )
    job_sources: list[str] = Field(
        default_factory=lambda: [
            "https://earth-search.aws.element84.com/v1",
            "https://planetarycomputer.microsoft.com/api/stac/v1",
        ],
        description="STAC APIs and catalogues (URL or path prefixes, JSON list) that jobs submitted through the "
        "API may name as `source`; nothing else is opened for them.",
    )
    stac_public_collections: list[str] = Field(
        default_factory=list,
        description="Collections of the STAC API that anonymous callers may read (JSON list), e.g. the "
        "published CCI products; everything else needs a token, and job products are their owners' only.",
    )
    job_training: list[str] = Field(
        default_factory=list,
        description="URL or path prefixes (JSON list) of training files that jobs submitted through the API may "
        "name, besides training-set selections and the user's own lake prefix users/<user>/.",
    )
    job_max_pixels: int = Field(
        default=10_000_000_000,
        ge=1,
        description="Pixel budget of one batch job: pixels of the tiles its area touches (10^10 = 10^6 km² at 10 m, "
        "83 Sentinel-2-sized tiles); larger "
        "jobs are refused at POST /jobs with ProcessGraphComplexity.",
    )
    job_max_pixels_by_user: dict[str, int] = Field(
        default_factory=dict,
        description='Per-user pixel budgets that replace HRLC_JOB_MAX_PIXELS, as JSON: {"alice": 1e11}.',
    )
    chunk_px: int = Field(default=1024, description="Spatial chunk size of cubes, pixels.")
    # -- the jobs platform (hrlc.jobs): RabbitMQ, the job store, workers
    broker_url: str = Field(
        default=DEFAULT_BROKER_URL, description="RabbitMQ URL of the jobs platform (AMQP 0-9-1)."
    )
    broker_prefix: str = Field(
        default="hrlc",
        description="Prefix of the queue and exchange names (`<prefix>.tasks.<processor>`, `<prefix>.status`, "
        "...), e.g. to isolate test sessions on one broker.",
    )
    jobs_dsn: str = Field(
        default="",
        description="PostgreSQL DSN of the job store (schema hrlc_jobs); unset = the pgstac database of "
        f"HRLC_CATALOG when that is a PostgreSQL DSN, else {DEFAULT_JOBS_DSN}.",
    )
    task_max_attempts: int = Field(
        default=3, ge=1, description="Attempts of a task whose processor fails with an unexpected error."
    )
    retry_backoff_s: float = Field(
        default=2.0,
        ge=0,
        description="Back-off before the 2nd attempt of a task, seconds (doubles each time).",
    )
    log_level: str = Field(
        default="INFO", description="Log level of the worker and status-consumer processes."
    )
    health_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port on which a worker or status consumer answers /health/live and /health/ready "
        "(`--health-port`); unset = no health server.",
    )
    training_dsn: str = Field(
        default=DEFAULT_TRAINING_DSN,
        description="PostgreSQL + PostGIS DSN of the training-set and ancillary-data database (spec §3.4; "
        "schemas `training` and `ancillary`, created and upgraded by `hrlc migrate` (or `hrlc training migrate` / "
        "`hrlc ancillary migrate`), never on use: a process refuses a schema that is behind).",
    )
    ancillary_stac_api: str = Field(
        default="",
        description="STAC API URL that replaces the public API (e.g. the Planetary Computer) of every ancillary "
        "dataset retrieved through STAC (`hrlc ancillary get`); unset = each dataset's own API.",
    )

    @model_validator(mode="after")
    def _platform_defaults(self) -> Settings:
        return _fill_defaults(self)

    def pixel_budget(self, user: str) -> int:
        """The pixel budget of one batch job of `user`."""
        return int(self.job_max_pixels_by_user.get(user, self.job_max_pixels))


def _fill_defaults(s: Settings) -> Settings:
    # an empty variable means "the default", as it did when these were read with os.environ.get(...) or
    s.broker_url = s.broker_url.strip() or DEFAULT_BROKER_URL
    s.broker_prefix = s.broker_prefix.strip() or "hrlc"
    s.jobs_dsn = s.jobs_dsn.strip() or pg_dsn(s.catalog) or DEFAULT_JOBS_DSN
    s.training_dsn = s.training_dsn.strip() or DEFAULT_TRAINING_DSN
    return s


def defaults() -> Settings:
    """The settings' defaults, without reading the environment: what library code falls back to when the
    process that uses it gives it no settings (only entry points read `HRLC_*`: `hrlc.backends`)."""
    return _fill_defaults(Settings.model_construct())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()


def local_path(url: str) -> Path:
    """The local path of a `file://` URL or a plain path."""
    return Path(url.removeprefix("file://")).expanduser()
