#!/usr/bin/env bash
# Install and start the services hrlc's platform and tests use, idempotently (running it twice is harmless):
#   - PostgreSQL 15 with PostGIS (reuses a server already listening on $PGHOST:$PGPORT, e.g. this machine's),
#     a database $HRLC_PGDATABASE with the postgis and btree_gist extensions, migrated to pgstac and every hrlc schema (`hrlc migrate`);
#   - RabbitMQ with the management plugin (queue depths over HTTP, for autoscaling): reuses a broker already
#     listening on $RABBITMQ_HOST:$RABBITMQ_PORT, else installs Debian's rabbitmq-server when missing and starts it;
#   - gdal-bin (gdalinfo: tests read the products as GDAL and QGIS do), installed from Debian when missing;
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

if ! command -v gdalinfo >/dev/null; then  # GDAL's own tools: the tests read products as QGIS would
  log "installing gdal-bin from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq gdal-bin >/dev/null 2>&1
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
log "migrating $DB: pgstac and every hrlc schema (hrlc migrate)"
URL="postgresql://$PGUSER@$PGHOST:$PGPORT/$DB"
"$VENV/bin/hrlc" migrate --catalog "$URL" --jobs-dsn "$URL" --training-dsn "$URL" >/dev/null
log "ready: postgresql://$PGUSER@$PGHOST:$PGPORT/$DB (pgstac $(psql -d "$DB" -tAc 'select pgstac.get_version()'))"

# --- RabbitMQ -------------------------------------------------------------------------------------------------
RABBITMQ_HOST=${RABBITMQ_HOST:-127.0.0.1} RABBITMQ_PORT=${RABBITMQ_PORT:-5672}
RABBITMQ_MANAGEMENT_PORT=${RABBITMQ_MANAGEMENT_PORT:-15672}
amqp_ready() { (exec 3<>"/dev/tcp/$RABBITMQ_HOST/$RABBITMQ_PORT") 2>/dev/null; }

if ! amqp_ready; then
  if ! command -v rabbitmq-server >/dev/null; then
    log "installing RabbitMQ from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq rabbitmq-server >/dev/null 2>&1
  fi
  if ! amqp_ready; then
    if rabbitmq-diagnostics -q ping >/dev/null 2>&1; then  # the Erlang node runs, its application was stopped
      log "starting the RabbitMQ application"
      rabbitmqctl -q start_app >/dev/null
    else
      log "starting RabbitMQ"
      rabbitmq-server -detached >/dev/null 2>&1 || true
    fi
  fi
  for _ in $(seq 1 60); do amqp_ready && break; sleep 1; done
fi
amqp_ready || { echo "[services] RabbitMQ is not reachable on $RABBITMQ_HOST:$RABBITMQ_PORT" >&2; exit 1; }

# The management plugin can only be switched on where this machine controls the broker (rabbitmqctl reaches it).
if command -v rabbitmqctl >/dev/null && rabbitmqctl -q await_startup >/dev/null 2>&1; then
  if ! rabbitmq-plugins -q is_enabled rabbitmq_management >/dev/null 2>&1; then
    log "enabling the RabbitMQ management plugin"
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
  fi
  for _ in $(seq 1 30); do
    (exec 3<>"/dev/tcp/$RABBITMQ_HOST/$RABBITMQ_MANAGEMENT_PORT") 2>/dev/null && break; sleep 1
  done
  log "ready: amqp://$RABBITMQ_HOST:$RABBITMQ_PORT (RabbitMQ $(rabbitmqctl -q version 2>/dev/null)," \
    "management http://$RABBITMQ_HOST:$RABBITMQ_MANAGEMENT_PORT)"
else
  log "ready: amqp://$RABBITMQ_HOST:$RABBITMQ_PORT (a broker this machine does not manage: enable its" \
    "rabbitmq_management plugin there)"
fi
