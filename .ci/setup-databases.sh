#!/usr/bin/env bash
# Creates the databases and roles the tests use on the local PostgreSQL (trust auth).
#  - llm_state_test: the backend suite; every test makes its own schema in it.
#  - workflows, owned by role "user" (password "password") and usable by role root: the
#    seed README's examples connect to exactly these URLs and run unchanged.
set -euo pipefail
psql_admin() { psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql_admin -d postgres <<'SQL'
DROP DATABASE IF EXISTS llm_state_test WITH (FORCE);
CREATE DATABASE llm_state_test;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'user') THEN
    CREATE ROLE "user" LOGIN PASSWORD 'password';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'root') THEN
    CREATE ROLE root LOGIN SUPERUSER;
  END IF;
END $$;
DROP DATABASE IF EXISTS workflows WITH (FORCE);
CREATE DATABASE workflows OWNER "user";
SQL
psql_admin -d workflows -c 'GRANT ALL ON SCHEMA public TO PUBLIC'
