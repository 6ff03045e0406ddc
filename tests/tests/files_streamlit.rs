//! Sections written for st-files-connection (`FilesConnection`), copied from its README and
//! example app and from Streamlit's S3 and GCS tutorials, through the real CLI and `.so`:
//! the S3 ones read a CSV and a Parquet file from a real S3 server (moto, with IAM checks,
//! so a read only works when the credentials under their fsspec names reached the
//! signer); the GCS and Azure ones are refused in one line that names them; an fsspec name
//! and the connector's own name for one setting, given different values, are refused naming
//! both. Credentials are moto's (random per run) or marker strings, and none of them
//! appears in any output.

use std::path::Path;

use plugboard::ConnectOptions;
use plugboard_tests::{Project, Run, cli, lib, servers};
use polars::prelude::*;

/// The frame of st-files-connection's example app (`example/streamlit_app.py`).
fn pets() -> DataFrame {
    df!(
        "Owner" => ["jerry", "barbara", "alex"],
        "Pet" => ["fish", "cat", "puppy"],
        "Count" => [4i64, 2, 1],
    )
    .expect("pets")
}

const PETS_CSV: &str = "Owner,Pet,Count\njerry,fish,4\nbarbara,cat,2\nalex,puppy,1\n";

/// `myfile.csv` of Streamlit's S3 tutorial (`/images/databases/myfile.csv`).
const MYFILE_CSV: &str = "Owner,Pet\nMary,dog\nJohn,cat\nRobert,bird\n";

fn write_pets(dir: &Path) {
    CsvWriter::new(std::fs::File::create(dir.join("test.csv")).expect("create"))
        .finish(&mut pets())
        .expect("write csv");
    ParquetWriter::new(std::fs::File::create(dir.join("test.parquet")).expect("create"))
        .finish(&mut pets())
        .expect("write parquet");
}

fn project(secrets: &str) -> Project {
    Project::new(&["plugboard_files"], secrets)
}

/// Streamlit's `type=FilesConnection`, as `--type` (the class the app passes in code).
const FILES_CONNECTION: &str = "st_files_connection.FilesConnection";

/// Asserts that none of `secrets` appears in anything `run` printed.
#[track_caller]
fn assert_no_leak(what: &str, run: &Run, secrets: &[&str]) {
    for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what}: a secret leaked on {stream}:\n{text}"
            );
        }
    }
}

/// Reads `target` as CSV through the CLI (also at `-vv`, which must print no secret
/// either), and returns what it printed.
fn read_csv(p: &Project, conn: &str, target: &str, extra: &[&str], secrets: &[&str]) -> String {
    let mut args = vec!["read", conn, target, "--format", "csv"];
    args.extend(extra);
    let run = p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[]);
    assert_no_leak(&format!("read {conn} {target}"), &run, secrets);
    let out = run.ok();
    let mut verbose = vec!["-vv"];
    verbose.extend(&args);
    let run = p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &verbose, &[]);
    assert_no_leak(&format!("-vv read {conn} {target}"), &run, secrets);
    out
}

