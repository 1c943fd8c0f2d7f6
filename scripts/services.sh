#!/usr/bin/env bash
# Install and start the services hrlc's platform and tests use, idempotently (running it twice is harmless):
#   - PostgreSQL 15 with PostGIS (reuses a server already listening on $PGHOST:$PGPORT, e.g. this machine's),
#     a database $HRLC_PGDATABASE with the postgis and btree_gist extensions, migrated to pgstac (pypgstac migrate);
#   - nothing else to start for S3: tests start moto's server themselves on 127.0.0.1; `hrlc serve` uses
#     HRLC_STORE / HRLC_S3_ENDPOINT (MinIO or AWS in production, see docs/platform.md).
# Needs root for apt-get (CI and the developer machines are root). Python packages come from the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGOPTIONS="-c client_min_messages=warning"
DB=${HRLC_PGDATABASE:-hrlc}

log() { echo "[services] $*"; }

pg_ready() { pg_isready -h "$PGHOST" -p "$PGPORT" -q 2>/dev/null; }

if ! command -v psql >/dev/null || ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
  log "installing PostgreSQL + PostGIS from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql postgresql-15-postgis-3 >/dev/null 2>&1
fi

if ! pg_ready; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    cluster=$(ls /etc/postgresql | head -n1)
    pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
  fi
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { echo "[services] PostgreSQL is not reachable on $PGHOST:$PGPORT" >&2; exit 1; }

if [ "$(psql -d postgres -tAc "select 1 from pg_database where datname = '$DB'")" != "1" ]; then
  log "creating database $DB"
  psql -d postgres -qc "create database \"$DB\""
fi
psql -d "$DB" -qc "create extension if not exists postgis; create extension if not exists btree_gist;" >/dev/null
log "migrating $DB to pgstac"
PGDATABASE=$DB "$VENV/bin/pypgstac" migrate >/dev/null
log "ready: postgresql://$PGUSER@$PGHOST:$PGPORT/$DB (pgstac $(psql -d "$DB" -tAc 'select pgstac.get_version()'))"
