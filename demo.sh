#!/usr/bin/env bash
# The quick start: build the host and the SQLite connector, then run Streamlit's pets
# example through the CLI: create and fill a table with bound parameters, then query it.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --quiet
pb() { ./target/debug/plugboard --plugins plugins.toml --secrets examples/secrets.toml "$@"; }

pb exec pets_db \
  "CREATE TABLE IF NOT EXISTS pet_owners (person TEXT, pet TEXT)" \
  "DELETE FROM pet_owners"
for pair in jerry:fish barbara:cat alex:puppy; do
  pb exec pets_db "INSERT INTO pet_owners (person, pet) VALUES (:owner, :pet)" \
    --param "owner=${pair%%:*}" --param "pet=${pair#*:}" >/dev/null
done
pb query pets_db "SELECT * FROM pet_owners" --format table
