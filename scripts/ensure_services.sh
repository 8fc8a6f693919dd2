#!/usr/bin/env bash
# Makes sure the services the tests need are here: a PostgreSQL server on 127.0.0.1:5432 and Debian's
# Chromium at /usr/bin/chromium. Installs them from Debian's packages when missing and we are root;
# otherwise fails loudly, so PostgreSQL and browser tests are never skipped silently.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432

apt_install() {
  if [ "$(id -u)" != "0" ]; then
    echo "ensure_services: $* missing and not root; install it (apt-get install $*) and rerun" >&2
    exit 1
  fi
  if [ ! -f /var/lib/apt/lists/.immunosep-updated ]; then
    apt-get update -qq && touch /var/lib/apt/lists/.immunosep-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  if ! command -v pg_isready >/dev/null 2>&1 || ! pg_ready; then
    apt_install postgresql
  fi
fi
if ! pg_ready; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main
  # Trust auth on loopback for the test databases (a fresh Debian cluster uses peer/scram).
  if ! grep -q "immunosep-tests" "$conf/pg_hba.conf" 2>/dev/null; then
    { echo "# immunosep-tests"; echo "host all all 127.0.0.1/32 trust"; echo "host all all ::1/128 trust"; \
      cat "$conf/pg_hba.conf"; } > "$conf/pg_hba.conf.new" && mv "$conf/pg_hba.conf.new" "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
if ! pg_ready; then
  echo "ensure_services: no PostgreSQL server answers on $PG_HOST:$PG_PORT; the PostgreSQL tests cannot run" >&2
  exit 1
fi
psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc "select 1" >/dev/null 2>&1 || {
  echo "ensure_services: PostgreSQL on $PG_HOST:$PG_PORT does not accept user postgres without a password" >&2
  exit 1
}

if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
echo "ensure_services: PostgreSQL on $PG_HOST:$PG_PORT and /usr/bin/chromium are ready"
