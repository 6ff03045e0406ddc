"""plugboard's peers on the same work, timed in one run: the Python side of bench/run.

Usage: peers.py DIR RUNS           writes DIR/python.json
       peers.py DIR --peak CASE    one read in this process; prints its peak memory as JSON

The data (DIR/trips.sqlite, DIR/trips.parquet, the PostgreSQL table) is made by
`plugboard-bench prepare`. Every case warms once, then times RUNS runs.
"""
import json
import os
import re
import subprocess
import sys
import time
import warnings
from importlib.metadata import version

import adbc_driver_postgresql.dbapi as adbc_pg
import adbc_driver_sqlite.dbapi as adbc_sqlite
import connectorx as cx
import duckdb
import pandas as pd
import polars as pl
import sqlalchemy as sa

SELECT = "SELECT * FROM trips"
PG_URI = "postgresql://postgres@127.0.0.1:5432/plugboard_bench"
MY_URI = "mysql://root@127.0.0.1:3306/plugboard_bench"


def timed(runs, fn):
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
        del result
    return out


def readers(d):
    """Every peer's cold 1M-row read, by case and tool: a function returning the frame."""
    db = os.path.join(d, "trips.sqlite")
    sqlite_uri = f"sqlite:///{db}"
    sqlite_engine = sa.create_engine(sqlite_uri)
    pg_engine = sa.create_engine(PG_URI.replace("postgresql://", "postgresql+psycopg2://"))
    my_engine = sa.create_engine(MY_URI.replace("mysql://", "mysql+pymysql://"))

    def adbc(connect, target):
        def read():
            with connect(target) as conn, conn.cursor() as cur:
                cur.execute(SELECT)
                return pl.from_arrow(cur.fetch_arrow_table())
        return read

    return {
        "sqlite": {
            "pandas.read_sql + SQLAlchemy (Streamlit's path)":
                lambda: pd.read_sql(sa.text(SELECT), sqlite_engine),
            "connectorx, 1 partition": lambda: cx.read_sql(sqlite_uri, SELECT, return_type="arrow"),
            "connectorx, 2 partitions": lambda: cx.read_sql(
                sqlite_uri, SELECT, return_type="arrow", partition_on="id", partition_num=2),
            "ADBC (SQLite driver) → polars": adbc(adbc_sqlite.connect, db),
            "polars.read_database_uri": lambda: pl.read_database_uri(SELECT, sqlite_uri),
        },
        "postgres": {
            "pandas.read_sql + SQLAlchemy (Streamlit's path)":
                lambda: pd.read_sql(sa.text(SELECT), pg_engine),
            "connectorx, 1 partition": lambda: cx.read_sql(PG_URI, SELECT, return_type="arrow"),
            "connectorx, 2 partitions": lambda: cx.read_sql(
                PG_URI, SELECT, return_type="arrow", partition_on="id", partition_num=2),
            "ADBC (PostgreSQL driver) → polars": adbc(adbc_pg.connect, PG_URI),
            "polars.read_database_uri": lambda: pl.read_database_uri(SELECT, PG_URI),
        },
        "mysql": {
            "pandas.read_sql + SQLAlchemy + pymysql (Streamlit's path)":
                lambda: pd.read_sql(sa.text(SELECT), my_engine),
            "connectorx, 1 partition": lambda: cx.read_sql(MY_URI, SELECT, return_type="arrow"),
            "connectorx, 2 partitions": lambda: cx.read_sql(
                MY_URI, SELECT, return_type="arrow", partition_on="id", partition_num=2),
            "polars.read_database_uri": lambda: pl.read_database_uri(SELECT, MY_URI),
        },
        "parquet": {
            "polars.read_parquet": lambda: pl.read_parquet(os.path.join(d, "trips.parquet")),
        },
    } | duckdb_cases(d), sqlite_engine, pg_engine, my_engine


