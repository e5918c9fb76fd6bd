#!/bin/bash
# Run once by the postgres image's entrypoint on an empty data directory
# (/docker-entrypoint-initdb.d): creates the login oxmon-postgres uses,
# with the password from the compose secret and the pg_monitor role (read
# access to every statistics view and pg_ls_waldir()).
set -euo pipefail
password=$(< /run/secrets/oxmon-postgres-password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set=pw="$password" <<'SQL'
CREATE ROLE oxmon LOGIN PASSWORD :'pw' CONNECTION LIMIT 5;
GRANT pg_monitor TO oxmon;
SQL
