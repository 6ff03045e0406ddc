//! A server connection driven by a runtime of its own, one runtime entry per call.
//!
//! The `postgres` crate wraps the same `tokio-postgres` client, but enters its runtime once
//! per message: a binary COPY sends one CopyData message per row, so a 1M-row read entered
//! it a million times (a fifth of a read's samples). Here a whole call (a COPY read with
//! its decoding, a transaction with its statements) is one future, run to its end on a
//! current-thread runtime that polls the connection beside it, as the `postgres` crate's
//! own `block_on` does.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;

use plugboard_api::PluginError;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

use crate::{Stage, classify};

type Messages = Pin<Box<dyn futures_util::Stream<Item = MessageResult> + Send>>;
type MessageResult = Result<AsyncMessage, tokio_postgres::Error>;

/// One server connection: the client, its connection's message stream, and the runtime
/// that drives both.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    messages: Messages,
    /// Whether the connection's stream ended (the server or the socket closed it).
    ended: bool,
    /// `None` only while dropping.
    inner: Option<tokio_postgres::Client>,
}

fn runtime() -> Result<tokio::runtime::Runtime, PluginError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("cannot start a runtime: {e}")))
}

impl Client {
    /// Connects with `config`; the error is the driver's, for the caller to word.
    pub fn connect<T>(
        config: &tokio_postgres::Config,
        tls: T,
    ) -> Result<Result<Self, tokio_postgres::Error>, PluginError>
    where
        T: MakeTlsConnect<Socket> + 'static + Send,
        T::TlsConnect: Send,
        T::Stream: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let runtime = runtime()?;
        Ok(runtime
            .block_on(config.connect(tls))
            .map(|(inner, mut connection)| {
                let messages: Messages = Box::pin(futures_util::stream::poll_fn(move |cx| {
                    connection.poll_message(cx)
                }));
                Self {
                    runtime,
                    messages,
                    ended: false,
                    inner: Some(inner),
                }
            }))
    }

    pub fn is_closed(&self) -> bool {
        self.ended || self.inner.as_ref().is_none_or(|c| c.is_closed())
    }

    pub fn cancel_token(&self) -> Option<tokio_postgres::CancelToken> {
        self.inner.as_ref().map(|c| c.cancel_token())
    }

    /// Runs the future `call` makes of the client to its end, polling the connection
    /// beside it: the call's one runtime entry. A connection that fails on its own (the
    /// server went away) fails the call as a retryable error.
    pub fn run<'a, T, F>(
        &'a mut self,
        call: impl FnOnce(&'a mut tokio_postgres::Client) -> F,
    ) -> Result<T, PluginError>
    where
        F: Future<Output = Result<T, PluginError>> + 'a,
    {
        let Self {
            runtime,
            messages,
            ended,
            inner,
        } = self;
        let Some(client) = inner.as_mut() else {
            return Err(PluginError::connect("the connection is closed").retryable());
        };
        let mut call = pin!(call(client));
        runtime.block_on(std::future::poll_fn(|cx| {
            if let Err(e) = drive(messages, ended, cx) {
                return Poll::Ready(Err(classify(&e, Stage::Established)));
            }
            match call.as_mut().poll(cx) {
                // Nothing can answer a call that waits on a connection that ended.
                Poll::Pending if *ended => Poll::Ready(Err(PluginError::connect(
                    "the server closed the connection",
                )
                .retryable())),
                polled => polled,
            }
        }))
    }
}

/// Polls the connection until it would wait: that sends what the client queued and hands
/// the client what the server sent. Notices go to the log, as libpq prints them.
fn drive(
    messages: &mut Messages,
    ended: &mut bool,
    cx: &mut std::task::Context<'_>,
) -> Result<(), tokio_postgres::Error> {
    while !*ended {
        match messages.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notice(notice)))) => {
                plugboard_api::log::info!("{}: {}", notice.severity(), notice.message());
            }
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => return Err(e),
            Poll::Ready(None) => *ended = true,
            Poll::Pending => break,
        }
    }
    Ok(())
}

impl Drop for Client {
    /// Dropping the client closes its request channel: the connection then sends the
    /// server a Terminate and shuts the socket, which this waits for, as `postgres` does.
    fn drop(&mut self) {
        drop(self.inner.take());
        let Self {
            runtime,
            messages,
            ended,
            ..
        } = self;
        runtime.block_on(std::future::poll_fn(|cx| {
            match drive(messages, ended, cx) {
                Err(_) => Poll::Ready(()),
                Ok(()) if *ended => Poll::Ready(()),
                Ok(()) => Poll::Pending,
            }
        }));
    }
}

/// Sends PostgreSQL's cancel request for the query `token`'s backend runs, on a new
/// connection of its own (the client's runtime is busy with that query).
pub fn cancel<T>(token: &tokio_postgres::CancelToken, tls: T) -> Result<(), String>
where
    T: MakeTlsConnect<Socket>,
{
    let runtime = runtime().map_err(|e| e.message().to_owned())?;
    runtime
        .block_on(token.cancel_query(tls))
        .map_err(|e| e.to_string())
}