def duckdb_cases(d):
    """The table plugboard-bench made from the Parquet file (trips.duckdb), and the file;
    none when plugboard-bench measured no DuckDB (its release build had no DuckDB plugin)."""
    table = os.path.join(d, "trips.duckdb")
    if not os.path.exists(table):
        print("  duckdb: not measured (plugboard-bench made no trips.duckdb)", file=sys.stderr)
        return {}
    return {
        "duckdb": duckdb_readers(duckdb.connect(table, read_only=True), SELECT),
        "duckdb_parquet": duckdb_readers(duckdb.connect(),
                                         f"SELECT * FROM '{os.path.join(d, 'trips.parquet')}'"),
    }


def duckdb_readers(con, sql):
    """Python's duckdb, both ways it hands over a result (its names match report.rs)."""
    return {
        "duckdb .pl() (polars DataFrame)": lambda: con.sql(sql).pl(),
        "duckdb .arrow().read_all() (pyarrow Table)": lambda: con.sql(sql).arrow().read_all(),
    }


def lookups(d, sqlite_engine, pg_engine, my_engine):
    db = os.path.join(d, "trips.sqlite")
    state = {"lo": 0}

    def next_lo():
        state["lo"] = (state["lo"] + 7919) % 999_000
        return state["lo"]

    lookup = sa.text("SELECT * FROM trips WHERE id BETWEEN :lo AND :lo + 9")
    sqlite_conn = adbc_sqlite.connect(db)
    pg_conn = adbc_pg.connect(PG_URI)

    def adbc(conn, sql):
        def read():
            with conn.cursor() as cur:
                lo = next_lo()
                cur.execute(sql, (lo, lo + 9))
                return pl.from_arrow(cur.fetch_arrow_table())
        return read

    def cx_read(uri):
        def read():
            lo = next_lo()
            return cx.read_sql(uri, f"SELECT * FROM trips WHERE id BETWEEN {lo} AND {lo + 9}",
                               return_type="arrow")
        return read

    return {
        "lookup_sqlite": {
            "pandas.read_sql + SQLAlchemy": lambda: pd.read_sql(
                lookup, sqlite_engine, params={"lo": next_lo()}),
            "ADBC (SQLite driver)": adbc(sqlite_conn, "SELECT * FROM trips WHERE id BETWEEN ? AND ?"),
            "connectorx (no parameters: SQL text)": cx_read(f"sqlite:///{db}"),
        },
        "lookup_postgres": {
            "pandas.read_sql + SQLAlchemy": lambda: pd.read_sql(lookup, pg_engine, params={"lo": next_lo()}),
            "ADBC (PostgreSQL driver)": adbc(pg_conn, "SELECT * FROM trips WHERE id BETWEEN $1 AND $2"),
            "connectorx (no parameters: SQL text)": cx_read(PG_URI),
        },
        "lookup_mysql": {
            "pandas.read_sql + SQLAlchemy + pymysql": lambda: pd.read_sql(
                lookup, my_engine, params={"lo": next_lo()}),
            "connectorx (no parameters: SQL text)": cx_read(MY_URI),
        },
    }


def cache_hit(d, sqlite_engine, runs):
    """Streamlit's st.cache_data hit for the same 1M-row frame (bare mode, no server)."""
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    import streamlit as st

    @st.cache_data(ttl=3600)
    def load():
        return pd.read_sql(sa.text(SELECT), sqlite_engine)

    return timed(runs, load)


def cli(d, runs):
    """Whole processes doing what `plugboard query … --output x.arrow` does."""
    out = os.path.join(d, "peer-out.arrow")
    db = os.path.join(d, "trips.sqlite")
    scripts = {
        "cli_sqlite": f"import connectorx as cx, pyarrow.feather as f; "
                      f"f.write_feather(cx.read_sql('sqlite:///{db}', '{SELECT}', return_type='arrow'), "
                      f"'{out}', compression='uncompressed')",
        "cli_postgres": f"import connectorx as cx, pyarrow.feather as f; "
                        f"f.write_feather(cx.read_sql('{PG_URI}', '{SELECT}', return_type='arrow'), "
                        f"'{out}', compression='uncompressed')",
        "cli_files": f"import polars as pl; pl.read_parquet('{os.path.join(d, 'trips.parquet')}')"
                     f".write_ipc('{out}', compression='uncompressed')",
    }
    tools = {"cli_sqlite": "python + connectorx → Arrow IPC file",
             "cli_postgres": "python + connectorx → Arrow IPC file",
             "cli_files": "python + polars → Arrow IPC file"}
    samples = []
    for case, code in scripts.items():
        runs_ = timed(runs, lambda: subprocess.run([sys.executable, "-c", code], check=True))
        samples.append(sample(case, tools[case], runs_))
    return samples


