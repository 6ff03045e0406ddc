//! Sections written for st-files-connection (`FilesConnection`), copied from its README and
//! example app and from Streamlit's S3 and GCS tutorials, through the real CLI and `.so`:
//! the S3 ones read a CSV and a Parquet file from a real S3 server (moto, with IAM checks,
//! so a read only works when the credentials under their fsspec names reached the
//! signer); the GCS tutorial's section reads through GCS's XML API (moto again, which does
//! not check Google's tokens: see `servers::gcs_xml`); adlfs's sections read from Azurite,
//! which checks Shared Key and SAS signatures; an fsspec name and the connector's own name
//! for one setting, given different values, are refused naming both. Credentials are the
//! servers' (random per run), a fresh RSA key, or marker strings, and none of them appears
//! in any output.

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
            &["--type", FILES_CONNECTION, "-x", &option],
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
            "-x",
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
fn the_gcs_tutorial_reads_myfile_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let myfile = dir.path().join("myfile.csv");
    std::fs::write(&myfile, MYFILE_CSV).expect("write");
    // The tutorial's bucket is `streamlit-bucket`; object_store writes a GCS bucket
    // percent-encoded in the path (`streamlit%2Dbucket`), which GCS decodes and moto does
    // not, so the bucket here has no hyphen.
    let bucket = "streamlitbucket";
    let server = servers::gcs_xml(bucket, &[("myfile.csv", &myfile)]);
    let target = format!("{bucket}/myfile.csv");
    let private_key = servers::rsa_key();
    let key_id = "S3cr3t-tutorial-key-id-93ab";
    let pem_line = private_key
        .lines()
        .nth(1)
        .expect("a PEM body line")
        .to_owned();
    let secrets = [key_id, pem_line.as_str()];

    // From streamlit/docs, content/develop/tutorials/databases/gcs.md: the key file's
    // fields as the tutorial copies them, with a real key (object_store signs a token with
    // it) and its id a marker. One line is added, gcsfs's `endpoint_url`, pointing at the
    // server here; the tutorial's token_uri is never called (object_store signs its own
    // token), and the tutorial's reads go to Google only without that line.
    let tutorial = format!(
        r#"
[connections.gcs]
type = "service_account"
project_id = "xxx"
private_key_id = "{key_id}"
private_key = {private_key:?}
client_email = "xxx@xxx.iam.gserviceaccount.com"
client_id = "xxx"
auth_uri = "https://accounts.google.com/o/oauth2/auth"
token_uri = "https://oauth2.googleapis.com/token"
auth_provider_x509_cert_url = "https://www.googleapis.com/oauth2/v1/certs"
client_x509_cert_url = "xxx"
endpoint_url = "{}"
"#,
        server.url()
    );
    let p = project(&tutorial);
    // `conn = st.connection('gcs', type=FilesConnection)`;
    // `conn.read("streamlit-bucket/myfile.csv", input_format="csv", ttl=600)`. The name
    // alone says files too, as Streamlit infers it.
    for extra in [&["--type", FILES_CONNECTION][..], &[][..]] {
        let mut args = extra.to_vec();
        args.extend(["-x", "format=csv", "--ttl", "10m"]);
        let out = read_csv(&p, "gcs", &target, &args, &secrets);
        assert_eq!(out, MYFILE_CSV, "{extra:?}");
    }
    let listed = cli!(p, ["connections", "list"]);
    assert_no_leak("connections list", &listed, &secrets);
    let listed = listed.ok();
    assert!(
        listed.contains("private_key = \"***\"") && listed.contains("private_key_id = \"***\""),
        "the key is declared secret: {listed}"
    );
    // The name reaches the plugin in a worker process too.
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = \"process\"\n",
            lib("plugboard_files").display().to_string()
        ),
    );
    let out = read_csv(&p, "gcs", &target, &[], &secrets);
    assert_eq!(out, MYFILE_CSV, "isolated");
}

