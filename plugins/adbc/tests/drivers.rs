//! The Go drivers from PyPI (Snowflake, BigQuery) load, and are given the
//! options a Streamlit-style section maps to, read back from the driver itself. Nothing
//! here reaches the network: every address is on this machine.

mod common;

use common::adbc_python;
use plugboard_adbc::{Config, Opened};

fn config(json: serde_json::Value) -> Config {
    let mut json = json;
    json["python"] = adbc_python().display().to_string().into();
    serde_json::from_value(json).expect("config")
}

#[test]
fn snowflake_driver_gets_the_mapped_options() {
    let opened = Opened::open(
        "snowflake",
        "snowflake",
        config(serde_json::json!({
            "account": "acme-xy12345", "user": "bob", "password": "hunter2",
            "warehouse": "COMPUTE_WH", "role": "ANALYST", "database": "SALES", "schema": "PUBLIC",
            "host": "127.0.0.1", "port": 9, "protocol": "http", "login_timeout": "3s"
        })),
    )
    .expect("the Snowflake driver loads and takes the options");
    for (key, want) in [
        ("adbc.snowflake.sql.account", "acme-xy12345"),
        ("username", "bob"),
        ("adbc.snowflake.sql.warehouse", "COMPUTE_WH"),
        ("adbc.snowflake.sql.role", "ANALYST"),
        ("adbc.snowflake.sql.db", "SALES"),
        ("adbc.snowflake.sql.schema", "PUBLIC"),
        ("adbc.snowflake.sql.uri.host", "127.0.0.1"),
        ("adbc.snowflake.sql.uri.port", "9"),
        ("adbc.snowflake.sql.uri.protocol", "http"),
    ] {
        assert_eq!(opened.option(key).expect(key), want, "{key}");
    }
    let lib = opened.library.as_ref().expect("found by plugboard");
    assert!(
        lib.ends_with("adbc_driver_snowflake/libadbc_driver_snowflake.so"),
        "{}",
        lib.display()
    );
}

#[test]
fn bigquery_driver_gets_the_key_file_it_was_written_as() {
    let opened = Opened::open(
        "bq",
        "bigquery",
        config(serde_json::json!({
            "type": "service_account", "project_id": "proj-123", "private_key_id": "k1",
            "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
            "client_email": "reader@proj-123.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token", "location": "EU"
        })),
    )
    .expect("the BigQuery driver loads");
    assert_eq!(
        opened
            .option("adbc.bigquery.sql.project_id")
            .expect("project"),
        "proj-123"
    );
    assert_eq!(
        opened
            .option("adbc.bigquery.sql.location")
            .expect("location"),
        "EU"
    );
    assert_eq!(
        opened.option("adbc.bigquery.sql.auth_type").expect("auth"),
        "adbc.bigquery.sql.auth_type.json_credential_string"
    );
    // The key itself is not read back: the driver's GetOption panics (and poisons the
    // driver) on a value of 253 bytes or more. Its JSON is checked in `config`'s tests.
}
