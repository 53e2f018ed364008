#!/usr/bin/env bash
# Runs the migrations the way operators do (sea-orm-cli migrate up/status/down) on a
# Postgres database and a SQLite file, and fails if the committed entities differ from
# what `sea-orm-cli generate entity` writes for the migrated schema.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pg_db=llm_state_migrations
psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q -d postgres \
  -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "CREATE DATABASE $pg_db"
pg_url="postgres://postgres@127.0.0.1:5432/$pg_db"
sqlite_url="sqlite://$tmp/migrations.db?mode=rwc"

for url in "$pg_url" "$sqlite_url"; do
  echo "--- $url"
  DATABASE_URL="$url" sea-orm-cli migrate up -d migration
  DATABASE_URL="$url" sea-orm-cli migrate status -d migration
  DATABASE_URL="$url" sea-orm-cli migrate down -d migration
  DATABASE_URL="$url" sea-orm-cli migrate up -d migration
done

sea-orm-cli generate entity -u "$pg_url" -o "$tmp/entity" \
  --with-serde both --date-time-crate chrono >/dev/null
if ! diff -ru "$tmp/entity" entity/src; then
  echo "entity/ differs from what sea-orm-cli generates for the migrated schema." >&2
  echo "Regenerate: sea-orm-cli generate entity -u <migrated db> -o entity/src --with-serde both --date-time-crate chrono" >&2
  exit 1
fi
echo "entities match the migrations"