#[test]
fn adlfs_sections_read_from_azurite() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pets(dir.path());
    let (csv, parquet) = (dir.path().join("test.csv"), dir.path().join("test.parquet"));
    let az = servers::azure(
        "container",
        &[("prefix/test.csv", &csv), ("prefix/test.parquet", &parquet)],
    );
    let (endpoint, account, key, sas) = (&az.endpoint, &az.account, &az.key, &az.sas);
    let sig = sas
        .split("sig=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("a SAS token has a sig");
    let secrets = [key.as_str(), sig];
    // adlfs's names, as st-files-connection hands them to `fsspec.filesystem("az", …)`.
    // Azurite's address comes in a connection string (its BlobEndpoint), or as the
    // endpoint in the connector's own (object_store's) name.
    let sections = format!(
        r#"
# The protocol from the name `azure`, a connection string.
[connections.azure]
connection_string = "DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={endpoint};"

# `protocol = "abfs"`, account name and key.
[connections.adls]
protocol = "abfs"
account_name = "{account}"
account_key = "{key}"
azure_storage_endpoint = "{endpoint}"

# An `az://` root, a SAS token.
[connections.blobs]
root = "az://container/prefix"
account_name = "{account}"
sas_token = "{sas}"
azure_storage_endpoint = "{endpoint}"

# Azure credentials alone, under a name that says nothing: they say Azure.
[connections.warehouse]
type = "{FILES_CONNECTION}"
account_name = "{account}"
account_key = "{key}"
azure_storage_endpoint = "{endpoint}"
"#
    );
    let p = project(&sections);
    for (name, target) in [
        ("azure", "container/prefix/test.csv"),
        ("azure", "az://container/prefix/test.parquet"),
        ("adls", "abfs://container/prefix/test.csv"),
        ("adls", "container/prefix/test.parquet"),
        ("blobs", "test.csv"),
        ("blobs", "test.parquet"),
        ("warehouse", "container/prefix/test.csv"),
    ] {
        let out = read_csv(&p, name, target, &["--type", FILES_CONNECTION], &secrets);
        assert_eq!(out, PETS_CSV, "{name} {target}");
    }
    let listed = cli!(p, ["connections", "list"]);
    assert_no_leak("connections list", &listed, &secrets);
    let listed = listed.ok();
    for key in ["connection_string", "account_key", "sas_token"] {
        assert!(
            listed.contains(&format!("{key} = \"***\"")),
            "{key} is declared secret: {listed}"
        );
    }
}

#[test]
fn gcs_and_azure_sections_with_bad_credentials_are_refused_in_one_line() {
    let m = "S3cr3t-fsspec-marker";
    let secrets_file = format!(
        r#"
# The tutorial's fields with a marker for a key: refused when the store is set up, before
# any request.
[connections.gcs]
type = "service_account"
project_id = "xxx"
private_key_id = "{m}-kid"
private_key = "-----BEGIN PRIVATE KEY-----\n{m}-pk\n-----END PRIVATE KEY-----\n"
client_email = "xxx@xxx.iam.gserviceaccount.com"
client_id = "xxx"

# A connection string that is not one.
[connections.azure]
connection_string = "AccountName=a;{m}-cs"

# A key that is not base64.
[connections.abfs]
account_name = "a"
account_key = "{m}-not base64!"
endpoint_url = "http://127.0.0.1:9/a"

# Both clouds' credentials.
[connections.warehouse]
type = "{FILES_CONNECTION}"
account_name = "myaccount"
account_key = "{m}-ak2"
private_key = "{m}-pk2"
"#
    );
    let p = project(&secrets_file);
    for (name, says) in [
        ("gcs", "the service-account fields"),
        ("azure", "connection_string: part 2 is not Name=value"),
        ("abfs", "account_key"),
        ("warehouse", "set protocol = \"gcs\" or \"azure\""),
    ] {
        for verbose in [&[][..], &["-vv"][..]] {
            let mut args: Vec<&str> = verbose.to_vec();
            args.extend([
                "read",
                name,
                "bucket/myfile.csv",
                "--type",
                FILES_CONNECTION,
            ]);
            let run = p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[]);
            assert_no_leak(name, &run, &[m]);
            let err = run.fails();
            assert!(
                err.contains(&format!("connection \"{name}\"")) && err.contains(says),
                "{name}: {err}"
            );
            if verbose.is_empty() {
                assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
            }
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
