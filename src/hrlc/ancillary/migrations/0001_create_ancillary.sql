-- The ancillary data of spec §3.4.1: the registry, the manual uploads (PutData) and the layers retrieved and
-- cached in the Data Lake (API Data Access). Applied by hrlc.db.migrations (component "ancillary").
create extension if not exists postgis;
create schema if not exists ancillary;

-- The registry (hrlc.ancillary.registry), upserted from code on every use.
create table ancillary.datasets (
    name text primary key check (name ~ '^[a-z0-9][a-z0-9-]*$'),
    title text not null,
    kind text not null check (kind in ('raster', 'vector')),
    value_type text not null check (value_type in ('continuous', 'categorical')),
    roles text[] not null,
    possible_roles text[] not null default '{}',
    licence text not null,
    homepage text not null default '',
    access text not null check (access in ('stac', 's3', 'manual')),
    stac_api text,
    stac_collection text,
    stac_asset text,
    s3_href text,
    years integer[] not null default '{}',
    native_resolution_m double precision,
    definition jsonb not null,
    updated timestamptz not null default now()
);

-- Files put once into the shared S3 (the lake) for datasets without an M2M access.
create table ancillary.uploads (
    id bigserial primary key,
    dataset text not null references ancillary.datasets (name),
    edition text not null check (edition ~ '^([0-9]{4}|static)$'),
    filename text not null,
    key text not null,
    href text not null,
    sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
    bytes bigint not null check (bytes >= 0),
    media_type text not null,
    crs text,
    footprint geometry(MultiPolygon, 4326),
    item jsonb,
    source_url text,
    uploaded_by text not null,
    hrlc_version text not null,
    uploaded timestamptz not null default now(),
    superseded timestamptz,
    unique (dataset, sha256)
);
create index uploads_current on ancillary.uploads (dataset, edition) where superseded is null;
create index uploads_footprint on ancillary.uploads using gist (footprint);

-- Layers retrieved (M2M or from uploads), clipped and reprojected to a product grid, cached in the lake.
create table ancillary.cache (
    id bigserial primary key,
    dataset text not null references ancillary.datasets (name),
    edition text not null,
    grid text not null,
    key text not null unique,
    href text not null,
    crs text not null,
    resolution double precision not null,
    width integer not null,
    height integer not null,
    footprint geometry(Polygon, 4326) not null,
    access text not null,
    source text not null,
    source_ids text[] not null,
    sha256 text not null,
    bytes bigint not null,
    created timestamptz not null default now(),
    last_used timestamptz not null default now(),
    hits integer not null default 0,
    unique (dataset, edition, grid)
);
create index cache_footprint on ancillary.cache using gist (footprint);
