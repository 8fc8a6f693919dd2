#!/usr/bin/env bash
# Makes sure the services the tests need are here: a PostgreSQL server on 127.0.0.1:5432 that accepts
# user postgres without a password, and Debian's Chromium at /usr/bin/chromium. Installs and configures
# them from Debian's packages when missing and we are root; otherwise fails loudly, so PostgreSQL and
# browser tests are never skipped silently.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432

die() { echo "ensure_services: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = "0" ]; }

apt_install() {
  is_root || die "$* missing and not root; install it (apt-get install $*) and rerun"
  if [ ! -f /var/lib/apt/lists/.immunosep-updated ]; then
    apt-get update -qq && touch /var/lib/apt/lists/.immunosep-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
pg_login() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc "select 1" >/dev/null 2>&1; }
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

trust_loopback() {
  # A fresh Debian cluster asks for a password on TCP; the throw-away test server trusts loopback only.
  local hba="/etc/postgresql/$(pg_version)/main/pg_hba.conf"
  [ -f "$hba" ] || return 0
  grep -q "immunosep-tests" "$hba" && return 0
  is_root || return 0
  { echo "# immunosep-tests: trust on loopback for the test server"
    echo "host all all 127.0.0.1/32 trust"
    echo "host all all ::1/128 trust"
    cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba" && chown postgres:postgres "$hba" 2>/dev/null || true
}

if pg_ready && pg_login; then
  :
else
  if ! pg_ready; then
    [ -n "$(pg_version)" ] || apt_install postgresql
    trust_loopback
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start 2>/dev/null || true
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  fi
  if pg_ready && ! pg_login; then
    trust_loopback
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main reload 2>/dev/null || true
    sleep 1
  fi
fi
pg_ready || die "no PostgreSQL server answers on $PG_HOST:$PG_PORT; the PostgreSQL tests cannot run"
pg_login || die "PostgreSQL on $PG_HOST:$PG_PORT does not let user postgres in without a password"

[ -x /usr/bin/chromium ] || apt_install chromium
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing; the browser tests cannot run"
echo "ensure_services: PostgreSQL on $PG_HOST:$PG_PORT and /usr/bin/chromium are ready"
