#!/usr/bin/env bash
# Installs LangGraph's checkpoint savers into a virtualenv for the bench's --peer phase and
# prints the interpreter to pass as --peer-python (default place: target/langgraph-venv).
set -euo pipefail
venv=${1:-"$(dirname "$0")/../../target/langgraph-venv"}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "langgraph-checkpoint>=4.3,<5" "langgraph-checkpoint-sqlite>=3.1,<4" \
  "langgraph-checkpoint-postgres>=3.2,<4" "psycopg[binary]>=3.2,<4"
"$venv/bin/pip" list --disable-pip-version-check 2>/dev/null |
  grep -iE '^(langgraph-checkpoint|psycopg) ' >&2 || true
cd "$(dirname "$venv")" && echo "$(pwd)/$(basename "$venv")/bin/python"
