-- User-defined processes of the openEO API (hrlc.api.openeo.udp), as releases before versioned migrations
-- created them on first use: idempotent, so a database made by those releases upgrades in place.
CREATE SCHEMA IF NOT EXISTS hrlc_api;
CREATE TABLE IF NOT EXISTS hrlc_api.process_graphs (
    user_id text NOT NULL,
    id text NOT NULL,
    process jsonb NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
