"""The package against the real connectors: answers equal sqlite3's and psycopg's,
parameters of every Python type, the cache, zero copy, threads, errors."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import sqlite3
import threading
import time

import pandas as pd
import polars as pl
import psycopg
import pyarrow as pa
import pytest

import plugboard
from conftest import CHINOOK, PG_CHINOOK, PG_SCRATCH


def rows(df: pd.DataFrame) -> list:
    """A pandas result as plain Python rows, nulls as None."""
    out = []
    for row in df.itertuples(index=False):
        out.append(tuple(plain(v) for v in row))
    return out


def plain(v):
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


# --------------------------------------------------------------------------------------
# Answers


def test_the_pets_example_reads_what_it_wrote(pets):
    df = pets.query("SELECT * FROM pet_owners ORDER BY person")
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["person", "pet"]
    assert rows(df) == [("alex", "puppy"), ("barbara", "cat"), ("jerry", "fish")]
    one = pets.query("SELECT pet FROM pet_owners WHERE person = :p", params={"p": "barbara"})
    assert rows(one) == [("cat",)]


CHINOOK_QUERIES = [
    "SELECT * FROM Track ORDER BY TrackId",
    "SELECT * FROM Invoice ORDER BY InvoiceId",
    "SELECT * FROM Customer ORDER BY CustomerId",
    """SELECT g.Name AS genre, count(*) AS tracks, sum(t.Milliseconds) AS ms,
              avg(t.UnitPrice) AS price
       FROM Track t JOIN Genre g ON g.GenreId = t.GenreId
       GROUP BY g.Name ORDER BY tracks DESC, genre""",
    """SELECT c.Country, count(DISTINCT c.CustomerId) AS customers, round(sum(i.Total), 2) AS total
       FROM Customer c LEFT JOIN Invoice i ON i.CustomerId = c.CustomerId
       GROUP BY c.Country ORDER BY total DESC, c.Country""",
]


@pytest.mark.parametrize("sql", CHINOOK_QUERIES)
def test_chinook_on_sqlite_equals_sqlite3(host, sql):
    got = rows(host.connection("chinook").query(sql))
    with sqlite3.connect(f"file:{CHINOOK}?mode=ro", uri=True) as db:
        want = [tuple(r) for r in db.execute(sql).fetchall()]
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert g == pytest.approx(w) if any(isinstance(x, float) for x in w) else g == w


PG_QUERIES = [
    "SELECT * FROM track ORDER BY track_id",
    "SELECT * FROM invoice ORDER BY invoice_id",
    "SELECT * FROM employee ORDER BY employee_id",
    """SELECT g.name AS genre, count(*) AS tracks, sum(t.milliseconds) AS ms,
              avg(t.unit_price)::numeric(10, 4) AS price
       FROM track t JOIN genre g ON g.genre_id = t.genre_id
       GROUP BY g.name ORDER BY tracks DESC, genre""",
]


@pytest.mark.parametrize("sql", PG_QUERIES)
def test_chinook_on_postgres_equals_psycopg(host, sql):
    got = rows(host.connection("chinook_pg").query(sql))
    with psycopg.connect(PG_CHINOOK) as db:
        want = [tuple(r) for r in db.execute(sql).fetchall()]
    assert len(got) == len(want) > 0
    assert got == want


def test_return_types_hold_the_same_table(host):
    conn = host.connection("chinook")
    sql = "SELECT TrackId, Name, UnitPrice FROM Track ORDER BY TrackId LIMIT 50"
    as_pandas = conn.query(sql)
    as_polars = conn.query(sql, return_type="polars")
    as_arrow = conn.query(sql, return_type="pyarrow")
    assert isinstance(as_polars, pl.DataFrame) and isinstance(as_arrow, pa.Table)
    assert as_polars.to_dicts() == as_arrow.to_pylist() == as_pandas.to_dict("records")
    with pytest.raises(plugboard.ConfigError, match="return_type must be one of"):
        conn.query(sql, return_type="numpy")


# --------------------------------------------------------------------------------------
# Parameters


PG_PARAMS = [
    (None, "int", None),
    (True, "boolean", True),
    (False, "boolean", False),
    (-(2**63), "bigint", -(2**63)),
    (2**63 - 1, "bigint", 2**63 - 1),
    (1.5, "float8", 1.5),
    (float("inf"), "float8", float("inf")),
    ("naïve 🐍 'quoted'", "text", "naïve 🐍 'quoted'"),
    (b"\x00\xffbytes", "bytea", b"\x00\xffbytes"),
    (dt.date(1979, 5, 27), "date", dt.date(1979, 5, 27)),
    (dt.datetime(2024, 2, 29, 23, 59, 58, 123456), "timestamp", dt.datetime(2024, 2, 29, 23, 59, 58, 123456)),
    (dt.time(7, 32, 1, 500), "time", dt.time(7, 32, 1, 500)),
    (decimal.Decimal("12345678901234.56"), "numeric(16,2)", decimal.Decimal("12345678901234.56")),
]


@pytest.mark.parametrize("value,sql_type,want", PG_PARAMS, ids=lambda v: repr(v)[:30])
def test_each_python_type_binds_on_postgres(host, value, sql_type, want):
    conn = host.connection("scratch_pg")
    got = conn.query(f"SELECT CAST(:v AS {sql_type}) AS v", params={"v": value}, return_type="pyarrow")
    assert got.column("v").to_pylist() == [want]


def test_a_timezone_aware_datetime_keeps_its_instant(host):
    conn = host.connection("scratch_pg")
    moment = dt.datetime(2024, 5, 27, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    got = conn.query("SELECT CAST(:v AS timestamptz) AS v", params={"v": moment}, return_type="pyarrow")
    assert got.column("v").to_pylist()[0] == moment


def test_each_python_type_binds_on_sqlite(host):
    conn = host.connection("pets_db")
    values = [None, True, 7, -2.25, "text", b"\x01\x02", dt.date(2001, 2, 3), decimal.Decimal("1.10")]
    got = conn.query(
        "SELECT ? AS a, ? AS b, ? AS c, ? AS d, ? AS e, ? AS f, ? AS g, ? AS h",
        params=values,
        return_type="pyarrow",
    ).to_pylist()[0]
    assert got == {
        "a": None,
        "b": 1,
        "c": 7,
        "d": -2.25,
        "e": "text",
        "f": b"\x01\x02",
        "g": "2001-02-03",
        "h": "1.10",
    }


def test_numpy_and_pandas_values_bind_as_python_ones(host):
    import numpy as np

    conn = host.connection("scratch_pg")
    got = conn.query(
        "SELECT CAST(:i AS bigint) AS i, CAST(:f AS float8) AS f, CAST(:b AS boolean) AS b,"
        " CAST(:t AS timestamp) AS t, CAST(:nat AS timestamp) AS nat, CAST(:na AS int) AS na",
        params={
            "i": np.int64(-7), "f": np.float32(0.5), "b": np.bool_(True),
            "t": pd.Timestamp("2024-01-02 03:04:05.000006"), "nat": pd.NaT, "na": pd.NA,
        },
        return_type="pyarrow",
    ).to_pylist()[0]
    assert got == {
        "i": -7, "f": 0.5, "b": True, "t": dt.datetime(2024, 1, 2, 3, 4, 5, 6), "nat": None, "na": None,
    }


def test_unbindable_parameters_are_config_errors(host):
    conn = host.connection("pets_db")
    with pytest.raises(plugboard.ConfigError, match="parameter big: .* does not fit in a 64-bit integer"):
        conn.query("SELECT :big", params={"big": 2**70})
    with pytest.raises(plugboard.ConfigError, match="parameter x: cannot bind a set"):
        conn.query("SELECT :x", params={"x": {1, 2}})
    with pytest.raises(plugboard.ConfigError, match="params must be a dict"):
        conn.query("SELECT 1", params="not params")


# --------------------------------------------------------------------------------------
# The cache


def test_a_ttl_caches_and_a_write_invalidates(pets):
    sql = "SELECT count(*) AS n FROM pet_owners"
    assert rows(pets.query(sql, ttl=600)) == [(3,)] and pets.last_outcome == "miss"
    assert rows(pets.query(sql, ttl=dt.timedelta(minutes=10))) == [(3,)]
    assert pets.last_outcome == "memory hit"
    pets.execute("INSERT INTO pet_owners VALUES ('kim', 'owl')")
    assert rows(pets.query(sql, ttl="10m")) == [(4,)] and pets.last_outcome == "miss"
    assert rows(pets.query(sql, ttl="10m", refresh=True)) == [(4,)] and pets.last_outcome == "miss"
    pets.reset()
    assert rows(pets.query(sql, ttl="10m")) == [(4,)] and pets.last_outcome == "miss"


def test_a_second_host_reads_the_first_ones_disk_entry(project, pets):
    sql = "SELECT person FROM pet_owners ORDER BY person"
    pets.query(sql, ttl="1h")
    other = plugboard.Host(project / "plugins.toml", project / "secrets.toml")
    again = other.connection("pets_db")
    assert rows(again.query(sql, ttl="1h")) == [("alex",), ("barbara",), ("jerry",)]
    assert again.last_outcome == "disk hit"
    assert other.clear_cache("pets_db") >= 1
    again.query(sql, ttl="1h")
    assert again.last_outcome == "miss"


def test_bad_ttls_are_refused(pets):
    for ttl, why in [(-1, "negative"), ("soon", "not a duration"), (True, "got a bool"), ([1], "got list")]:
        with pytest.raises(plugboard.ConfigError, match=why):
            pets.query("SELECT 1", ttl=ttl)


# --------------------------------------------------------------------------------------
# No copy across the boundary


def test_numeric_columns_are_not_copied(host):
    conn = host.connection("scratch_pg")
    # Under one batch, so that every importer sees one chunk.
    sql = "SELECT g::bigint AS id, g::float8 * 0.5 AS half FROM generate_series(1, 50000) AS g"
    frame = conn._native.query(sql, None, None, False, None)
    rust_id, rust_half = frame._values_address("id"), frame._values_address("half")

    table = pa.table(frame)
    assert [c.buffers()[1].address for c in table.column("id").chunks][0] == rust_id
    assert table.column("half").chunks[0].buffers()[1].address == rust_half

    df = pl.DataFrame(frame)
    assert df["id"].to_numpy(allow_copy=False).__array_interface__["data"][0] == rust_id

    pdf = plugboard._convert(frame, "pandas")
    assert pdf["half"].to_numpy().__array_interface__["data"][0] == rust_half
    assert pdf["id"].sum() == 50000 * 50001 // 2


def test_a_result_outlives_its_connection_and_host(project):
    host = plugboard.Host(project / "plugins.toml", project / "secrets.toml")
    table = host.connection("chinook").query("SELECT * FROM Track", return_type="pyarrow")
    del host
    import gc

    gc.collect()
    assert table.num_rows == 3503 and table.column("TrackId").to_pylist()[-1] == 3503


def test_an_unconsumed_capsule_is_released(host):
    frame = host.connection("chinook")._native.query("SELECT * FROM Album", None, None, False, None)
    for _ in range(3):
        capsule = frame.__arrow_c_stream__()
        del capsule  # released by its destructor: no leak, no crash
    assert pa.table(frame).num_rows == 347


# --------------------------------------------------------------------------------------
# Threads


def test_threads_run_queries_at_once(host):
    """Four half-second server-side sleeps from four threads take about half a second,
    not two: the GIL is released while a query runs."""
    conn = host.connection("scratch_pg")
    conn.query("SELECT 1")  # connect first
    errors = []

    def one(i):
        try:
            df = conn.query(f"SELECT {i} AS i FROM pg_sleep(0.5)")
            assert rows(df) == [(i,)]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    assert not errors
    assert wall < 1.5, f"4 × 0.5 s sleeps took {wall:.2f} s: they ran one after another"


def test_many_threads_share_one_host(host):
    results = []

    def one(i):
        conn = host.connection("chinook")
        df = conn.query("SELECT count(*) AS n FROM Track WHERE TrackId <= :i", params={"i": i}, ttl=60)
        results.append((i, int(df["n"][0])))

    threads = [threading.Thread(target=one, args=(i % 25 + 1,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted((i % 25 + 1, i % 25 + 1) for i in range(100))


# --------------------------------------------------------------------------------------
# Writes, streams, discovery


def test_execute_is_all_or_nothing(host):
    conn = host.connection("scratch_pg")
    conn.execute(["DROP TABLE IF EXISTS py_all_or_nothing", "CREATE TABLE py_all_or_nothing (v int)"])
    with pytest.raises(plugboard.QueryError) as err:
        conn.execute(
            ["INSERT INTO py_all_or_nothing VALUES (1)", "INSERT INTO py_all_or_nothing VALUES ('x')"]
        )
    assert "\n" not in str(err.value)
    assert rows(conn.query("SELECT count(*) AS n FROM py_all_or_nothing")) == [(0,)]
    assert conn.execute("INSERT INTO py_all_or_nothing SELECT generate_series(1, 5)") == 5
    assert conn.execute(["UPDATE py_all_or_nothing SET v = v + :d", "DELETE FROM py_all_or_nothing WHERE v > 5"], {"d": 1}) == 6
    conn.execute("DROP TABLE py_all_or_nothing")


def test_stream_yields_every_row_in_batches(host):
    conn = host.connection("chinook")
    batches = list(conn.stream("SELECT TrackId FROM Track ORDER BY TrackId", batch_size=1000))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert len(batches) >= 4 and sum(b.num_rows for b in batches) == 3503
    ids = [v for b in batches for v in b.column(0).to_pylist()]
    assert ids == list(range(1, 3504))
    frames = list(conn.stream("SELECT * FROM Genre", return_type="polars"))
    assert sum(f.height for f in frames) == 25
    reader = pa.RecordBatchReader.from_stream(conn._native.stream("SELECT * FROM Album", None, None, 100))
    assert reader.read_all().num_rows == 347


def test_tables_and_describe(host):
    conn = host.connection("chinook")
    tables = conn.tables()
    assert {"Album", "Artist", "Track"} <= set(tables.iloc[:, list(tables.columns).index("name")])
    cols = conn.describe("Album")
    assert list(cols.iloc[:, 0])[:3] == ["AlbumId", "Title", "ArtistId"]


# --------------------------------------------------------------------------------------
# Errors


def test_errors_are_one_line_exceptions_of_the_hierarchy(project, host):
    assert issubclass(plugboard.QueryError, plugboard.Error)
    assert issubclass(plugboard.Error, Exception)
    with pytest.raises(plugboard.ConfigError, match='unknown connection "nope"'):
        host.connection("nope")
    with pytest.raises(plugboard.QueryError) as err:
        host.connection("chinook").query("SELEKT 1")
    assert "\n" not in str(err.value) and "chinook" in str(err.value)
    with pytest.raises(plugboard.ConnectError):
        host.connection(
            "closed", type="postgresql", host="127.0.0.1", port=1, username="postgres", connect_timeout=2
        ).ping()
    with pytest.raises(plugboard.ConfigError, match="broken.toml:1:"):
        (project / "broken.toml").write_text("[[plugin]\n")
        plugboard.Host(project / "broken.toml", project / "secrets.toml")


def test_a_wrong_password_is_an_auth_error_without_the_password(host):
    port, user = int(PG_SCRATCH_PRIVATE_PORT()), "plugboard_pw"
    with pytest.raises(plugboard.AuthError) as err:
        host.connection(
            "pw", type="postgresql", host="127.0.0.1", port=port, username=user,
            password="Wr0ng-S3cret-Value", database="postgres",
        ).ping()
    assert "Wr0ng-S3cret-Value" not in str(err.value)
    ok = host.connection(
        "pw_ok", type="postgresql", host="127.0.0.1", port=port, username=user,
        password=PG_PRIVATE_PASSWORD(), database="postgres",
    )
    assert rows(ok.query("SELECT current_user AS u")) == [(user,)]


def PG_SCRATCH_PRIVATE_PORT() -> str:
    from conftest import need

    return need("PLUGBOARD_TEST_PG_PRIVATE_PORT")


def PG_PRIVATE_PASSWORD() -> str:
    from conftest import need

    return need("PLUGBOARD_TEST_PG_PRIVATE_PASSWORD")


def test_a_secret_in_kwargs_stays_out_of_errors(host):
    with pytest.raises(plugboard.Error) as err:
        host.connection("leaky", type="postgresql", url="postgresql://u:Hunter2Secret@127.0.0.1:1/db", connect_timeout=2).ping()
    assert "Hunter2Secret" not in str(err.value)


def misbehave_secrets(project):
    path = project / "misbehave-secrets.toml"
    path.write_text('[connections.m]\ntype = "misbehave"\n')
    return path


def test_a_plugin_that_panics_is_a_plugin_error(project):
    from conftest import DEPS

    (project / "misbehave.toml").write_text(f'[[plugin]]\npath = "{DEPS / "libfixture_misbehave.so"}"\n')
    conn = plugboard.Host(project / "misbehave.toml", misbehave_secrets(project)).connection("m")
    with pytest.raises(plugboard.PluginError, match="panic"):
        conn.query("panic")
    # the host is still there
    with pytest.raises(plugboard.PluginError, match="panic"):
        conn.query("panic")


def test_a_stream_that_fails_midway_raises_after_its_first_batch(project):
    from conftest import DEPS

    (project / "misbehave.toml").write_text(f'[[plugin]]\npath = "{DEPS / "libfixture_misbehave.so"}"\n')
    conn = plugboard.Host(project / "misbehave.toml", misbehave_secrets(project)).connection("m")
    seen = []
    with pytest.raises(plugboard.PluginError, match="panic"):
        for batch in conn.stream("stream:panic"):
            seen.append(batch.num_rows)
    assert seen == [1]
    # Through the Arrow stream interface the failure is pyarrow's error, with the message.
    with pytest.raises(Exception, match="panic"):
        pa.RecordBatchReader.from_stream(conn._native.stream("stream:panic", None, None, None)).read_all()


# --------------------------------------------------------------------------------------
# The command line and isolated plugins


def launcher(project):
    """The package's `plugboard` command, as a wheel's console script would be."""
    import sys

    path = project / "plugboard"
    path.write_text(f"#!{sys.executable}\nfrom plugboard.__main__ import main\nmain()\n")
    path.chmod(0o755)
    return path


def test_the_command_line_runs_from_the_package(project):
    import subprocess

    out = subprocess.run(
        [launcher(project), "--plugins", project / "plugins.toml", "--secrets", project / "secrets.toml",
         "query", "chinook", "SELECT count(*) AS n FROM Track", "--format", "csv"],
        capture_output=True, text=True, timeout=120,
    )
    assert (out.returncode, out.stdout) == (0, "n\n3503\n"), out.stderr
    bad = subprocess.run([launcher(project), "query"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_an_isolated_plugin_that_crashes_leaves_python_running(project):
    from conftest import DEPS

    (project / "iso.toml").write_text(
        f'[[plugin]]\npath = "{DEPS / "libfixture_misbehave.so"}"\nisolation = "process"\n'
    )
    host = plugboard.Host(project / "iso.toml", misbehave_secrets(project), worker=launcher(project))
    conn = host.connection("m")
    assert rows(conn.query("rows")) == [(1, "a"), (2, "b"), (3, "c")]
    worker = int(conn.query("pid")["pid"][0])
    assert worker != __import__("os").getpid()
    with pytest.raises(plugboard.PluginError, match="misbehave"):
        conn.query("segv")
    assert rows(conn.query("rows", refresh=True)) == [(1, "a"), (2, "b"), (3, "c")]
    assert conn.last_outcome == "miss"  # read again, by a new worker
    assert int(conn.query("pid", refresh=True)["pid"][0]) != worker


def test_read_takes_a_file_and_the_plugins_read_options(project):
    (project / "data").mkdir()
    (project / "data" / "pets.txt").write_text("person;pet\njerry;fish\nbarbara;cat\n")
    (project / "files-secrets.toml").write_text(
        f'[connections.local]\ntype = "files"\nroot = "{project / "data"}"\n'
    )
    conn = plugboard.Host(project / "plugins.toml", project / "files-secrets.toml").connection("local")
    df = conn.read("pets.txt", ttl="1m", format="csv", delimiter=";")
    assert rows(df) == [("jerry", "fish"), ("barbara", "cat")] and conn.last_outcome == "miss"
    assert rows(conn.read("pets.txt", ttl="1m", format="csv", delimiter=";")) == rows(df)
    assert conn.last_outcome == "memory hit"
    with pytest.raises(plugboard.Error, match="pets.txt"):
        conn.read("pets.txt")  # no format: the name does not tell it