def frame_bytes(df):
    if isinstance(df, pd.DataFrame):
        return int(df.memory_usage(deep=True).sum())
    if isinstance(df, pl.DataFrame):
        # As laid out: polars' estimated_size counts a view column's string bytes only,
        # not its 16-byte views; strings of at most 12 bytes live inside their view.
        size = df.select(pl.exclude(pl.String, pl.Binary)).estimated_size()
        for name, dtype in df.schema.items():
            if dtype in (pl.String, pl.Binary):
                col = df[name]
                lens = col.str.len_bytes() if dtype == pl.String else col.bin.size()
                size += 16 * len(col) + int(lens.filter(lens > 12).sum() or 0)
                size += (len(col) + 7) // 8 if col.null_count() else 0
        return int(size)
    return int(df.nbytes)  # a pyarrow Table


def rss():
    status = open("/proc/self/status").read()
    field = lambda name: int(re.search(rf"{name}:\s+(\d+) kB", status).group(1)) * 1024
    return field("VmRSS"), field("VmHWM")


def peak(d, case, tool):
    table, _, _, _ = readers(d)
    read = table[case][tool]
    read()  # warm: imports, connections, page cache
    open("/proc/self/clear_refs", "w").write("5")
    base, _ = rss()
    df = read()
    _, top = rss()
    print(json.dumps([top - base, frame_bytes(df)]))


def sample(case, tool, runs, **extra):
    return {"case": case, "tool": tool, "runs": runs, **extra}


def main():
    d = os.path.abspath(sys.argv[1])
    if sys.argv[2] == "--peak":
        return peak(d, sys.argv[3], sys.argv[4])
    runs = int(sys.argv[2])
    table, sqlite_engine, pg_engine, my_engine = readers(d)
    samples = []

    def push(s):
        runs_ = sorted(s["runs"])
        print(f"  {s['case']:<14} {s['tool']:<52} {runs_[len(runs_) // 2] * 1e3:>9.1f} ms",
              file=sys.stderr)
        samples.append(s)

    for case, tools in table.items():
        for tool, read in tools.items():
            # Streamlit's path is ten times slower than the rest: fewer runs keep the
            # whole benchmark under ten minutes.
            n = max(3, runs // 2) if tool.startswith("pandas") else runs
            push(sample(case, tool, timed(n, read)))
    for case, tools in lookups(d, sqlite_engine, pg_engine, my_engine).items():
        for tool, read in tools.items():
            push(sample(case, tool, timed(runs * 20, read)))
    push(sample("cache", "st.cache_data hit (Streamlit)", cache_hit(d, sqlite_engine, runs)))
    for s in cli(d, runs):
        push(s)
    for case in ["sqlite", "postgres", "mysql", "parquet"]:
        for tool in table[case]:
            if "2 partitions" in tool:
                continue
            out = subprocess.run([sys.executable, __file__, d, "--peak", case, tool],
                                 check=True, capture_output=True, text=True)
            top, frame = json.loads(out.stdout)
            samples.append(sample(f"peak_{case}", tool, [0.0], peak_bytes=top, frame_bytes=frame))

    packages = ["pandas", "SQLAlchemy", "connectorx", "duckdb", "adbc-driver-sqlite",
                "adbc-driver-postgresql", "pyarrow", "polars", "streamlit", "psycopg2-binary",
                "PyMySQL"]
    result = {
        "python": sys.version.split()[0],
        "versions": {p: version(p) for p in packages},
        "rows": pl.read_parquet(os.path.join(d, "trips.parquet")).height,
        "samples": samples,
    }
    with open(os.path.join(d, "python.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
