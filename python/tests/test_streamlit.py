"""A real Streamlit app, run by Streamlit's AppTest, that calls
st.connection(..., type=PlugboardConnection), writes with execute, shows a query with
st.dataframe and is re-run to show a cache hit."""

from __future__ import annotations

import sqlite3
import textwrap

import pytest

APP = textwrap.dedent(
    """
    import streamlit as st
    from plugboard.streamlit import PlugboardConnection

    conn = st.connection("pets_db", type=PlugboardConnection)
    if st.button("Add a pet"):
        conn.execute(
            "INSERT INTO pet_owners (person, pet) VALUES (:person, :pet)",
            params={"person": "kim", "pet": "owl"},
        )
    df = conn.query("SELECT person, pet FROM pet_owners ORDER BY person", ttl=600)
    st.dataframe(df)
    st.caption(conn.last_outcome)
    """
)


@pytest.fixture
def app_project(project, monkeypatch):
    """The project with the app's secrets where Streamlit looks: .streamlit/secrets.toml."""
    with sqlite3.connect(project / "pets.db") as db:
        db.execute("CREATE TABLE pet_owners (person TEXT, pet TEXT)")
        db.executemany(
            "INSERT INTO pet_owners VALUES (?, ?)",
            [("jerry", "fish"), ("barbara", "cat"), ("alex", "puppy")],
        )
    (project / ".streamlit").mkdir()
    (project / ".streamlit" / "secrets.toml").write_text(
        textwrap.dedent(
            """
            [connections.pets_db]
            url = "sqlite:///pets.db"

            [connections.other_db]
            url = "sqlite:///other.db"
            """
        )
    )
    monkeypatch.setenv("PLUGBOARD_PLUGINS", str(project / "plugins.toml"))
    monkeypatch.setenv("HOME", str(project))
    # Each test is a fresh app process: no connection, host or secrets of an earlier one.
    import streamlit as st

    import plugboard.streamlit

    from streamlit.runtime.secrets import secrets_singleton

    st.cache_resource.clear()
    secrets_singleton._reset()
    monkeypatch.setattr(plugboard.streamlit, "_host", None)
    return project


def shown(at):
    df = at.dataframe[0].value
    return [tuple(r) for r in df.itertuples(index=False)], at.caption[0].value


def test_an_app_writes_reads_and_hits_the_cache(app_project):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    pets = [("alex", "puppy"), ("barbara", "cat"), ("jerry", "fish")]
    assert shown(at) == (pets, "miss")

    at.run()
    assert not at.exception, at.exception
    assert shown(at) == (pets, "memory hit")

    at.button[0].click().run()
    assert not at.exception, at.exception
    with_kim = sorted(pets + [("kim", "owl")])
    assert shown(at) == (with_kim, "miss")

    at.run()
    assert shown(at) == (with_kim, "memory hit")


def test_kwargs_win_over_secrets_and_reset_reconnects(app_project):
    from streamlit.testing.v1 import AppTest

    with sqlite3.connect(app_project / "elsewhere.db") as db:
        db.execute("CREATE TABLE pet_owners (person TEXT, pet TEXT)")
        db.execute("INSERT INTO pet_owners VALUES ('zoe', 'ferret')")
    app = APP.replace(
        'st.connection("pets_db", type=PlugboardConnection)',
        'st.connection("pets_db", type=PlugboardConnection, url="sqlite:///elsewhere.db")',
    ).replace("st.caption(conn.last_outcome)", "conn.reset()\nst.caption(conn.last_outcome)")
    at = AppTest.from_string(app, default_timeout=60).run()
    assert not at.exception, at.exception
    assert shown(at) == ([("zoe", "ferret")], "miss")
    at.run()  # reset() dropped the cached result: read again
    assert shown(at) == ([("zoe", "ferret")], "miss")


def test_a_missing_section_is_a_clear_error(app_project):
    from streamlit.testing.v1 import AppTest

    app = APP.replace('"pets_db"', '"no_such_db"')
    at = AppTest.from_string(app, default_timeout=60).run()
    assert at.exception
    assert 'unknown connection "no_such_db"' in at.exception[0].message


def test_the_readme_app_runs_against_the_example_secrets(app_project, monkeypatch):
    """examples/streamlit_app.py with examples/secrets.toml, as the README runs them
    (`--secrets.files examples/secrets.toml`, pets.db made by demo.sh)."""
    import pathlib
    import shutil

    from streamlit import config
    from streamlit.testing.v1 import AppTest

    repo = pathlib.Path(__file__).resolve().parents[2]
    (app_project / ".streamlit" / "secrets.toml").unlink()  # only the example's file
    shutil.copy(repo / "examples" / "secrets.toml", app_project / "example-secrets.toml")
    config.set_option("secrets.files", [str(app_project / "example-secrets.toml")])
    at = AppTest.from_file(str(repo / "examples" / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    pets = [("alex", "puppy"), ("barbara", "cat"), ("jerry", "fish")]
    assert shown(at) == (pets, "3 pets · miss")
    at.run()
    assert shown(at) == (pets, "3 pets · memory hit")
    at.button[0].click().run()
    assert shown(at) == (sorted(pets + [("kim", "owl")]), "4 pets · miss")
