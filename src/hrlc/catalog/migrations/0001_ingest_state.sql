-- The ingest watcher's checkpoints (hrlc.catalog.ingest), as releases before versioned migrations created them
-- at watcher start: idempotent, so a database made by those releases upgrades in place.
CREATE SCHEMA IF NOT EXISTS hrlc;
CREATE TABLE IF NOT EXISTS hrlc.ingest_state (
    store       text        NOT NULL,
    key         text        NOT NULL,
    etag        text        NOT NULL,
    size        bigint,
    item_id     text,
    collection  text,
    status      text        NOT NULL CHECK (status IN ('loaded', 'error', 'skipped', 'harvested')),
    error       text,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, key)
);
CREATE INDEX IF NOT EXISTS ingest_state_status ON hrlc.ingest_state (store, status);
