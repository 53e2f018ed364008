#!/usr/bin/env bash
# Creates the databases and roles the tests use on the local PostgreSQL (trust auth).
#  - llm_state_test: the backend suite; every test makes its own schema in it.
#  - workflows: the examples in docs/usage.md and docs/errors.md connect to exactly
#    postgresql://user:password@localhost/workflows and postgresql://localhost/workflows
#    and run unchanged. The second URL names no user, so the driver takes $PGUSER or the
#    OS user name ("anonymous" where the process has none): those roles exist too, and
#    whoever creates the tables first shares them with the others.
set -euo pipefail
export PGOPTIONS='-c client_min_messages=warning'
psql_admin() { psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
os_user=${PGUSER:-$(id -un 2>/dev/null || echo anonymous)}
psql_admin -d postgres <<SQL
DROP DATABASE IF EXISTS llm_state_test WITH (FORCE);
CREATE DATABASE llm_state_test;
DROP DATABASE IF EXISTS workflows WITH (FORCE);
SQL
for role in user root anonymous "$os_user"; do
  psql_admin -d postgres -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
      CREATE ROLE \"$role\" LOGIN;
    END IF; END \$\$"
done
psql_admin -d postgres -c "ALTER ROLE \"user\" PASSWORD 'password'" \
  -c 'CREATE DATABASE workflows OWNER "user"'
psql_admin -d workflows -c 'GRANT ALL ON SCHEMA public TO PUBLIC'
for role in user root anonymous "$os_user"; do
  psql_admin -d workflows \
    -c "ALTER DEFAULT PRIVILEGES FOR ROLE \"$role\" IN SCHEMA public GRANT ALL ON TABLES TO PUBLIC" \
    -c "ALTER DEFAULT PRIVILEGES FOR ROLE \"$role\" IN SCHEMA public GRANT ALL ON SEQUENCES TO PUBLIC"
done
