//! An error inside a stream (after the first batch) reaches the host with its kind and
//! `retryable` flag as data (plugboard-api 1.4's `plugboard_stream_error_v1`), not read
//! back from the stream's error text. The echo fixture fails midway on purpose; a plugin
//! without the symbol is read from the text (tests/tests/compat.rs, `long-vtable`).

use plugboard::{Error, Host};
use plugboard_api::ErrorKind;
use plugboard_tests::{Project, int};

fn echo(tag: &str, extra: &str) -> Host {
    Project::new(
        &["fixture_echo"],
        &format!(
            "[connections.t]\ntype = \"echo\"\ntag = {tag:?}\nretry_backoff = \"1ms\"\n{extra}\n"
        ),
    )
    .host()
}

/// (kind, retryable, attempts) of a plugin error.
fn plugin_error(e: &Error) -> (ErrorKind, bool, u32) {
    match e {
        Error::Plugin {
            kind,
            retryable,
            attempts,
            ..
        } => (*kind, *retryable, *attempts),
        other => panic!("not a plugin error: {other}"),
    }
}

#[test]
fn a_retryable_connect_error_midway_arrives_as_that_kind_and_flag() {
    let host = echo("midway-always", "fail_times = 100");
    let c = host.connection("t").expect("connect");

    // Batch by batch: the first is read, the second is the plugin's error.
    let mut stream = c.query("midway").stream().expect("stream");
    let first = stream.next().expect("a batch").expect("ok");
    assert_eq!(int(&first, "x"), 1);
    let e = stream.next().expect("an error").expect_err("fails midway");
    assert_eq!(plugin_error(&e), (ErrorKind::CONNECT, true, 1), "{e}");
    assert!(e.to_string().contains("lost the server midway"), "{e}");
    assert!(stream.next().is_none(), "the stream is over");

    // Whole: retried as a stale connection, then reported with the attempt count.
    let e = c.query("midway").fetch().expect_err("always fails");
    assert_eq!(plugin_error(&e), (ErrorKind::CONNECT, true, 3), "{e}");
}

#[test]
fn a_read_that_fails_midway_once_is_retried_and_succeeds() {
    let host = echo("midway-once", "fail_times = 1");
    let c = host.connection("t").expect("connect");
    let df = c
        .query("midway")
        .fetch()
        .expect("the second attempt reads both batches");
    assert_eq!(df.height(), 2);
}

#[test]
fn the_flag_is_the_plugins_not_what_its_text_looks_like() {
    // The message ends in "(retryable)", which reading the text back would take for the
    // flag (and retry three times); the error itself says it is not retryable.
    let host = echo("midway-text", "");
    let c = host.connection("t").expect("connect");
    let e = c.query("midway_text").fetch().expect_err("fails midway");
    assert_eq!(plugin_error(&e), (ErrorKind::QUERY, false, 1), "{e}");
    assert!(
        e.to_string()
            .ends_with("query error: the server said: try again (retryable)"),
        "{e}"
    );
    assert!(
        plugboard_api::PluginError::parse("query error: the server said: try again (retryable)")
            .is_some_and(|p| p.retryable),
        "the text alone would have been read as retryable"
    );
}
