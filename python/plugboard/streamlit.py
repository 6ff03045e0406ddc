"""plugboard as a Streamlit connection.

    import streamlit as st
    from plugboard.streamlit import PlugboardConnection

    conn = st.connection("pets_db", type=PlugboardConnection)
    df = conn.query("SELECT * FROM pet_owners", ttl="10m")

The connection's ``[connections.<name>]`` section comes from ``st.secrets``, with the
keyword arguments of ``st.connection`` over it (Streamlit's precedence), and goes to
plugboard unchanged: ``type``, ``url``, ``dialect``, ``username``, ... as plugboard's
connectors read them. Results are cached in plugboard's tiers (memory, disk, Redis), shared
with the CLI and other processes, instead of being pickled by ``st.cache_data``.

Which plugins load: ``$PLUGBOARD_PLUGINS``, else ``./plugins.toml``, or what
:func:`configure` was given before the first connection.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from streamlit.connections import BaseConnection

import plugboard

__all__ = ["PlugboardConnection", "configure", "host"]

_lock = threading.Lock()
_host: Optional[plugboard.Host] = None
_host_options: dict = {}


def configure(**options: Any) -> None:
    """Sets how the shared host is built (``plugins=``, ``cache_dir=``, ``disk_cache=``,
    ``use_env=``), before the first connection opens. Its secrets always come from
    ``st.secrets``, never from plugboard's own secrets files."""
    global _host, _host_options
    with _lock:
        if _host is not None:
            raise plugboard.ConfigError(
                "plugboard.streamlit.configure() must run before the first connection opens"
            )
        options.pop("secrets", None)
        _host_options = options


def host() -> plugboard.Host:
    """The one host every PlugboardConnection of this process shares."""
    global _host
    with _lock:
        if _host is None:
            _host = plugboard.Host(secrets=[], **_host_options)
        return _host


class PlugboardConnection(BaseConnection[plugboard.Connection]):
    """``st.connection(name, type=PlugboardConnection, **kwargs)``: a plugboard connection
    configured by ``st.secrets``."""

    def _connect(self, **kwargs: Any) -> plugboard.Connection:
        settings = dict(self._secrets.to_dict())
        settings.update(kwargs)  # kwargs over secrets, shallow, as Streamlit's own
        kind = settings.pop("type", None)
        if not isinstance(kind, (str, type(None))):
            kind = None  # `type=PlugboardConnection` is Streamlit's, not the connector's
        return host().connection(self._connection_name, type=kind, **settings)

    def query(
        self,
        sql: str,
        *,
        ttl: plugboard.Ttl = None,
        params: plugboard.Params = None,
        refresh: bool = False,
        limit: Optional[int] = None,
        return_type: str = "pandas",
        **kwargs: Any,
    ) -> Any:
        """Runs ``sql`` as ``SQLConnection.query`` does (a pandas DataFrame, ``ttl``,
        ``params``), cached in plugboard's tiers."""
        kwargs.pop("show_spinner", None)  # accepted for SQLConnection's signature
        if kwargs:
            raise plugboard.ConfigError(
                f"query() got unexpected arguments: {', '.join(sorted(kwargs))}"
            )
        raw = self._instance
        try:
            return raw.query(
                sql, params=params, ttl=ttl, refresh=refresh, limit=limit, return_type=return_type
            )
        finally:
            self._outcomes().outcome = raw.last_outcome

    def read(self, target: str, ttl: plugboard.Ttl = None, **options: Any) -> Any:
        """Reads a table, file or sheet through the cache."""
        raw = self._instance
        try:
            return raw.read(target, ttl, **options)
        finally:
            self._outcomes().outcome = raw.last_outcome

    def execute(self, statements: Any, params: plugboard.Params = None) -> int:
        """Runs statements in one transaction; returns the rows affected."""
        return self._instance.execute(statements, params)

    def stream(self, sql: str, params: plugboard.Params = None, **options: Any) -> Any:
        """Yields the result batch by batch."""
        return self._instance.stream(sql, params, **options)

    def tables(self, **options: Any) -> Any:
        return self._instance.tables(**options)

    def describe(self, table: str, **options: Any) -> Any:
        return self._instance.describe(table, **options)

    @property
    def last_outcome(self) -> Optional[str]:
        """Where this thread's last query or read came from (``"memory hit"``, ``"miss"``,
        ...), kept across ``reset()``."""
        return getattr(self._outcomes(), "outcome", None)

    def _outcomes(self) -> threading.local:
        local = self.__dict__.get("_plugboard_outcomes")
        if local is None:
            local = self.__dict__.setdefault("_plugboard_outcomes", threading.local())
        return local

    def reset(self) -> None:
        """Drops the connection and its cached results; the next call reconnects."""
        raw = self._raw_instance
        if raw is not None:
            raw.reset()
        super().reset()
