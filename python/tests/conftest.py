"""Fixtures for the Python package's tests.

tests/tests/python.rs runs these with the extension module that `cargo test` built and
the real connector libraries beside it, and tells them where through the environment:

* PLUGBOARD_TEST_DEPS: the folder holding libplugboard_sqlite.so and the other plugins;
* PLUGBOARD_TEST_CHINOOK: Chinook's SQLite file;
* PLUGBOARD_TEST_PG_CHINOOK, PLUGBOARD_TEST_PG_SCRATCH: PostgreSQL URLs of the database
  holding Chinook and of one for the tests' own tables.
"""

from __future__ import annotations

import os
import pathlib
import textwrap

import pytest

import plugboard


def need(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise RuntimeError(f"{var} is not set: run these tests through `cargo test --test python`")
    return value


DEPS = pathlib.Path(need("PLUGBOARD_TEST_DEPS"))
CHINOOK = pathlib.Path(need("PLUGBOARD_TEST_CHINOOK"))
PG_CHINOOK = need("PLUGBOARD_TEST_PG_CHINOOK")
PG_SCRATCH = need("PLUGBOARD_TEST_PG_SCRATCH")


def plugins_toml(folder: pathlib.Path, names=("sqlite", "postgres", "files")) -> pathlib.Path:
    path = folder / "plugins.toml"
    path.write_text(
        "".join(f'[[plugin]]\npath = "{DEPS / f"libplugboard_{n}.so"}"\n\n' for n in names)
    )
    return path


@pytest.fixture
def project(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A throwaway project: plugins.toml, a secrets file, a cache folder of its own."""
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("PLUGBOARD_") and not var.startswith("PLUGBOARD_TEST_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("PLUGBOARD_CACHE_DIR", str(tmp_path / "cache"))
    plugins_toml(tmp_path)
    (tmp_path / "secrets.toml").write_text(
        textwrap.dedent(
            f"""
            [connections.pets_db]
            url = "sqlite:///{tmp_path / 'pets.db'}"

            [connections.chinook]
            type = "sql"
            url = "sqlite:///{CHINOOK}?mode=ro"

            [connections.chinook_pg]
            url = "{PG_CHINOOK}"

            [connections.scratch_pg]
            url = "{PG_SCRATCH}"
            """
        )
    )
    return tmp_path


@pytest.fixture
def host(project: pathlib.Path) -> plugboard.Host:
    return plugboard.Host(project / "plugins.toml", project / "secrets.toml")


@pytest.fixture
def pets(host: plugboard.Host) -> plugboard.Connection:
    """Streamlit's pets example, written through plugboard."""
    conn = host.connection("pets_db")
    conn.execute(
        [
            "CREATE TABLE IF NOT EXISTS pet_owners (person TEXT, pet TEXT)",
            "DELETE FROM pet_owners",
        ]
    )
    for person, pet in [("jerry", "fish"), ("barbara", "cat"), ("alex", "puppy")]:
        conn.execute(
            "INSERT INTO pet_owners (person, pet) VALUES (:owner, :pet)",
            params={"owner": person, "pet": pet},
        )
    return conn