#[test]
fn files_connection_sections_read_csv_and_parquet_from_s3() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pets(dir.path());
    let (csv, parquet) = (dir.path().join("test.csv"), dir.path().join("test.parquet"));
    let bucket = "st-connection-test";
    let (server, key_id, secret) =
        servers::s3(bucket, &[("test.csv", &csv), ("test.parquet", &parquet)]);
    let endpoint = server.url();
    let secrets = [key_id.as_str(), secret.as_str()];

    // From streamlit/files-connection, example/streamlit_app.py ("Streamlit secrets
    // example"): `key` and `secret`, and the protocol from the connection's name. The
    // endpoint and region (AWS's, in the app) point at moto here, in s3fs's names.
    let example = format!(
        r#"
[connections.s3]
key = "{key_id}"
secret = "{secret}"
endpoint_url = "{endpoint}"
client_kwargs = {{ region_name = "us-east-1" }}
"#
    );
    let p = project(&example);
    // The app's reads: `conn.read(f"s3://{{s3_bucket}}/test.csv", input_format='csv')`, and
    // the README's `conn.read("my-s3-bucket/path/to/file.parquet", input_format='parquet')`.
    for (target, format) in [
        (format!("s3://{bucket}/test.csv"), "csv"),
        (format!("{bucket}/test.parquet"), "parquet"),
        (format!("{bucket}/test.csv"), "csv"),
    ] {
        let option = format!("format={format}");
        let out = read_csv(
            &p,
            "s3",
            &target,
            &["--type", FILES_CONNECTION, "-O", &option],
            &secrets,
        );
        assert_eq!(out, PETS_CSV, "{target}");
    }
    // Through the library, as `st.connection("s3", type=FilesConnection)` asks for it.
    let host = p.host();
    let conn = host
        .connection_with("s3", ConnectOptions::new().kind(FILES_CONNECTION))
        .expect("connect");
    let got = conn
        .read(format!("{bucket}/test.parquet"))
        .fetch()
        .expect("parquet");
    assert!(got.equals_missing(&pets()), "{got}");
    let listed = cli!(p, ["connections", "list"]);
    assert_no_leak("connections list", &listed, &secrets);
    listed.ok();

    // The same, with the class written in the section as Streamlit apps do
    // (`type = "st_files_connection.FilesConnection"`), `protocol` (FilesConnection pops it
    // before fsspec sees the rest), boto3's `client_kwargs` for both endpoint and region,
    // and a root as the connector's own addition.
    let typed = format!(
        r#"
[connections.bucket]
type = "{FILES_CONNECTION}"
protocol = "s3"
root = "{bucket}"
key = "{key_id}"
secret = "{secret}"
client_kwargs = {{ endpoint_url = "{endpoint}", region_name = "us-east-1" }}

[connections.unsigned]
type = "{FILES_CONNECTION}"
protocol = "s3"
key = "{key_id}"
secret = "{secret}"
anon = true
endpoint_url = "{endpoint}"
AWS_DEFAULT_REGION = "us-east-1"

[connections.web]
type = "{FILES_CONNECTION}"
root = "{endpoint}/{bucket}/"
secret = "{secret}"
"#
    );
    let p = project(&typed);
    let out = read_csv(&p, "bucket", "test.csv", &[], &secrets);
    assert_eq!(out, PETS_CSV);
    let out = read_csv(&p, "bucket", "test.parquet", &[], &secrets);
    assert_eq!(out, PETS_CSV);

    // `anon = true` is s3fs's unsigned requests: the server, checking signatures, refuses
    // them although the section holds a valid key.
    let run = cli!(p, ["read", "unsigned", &format!("{bucket}/test.csv")]);
    assert_no_leak("anon", &run, &secrets);
    let err = run.fails();
    assert!(
        err.contains("\"unsigned\"") && err.contains("access denied"),
        "{err}"
    );
    // An S3 option on another protocol stays an error, naming it as written.
    let run = cli!(p, ["read", "web", "test.csv"]);
    assert_no_leak("secret on http", &run, &secrets);
    let err = run.fails();
    assert!(
        err.contains("secret applies to protocol = \"s3\" only"),
        "{err}"
    );
}

