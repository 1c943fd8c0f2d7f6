-- The training-set database of spec §3.4.2.2: provider, trainingprovider, trainingmetadata, trainingset (the
-- spec's "traniningset", spelled correctly here) and PostGIS's public.spatial_ref_sys, referenced by SRID.
-- Added by hrlc: the HRLC legend (hrlc_class), the per-provider label -> HRLC mapping (label_mapping) and the
-- import log (import_run, import_outcome, view import_status) that notebooks query.
-- See docs/training-db.md for the model and the import rules.

create extension if not exists postgis;
create schema if not exists training;

-- The CCI HRLC legend (hrlc.legend; nodata 0 is not a class).
create table training.hrlc_class (
    code smallint primary key,
    name text not null,
    rgb text not null,
    parent smallint references training.hrlc_class (code)
);
insert into training.hrlc_class (code, name, rgb, parent) values
    (10, 'Tree cover evergreen broadleaf', '0,100,0', null),
    (20, 'Tree cover evergreen needleleaf', '0,60,0', null),
    (30, 'Tree cover deciduous broadleaf', '0,160,0', null),
    (40, 'Tree cover deciduous needleleaf', '40,80,0', null),
    (50, 'Shrub cover evergreen', '150,100,0', null),
    (60, 'Shrub cover deciduous', '170,115,0', null),
    (70, 'Grasslands', '255,180,50', null),
    (80, 'Croplands', '255,255,100', null),
    (90, 'Woody vegetation aquatic or regularly flooded', '27,203,174', null),
    (100, 'Grassland vegetation aquatic or regularly flooded', '0,220,130', null),
    (110, 'Lichens and mosses', '255,220,210', null),
    (120, 'Bare areas', '255,245,215', null),
    (130, 'Built-up', '195,20,0', null),
    (140, 'Open water (parent class)', '0,70,200', null),
    (141, 'Open water seasonal', '91,149,255', 140),
    (142, 'Open water permanent', '0,70,200', 140),
    (150, 'Permanent snow and/or ice', '255,255,255', null);

-- Who delivers training sets: the <provider> part of the naming convention.
create table training.provider (
    provider_id integer generated always as identity primary key,
    code text not null check (code ~ '^[A-Za-z0-9-]+$'),
    name text not null,
    url text,
    class_column text,  -- attribute holding the label; null: the first of class_code, class, label, lc_class, code
    description text,
    created_at timestamptz not null default now()
);
create unique index provider_code_key on training.provider (lower(code));

-- Labels of a provider's legend -> HRLC class codes. A provider with rows here delivers its own labels: every
-- label must have a row (class_code null = "not a class": such features are skipped and reported). A provider
-- without rows delivers HRLC codes.
create table training.label_mapping (
    provider_id integer not null references training.provider (provider_id) on delete cascade,
    label text not null,
    class_code smallint references training.hrlc_class (code),
    description text,
    primary key (provider_id, label)
);

-- One import command (a walk of a folder or an S3 prefix).
create table training.import_run (
    import_run_id bigint generated always as identity primary key,
    source text not null,
    importer_version text not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    db_user text not null default current_user,
    client_host text
);

-- One version of one training set (one folder <area_name>_<type>_<ROI>_<year>_<source>_<provider>).
create table training.trainingmetadata (
    trainingmetadata_id integer generated always as identity primary key,
    dataset_name text not null,
    area_name text not null,
    type text not null check (type in ('historic', 'static')),
    roi text not null,
    year smallint not null check (year between 1900 and 2100),
    source text not null check (source in ('photo-interpreted', 'map-agreement')),
    version integer not null check (version >= 1),
    location text not null,           -- the folder: s3://bucket/prefix/... or file:///...
    data_file text not null,          -- the file read: <dataset_name>.shp or .geojson
    checksum text not null,           -- sha256 over the sha256 of every member file (see docs)
    files jsonb not null,             -- [{name, size, sha256}] of every member file
    srid integer not null references public.spatial_ref_sys (srid),
    class_column text not null,
    geometry_kind text not null check (geometry_kind in ('point', 'polygon', 'mixed')),
    n_features integer not null check (n_features > 0),
    n_repaired integer not null default 0,
    n_skipped integer not null default 0,
    extent geometry(Polygon, 4326),   -- bounding box of the samples, lon/lat
    style_qml text,                   -- the QGIS style (.qml) delivered with the set, if any
    import_run_id bigint references training.import_run (import_run_id),
    importer_version text not null,
    imported_at timestamptz not null default now(),
    superseded_at timestamptz,        -- set when a changed delivery replaced this version
    superseded_by integer references training.trainingmetadata (trainingmetadata_id),
    unique (dataset_name, version)
);
-- at most one current version per training set (also what stops concurrent imports from duplicating one)
create unique index trainingmetadata_current_key on training.trainingmetadata (dataset_name)
    where superseded_at is null;
create index trainingmetadata_naming_idx on training.trainingmetadata (area_name, year, type, source)
    where superseded_at is null;
create index trainingmetadata_checksum_idx on training.trainingmetadata (checksum);
create index trainingmetadata_extent_idx on training.trainingmetadata using gist (extent);

-- Which providers a training set comes from (role 'producer': the <provider> of its name; exactly one).
create table training.trainingprovider (
    trainingmetadata_id integer not null
        references training.trainingmetadata (trainingmetadata_id) on delete cascade,
    provider_id integer not null references training.provider (provider_id),
    role text not null default 'producer' check (role in ('producer', 'contributor', 'reference-map')),
    primary key (trainingmetadata_id, provider_id, role)
);
create unique index trainingprovider_producer_key on training.trainingprovider (trainingmetadata_id)
    where role = 'producer';
create index trainingprovider_provider_idx on training.trainingprovider (provider_id, trainingmetadata_id);

-- The samples: one row per feature of a training-set version.
create table training.trainingset (
    trainingset_id bigint generated always as identity primary key,
    trainingmetadata_id integer not null
        references training.trainingmetadata (trainingmetadata_id) on delete cascade,
    feature_index integer not null,   -- 0-based position of the feature in the file
    sample_id text,                   -- the file's sample_id attribute, if any
    -- an HRLC code (the codes of training.hrlc_class; a check, not a foreign key: 2x faster COPY)
    class_code smallint not null
        check (class_code in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 141, 142, 150)),
    original_label text not null,     -- the label as delivered (before the provider's mapping)
    geom geometry not null,           -- as delivered, in the set's SRID (trainingmetadata.srid)
    geom_4326 geometry(Geometry, 4326) not null,  -- the same in lon/lat, for search
    repaired boolean not null default false,     -- made valid by the importer
    attributes jsonb                  -- the other attributes of the feature
);
create unique index trainingset_feature_key on training.trainingset (trainingmetadata_id, feature_index);
create index trainingset_geom_4326_idx on training.trainingset using gist (geom_4326);
create index trainingset_class_idx on training.trainingset (class_code);

-- What each import did with each folder it found.
create table training.import_outcome (
    import_outcome_id bigint generated always as identity primary key,
    import_run_id bigint not null references training.import_run (import_run_id) on delete cascade,
    dataset_name text not null,       -- the folder name, valid or not
    location text not null,
    outcome text not null check (outcome in ('imported', 'unchanged', 'replaced', 'rejected')),
    reason text,                      -- why a set was rejected (one line)
    notes jsonb not null default '[]',  -- what was repaired, skipped or ignored
    trainingmetadata_id integer references training.trainingmetadata (trainingmetadata_id),
    version integer,
    n_features integer,
    checksum text,
    seconds real,
    recorded_at timestamptz not null default clock_timestamp()
);
create index import_outcome_run_idx on training.import_outcome (import_run_id);
create index import_outcome_dataset_idx on training.import_outcome (dataset_name, recorded_at desc);

-- The current training sets with their provider, as the classification selects them.
create view training.dataset as
select m.trainingmetadata_id, m.dataset_name, m.area_name, m.type, m.roi, m.year, m.source,
       p.code as provider, m.version, m.n_features, m.geometry_kind, m.srid, m.location, m.checksum,
       m.imported_at, m.extent
from training.trainingmetadata m
join training.trainingprovider tp on tp.trainingmetadata_id = m.trainingmetadata_id and tp.role = 'producer'
join training.provider p on p.provider_id = tp.provider_id
where m.superseded_at is null;

-- The last outcome of every folder ever seen by an import.
create view training.import_status as
select distinct on (o.dataset_name)
       o.dataset_name, o.outcome, o.reason, o.version, o.n_features, o.location, o.recorded_at,
       o.import_run_id, o.notes
from training.import_outcome o
order by o.dataset_name, o.recorded_at desc, o.import_outcome_id desc;
