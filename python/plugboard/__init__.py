"""plugboard from Python: connectors as shared libraries, one TTL cache, Arrow results.

    import plugboard

    host = plugboard.Host()                       # ./plugins.toml, the CLI's secrets lookup
    pets = host.connection("pets_db")             # [connections.pets_db]
    df = pets.query("SELECT * FROM pet_owners WHERE person = :p", params={"p": "jerry"}, ttl="10m")

Results are pandas DataFrames unless ``return_type`` says ``"polars"`` or ``"pyarrow"``;
all three are built from the Rust result's Arrow buffers without copying numeric columns.
Calls release the GIL: one host serves many threads at once.
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import os as _os
import threading as _threading
import uuid as _uuid
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from . import _plugboard as _native
from ._plugboard import (
    AuthError,
    ConfigError,
    ConnectError,
    Error,
    PluginError,
    QueryError,
)

__version__: str = _native.__version__

__all__ = [
    "AuthError",
    "ConfigError",
    "ConnectError",
    "Connection",
    "Error",
    "Host",
    "PluginError",
    "QueryError",
    "RETURN_TYPES",
    "__version__",
]

#: What ``return_type`` may be.
RETURN_TYPES = ("pandas", "polars", "pyarrow")

Params = Union[Mapping[str, Any], Sequence[Any], None]
Ttl = Union[int, float, str, _dt.timedelta, None]


class Host:
    """The plugins of one ``plugins.toml``, the connections of the secrets files, and the
    result cache (memory, disk, Redis) they share.

    ``plugins``: the ``plugins.toml`` to load (default: ``$PLUGBOARD_PLUGINS``, else
    ``./plugins.toml``). ``secrets``: a secrets file, a list of them (``[]`` for none), or
    None for the CLI's lookup. ``cache_dir``: the disk tier's folder (default as the CLI);
    ``disk_cache=False`` turns the disk tier off. ``use_env=False`` ignores the
    ``PLUGBOARD_*`` environment. ``worker``: the program that runs plugins configured with
    ``isolation = "process"`` (default: this environment's ``plugboard`` command, which the
    package installs, else ``$PLUGBOARD_WORKER``).
    """

    def __init__(
        self,
        plugins: Union[str, "_os.PathLike[str]", None] = None,
        secrets: Union[str, "_os.PathLike[str]", Sequence[Union[str, "_os.PathLike[str]"]], None] = None,
        *,
        project_dir: Union[str, "_os.PathLike[str]", None] = None,
        cache_dir: Union[str, "_os.PathLike[str]", None] = None,
        disk_cache: bool = True,
        use_env: bool = True,
        worker: Union[str, "_os.PathLike[str]", None] = None,
    ) -> None:
        if worker is None and use_env and not _os.environ.get("PLUGBOARD_WORKER"):
            worker = _installed_command()
        self._native = _native.Host(
            plugins,
            secrets,
            project_dir=project_dir,
            cache_dir=cache_dir,
            disk_cache=disk_cache,
            use_env=use_env,
            worker=worker,
        )

    def connection(self, name: str, type: Optional[str] = None, **kwargs: Any) -> "Connection":
        """Opens (or returns the open) connection ``name``: its ``[connections.<name>]``
        section with ``type`` and ``kwargs`` over it, as ``st.connection`` does."""
        settings = {k: _setting(v) for k, v in kwargs.items()}
        return Connection(self._native.connection(name, type, **settings))

    def connection_names(self) -> list:
        """The configured connection names, sorted."""
        return self._native.connection_names()

    def plugins(self) -> list:
        """The plugins that loaded, as ``(name, version, path)``."""
        return self._native.plugins()

    def load_errors(self) -> list:
        """One line for each plugin that did not load."""
        return self._native.load_errors()

    def clear_cache(self, connection: Optional[str] = None) -> int:
        """Drops cached results in every tier (all, or one connection's); returns how many."""
        return self._native.clear_cache(connection)

    def __repr__(self) -> str:
        return repr(self._native)


class Connection:
    """An open connection. Reads go through the host's cache; ``execute`` invalidates it."""

    def __init__(self, native: "_native.Connection") -> None:
        self._native = native
        self._last = _threading.local()

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def plugin(self) -> str:
        """The plugin that serves this connection."""
        return self._native.plugin

    @property
    def last_outcome(self) -> Optional[str]:
        """Where this thread's last read came from: ``"miss"``, ``"memory hit"``,
        ``"disk hit"``, ``"redis hit"`` or ``"stale hit"``."""
        return getattr(self._last, "outcome", None)

    def query(
        self,
        sql: str,
        params: Params = None,
        ttl: Ttl = None,
        refresh: bool = False,
        limit: Optional[int] = None,
        *,
        return_type: str = "pandas",
    ) -> Any:
        """Runs ``sql`` through the cache. ``params``: a dict binds ``:name``, a list binds
        ``?``/``$1`` by position. ``ttl``: seconds, a ``timedelta`` or ``"10m"``; without
        one the connection's own ``ttl`` applies, else the result stays until a write or
        ``reset()``. ``refresh=True`` reads the source and replaces the cached result."""
        _check_return_type(return_type)
        frame = self._native.query(sql, _params(params), ttl, refresh, limit)
        return self._done(frame, return_type)

    def read(
        self,
        target: str,
        ttl: Ttl = None,
        *,
        params: Params = None,
        refresh: bool = False,
        limit: Optional[int] = None,
        return_type: str = "pandas",
        **options: Any,
    ) -> Any:
        """Reads a target (a table, a file, a sheet) through the cache; ``options`` are the
        plugin's read options (``format="csv"``, ``worksheet="Sheet1"``, ...)."""
        _check_return_type(return_type)
        opts = {k: _setting(v) for k, v in options.items()}
        frame = self._native.read(target, _params(params), ttl, refresh, limit, opts)
        return self._done(frame, return_type)

    def stream(
        self,
        sql: str,
        params: Params = None,
        *,
        ttl: Ttl = None,
        batch_size: Optional[int] = None,
        return_type: str = "pyarrow",
    ) -> Iterator[Any]:
        """Yields the result batch by batch, for results too big to hold: pyarrow
        ``RecordBatch``es, or pandas/polars DataFrames with ``return_type``."""
        _check_return_type(return_type)
        batches = self._native.stream(sql, _params(params), ttl, batch_size)
        self._last.outcome = batches.outcome
        return _batches(batches, return_type)

    def execute(self, statements: Union[str, Sequence[str]], params: Params = None) -> int:
        """Runs the statements in one transaction, all or nothing, and returns the rows
        affected. Cached results of this connection are not served again."""
        return self._native.execute(statements, _params(params))

    def tables(self, *, return_type: str = "pandas") -> Any:
        """The tables (and views) the source holds."""
        _check_return_type(return_type)
        return self._done(self._native.tables(), return_type)

    def describe(self, table: str, *, return_type: str = "pandas") -> Any:
        """The columns of ``table``: names, types, nullability."""
        _check_return_type(return_type)
        return self._done(self._native.describe(table), return_type)

    def ping(self) -> None:
        """Raises unless the source answers."""
        self._native.ping()

    def cancel(self) -> bool:
        """Stops this connection's call running in another thread; True if there was one."""
        return self._native.cancel()

    def reset(self) -> None:
        """Closes the connection and drops its cached results; the next call reconnects."""
        self._native.reset()

    def _done(self, frame: "_native.Frame", return_type: str) -> Any:
        self._last.outcome = frame.outcome
        return _convert(frame, return_type)

    def __repr__(self) -> str:
        return repr(self._native)


def _installed_command() -> Optional[str]:
    """The ``plugboard`` command this environment's package installed, if any."""
    import sys

    for folder in ("bin", "Scripts"):
        path = _os.path.join(sys.prefix, folder, "plugboard")
        if _os.access(path, _os.X_OK) and _os.path.isfile(path):
            return path
    return None


def _check_return_type(return_type: str) -> None:
    if return_type not in RETURN_TYPES:
        raise ConfigError(
            f"return_type must be one of {', '.join(map(repr, RETURN_TYPES))}, got {return_type!r}"
        )


def _convert(frame: Any, return_type: str) -> Any:
    """A result (anything with ``__arrow_c_stream__``) as the table type asked for."""
    if return_type == "polars":
        import polars

        return polars.DataFrame(frame)
    import pyarrow

    table = pyarrow.table(frame)
    if return_type == "pyarrow":
        return table
    # split_blocks: each column keeps its own block, so a numeric column without nulls
    # stays on the Arrow buffer instead of being copied into a 2-D block.
    return table.to_pandas(split_blocks=True)


def _batches(batches: Any, return_type: str) -> Iterator[Any]:
    for frame in batches:
        if return_type == "pyarrow":
            yield from _convert(frame, "pyarrow").to_batches()
        else:
            yield _convert(frame, return_type)


def _bindable(value: Any) -> Any:
    """A parameter as the native side takes it: dates, times, decimals and UUIDs as the
    exact text SQL reads them from (``2024-05-27 10:00:00+02:00``, ``1.10``); numpy
    scalars as the Python values they hold; pandas' missing values as None."""
    if type(value).__name__ in ("NaTType", "NAType"):  # pandas.NaT, pandas.NA
        return None
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy.int64(3) -> 3, numpy.datetime64 -> datetime
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _decimal.Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, _uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    return value


def _params(params: Params) -> Params:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {k: _bindable(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [_bindable(v) for v in params]
    return params  # the native side names the type it cannot take


def _setting(value: Any) -> Any:
    """A connection setting as TOML holds it: paths as text, nested tables and lists kept."""
    if isinstance(value, _os.PathLike):
        return _os.fspath(value)
    if isinstance(value, Mapping):
        return {k: _setting(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_setting(v) for v in value]
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    return value