#[test]
fn the_aws_s3_tutorial_reads_myfile_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let myfile = dir.path().join("myfile.csv");
    std::fs::write(&myfile, MYFILE_CSV).expect("write");
    let bucket = "testbucket-jrieke";
    let (server, key_id, secret) = servers::s3(bucket, &[("myfile.csv", &myfile)]);
    let endpoint = server.url();
    let secrets = [key_id.as_str(), secret.as_str()];

    // From streamlit/docs, content/develop/tutorials/databases/aws-s3.md. The tutorial
    // writes these three at the top of secrets.toml, which Streamlit turns into environment
    // variables for s3fs; plugboard hands a plugin its own section and nothing else, so
    // here they sit in `[connections.s3]`, under the same names. AWS_ENDPOINT_URL (the AWS
    // CLI's name too) points at moto.
    let tutorial = format!(
        r#"
[connections.s3]
AWS_ACCESS_KEY_ID = "{key_id}"
AWS_SECRET_ACCESS_KEY = "{secret}"
AWS_DEFAULT_REGION = "us-east-1"
AWS_ENDPOINT_URL = "{endpoint}"
"#
    );
    let p = project(&tutorial);
    // `conn.read("testbucket-jrieke/myfile.csv", input_format="csv", ttl=600)`
    let out = read_csv(
        &p,
        "s3",
        &format!("{bucket}/myfile.csv"),
        &[
            "--type",
            FILES_CONNECTION,
            "-O",
            "format=csv",
            "--ttl",
            "10m",
        ],
        &secrets,
    );
    assert_eq!(out, MYFILE_CSV);
    let listed = cli!(p, ["connections", "list"]);
    assert_no_leak("connections list", &listed, &secrets);
    let listed = listed.ok();
    assert!(
        listed.contains("AWS_ACCESS_KEY_ID = \"***\""),
        "the access key id is declared secret: {listed}"
    );

    // The protocol from the name alone: `[connections.s3]` with no `protocol`, no `type`
    // in the section, and a bare `bucket/prefix` root.
    let named = format!(
        r#"
[connections.s3]
root = "{bucket}"
key = "{key_id}"
secret = "{secret}"
endpoint_url = "{endpoint}"
AWS_REGION = "us-east-1"
"#
    );
    let p = project(&named);
    let out = read_csv(
        &p,
        "s3",
        "myfile.csv",
        &["--type", FILES_CONNECTION],
        &secrets,
    );
    assert_eq!(out, MYFILE_CSV);
    // The name reaches the plugin in a worker process too.
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = \"process\"\n",
            lib("plugboard_files").display().to_string()
        ),
    );
    let out = read_csv(
        &p,
        "s3",
        "myfile.csv",
        &["--type", FILES_CONNECTION],
        &secrets,
    );
    assert_eq!(out, MYFILE_CSV, "isolated");
}

#[test]
fn gcs_and_azure_sections_are_refused_in_one_line_naming_them() {
    let m = "S3cr3t-fsspec-marker";
    let secrets_file = format!(
        r#"
# From streamlit/docs, content/develop/tutorials/databases/gcs.md, the key file's fields
# with the secrets replaced by markers.
[connections.gcs]
type = "service_account"
project_id = "xxx"
private_key_id = "{m}-kid"
private_key = "-----BEGIN PRIVATE KEY-----\n{m}-pk\n-----END PRIVATE KEY-----\n"
client_email = "xxx@xxx.iam.gserviceaccount.com"
client_id = "xxx"
auth_uri = "https://accounts.google.com/o/oauth2/auth"
token_uri = "https://oauth2.googleapis.com/token"
auth_provider_x509_cert_url = "https://www.googleapis.com/oauth2/v1/certs"
client_x509_cert_url = "xxx"

# gcsfs's `token` (a key file's path), the protocol from the name `gs`.
[connections.gs]
token = "/home/app/{m}-token.json"

# A root URL on GCS, under another name.
[connections.lake]
root = "gs://st-connection-test/data"

# adlfs's names, the protocol from the name `azure`.
[connections.azure]
account_name = "myaccount"
account_key = "{m}-ak"

# `protocol = "abfs"`, a connection string.
[connections.adls]
protocol = "abfs"
connection_string = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey={m}-cs"

# An `az://` root, a SAS token.
[connections.blobs]
root = "az://container/prefix"
sas_token = "sv=2022-11-02&sig={m}-sas"

# Azure credentials alone, under a name that says nothing.
[connections.warehouse]
account_name = "myaccount"
account_key = "{m}-ak2"
"#
    );
    let p = project(&secrets_file);
    for (name, what, why) in [
        (
            "gcs",
            "Google Cloud Storage",
            "the connection's name \"gcs\"",
        ),
        ("gs", "Google Cloud Storage", "the connection's name \"gs\""),
        (
            "lake",
            "Google Cloud Storage",
            "root = \"gs://st-connection-test/data\"",
        ),
        (
            "azure",
            "Azure Blob Storage",
            "the connection's name \"azure\"",
        ),
        ("adls", "Azure Blob Storage", "protocol = \"abfs\""),
        (
            "blobs",
            "Azure Blob Storage",
            "root = \"az://container/prefix\"",
        ),
        (
            "warehouse",
            "Azure Blob Storage",
            "its Azure keys account_name, account_key",
        ),
    ] {
        for verbose in [&[][..], &["-vv"][..]] {
            let mut args: Vec<&str> = verbose.to_vec();
            args.extend(["read", name, "x/myfile.csv", "--type", FILES_CONNECTION]);
            let run = p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[]);
            assert_no_leak(name, &run, &[m]);
            let err = run.fails();
            assert!(
                err.contains(&format!("connection \"{name}\""))
                    && err.contains(&format!(
                        "{what} ({why}) is not served yet by the files connector"
                    )),
                "{name}: {err}"
            );
        }
    }
    let listed = cli!(p, ["connections", "list"]);
    assert_no_leak("connections list", &listed, &[m]);
    listed.ok();
}

#[test]
fn an_fsspec_name_and_the_own_name_disagreeing_are_refused_naming_both() {
    let m = "S3cr3t-conflict-marker";
    let p = project(&format!(
        r#"
[connections.keys]
type = "{FILES_CONNECTION}"
protocol = "s3"
key = "{m}-a"
aws_access_key_id = "{m}-b"

[connections.secrets]
type = "{FILES_CONNECTION}"
protocol = "s3"
secret = "{m}-c"
AWS_SECRET_ACCESS_KEY = "{m}-d"

[connections.regions]
type = "{FILES_CONNECTION}"
protocol = "s3"
AWS_DEFAULT_REGION = "eu-west-1"
client_kwargs = {{ region_name = "us-east-1" }}

[connections.endpoints]
type = "{FILES_CONNECTION}"
protocol = "s3"
endpoint_url = "http://127.0.0.1:1"
aws_endpoint = "http://127.0.0.1:2"

[connections.agree]
type = "{FILES_CONNECTION}"
protocol = "s3"
key = "{m}-same"
aws_access_key_id = "{m}-same"
secret = "{m}-s"
aws_endpoint = "http://127.0.0.1:1"
endpoint_url = "http://127.0.0.1:1"
"#
    ));
    for (name, a, b) in [
        ("keys", "aws_access_key_id", "key"),
        ("secrets", "AWS_SECRET_ACCESS_KEY", "secret"),
        ("regions", "AWS_DEFAULT_REGION", "client_kwargs.region_name"),
        ("endpoints", "aws_endpoint", "endpoint_url"),
    ] {
        let run = cli!(p, ["read", name, "b/x.csv"]);
        assert_no_leak(name, &run, &[m]);
        let err = run.fails();
        assert!(
            err.contains(&format!("connection \"{name}\""))
                && err.contains(&format!(
                    "{a} and {b} are both given, with different values"
                )),
            "{name}: {err}"
        );
    }
    // The same value under both names is one setting: the connection opens (and the
    // read fails only because nothing listens there).
    let run = cli!(p, ["read", "agree", "bucket/x.csv"]);
    assert_no_leak("agree", &run, &[m]);
    let err = run.fails();
    assert!(!err.contains("both given"), "{err}");
    assert!(err.contains("bucket/x.csv"), "{err}");
}
