//! The Google Sheets connector through the real `.so` and the real CLI, against a stand-in
//! for Google on 127.0.0.1 (`plugboard_tests::google`) that checks the JWT assertion's
//! RS256 signature with the test key's public half and refuses what Google refuses.
//! Public sheets by title and gid, a service account's typed reads and read options, token
//! renewal, a wrong key, 403/404/429, writes read back, the tutorials' sections, and no
//! secret (the private key, an access token) in any output.

use std::time::Duration;

use plugboard::ConnectOptions;
use plugboard_tests::google::{self, Book, Sheet, StandIn};
use plugboard_tests::{Project, cli};
use polars::prelude::*;
use serde_json::{Value as Json, json};

const EMAIL: &str = "reader@plugboard-test.iam.gserviceaccount.com";
const PUBLIC_ID: &str = "1PublicTestBook_x";
const PRIVATE_ID: &str = "1PrivateTestBook-y";
/// Shared with another account only: 403.
const FORBIDDEN_ID: &str = "1ForbiddenBook";
const QUOTA_ID: &str = "1OverQuotaBook";

/// Sheets serial numbers: 2024-01-31 and 2024-02-01, and 08:30 on the first.
const JAN_31: f64 = 45_322.0;
const FEB_1: f64 = 45_323.0;
const JAN_31_0830: f64 = 45_322.354_166_666_67;

fn standin(lifetime: Duration) -> StandIn {
    let s = StandIn::start(google::key(0), EMAIL, lifetime);
    s.add(
        PUBLIC_ID,
        Book {
            public: true,
            sheets: vec![
                Sheet::new(
                    0,
                    "Pets",
                    vec![
                        vec![json!("name"), json!("legs"), json!("born"), json!("cute")],
                        vec![json!("cat"), json!(4), json!("2020-05-01"), json!(true)],
                        vec![json!("bird"), json!(2), json!("2021-01-31"), json!(false)],
                        vec![json!("snake"), Json::Null, json!("2019-12-24"), json!(true)],
                    ],
                ),
                Sheet::new(
                    42,
                    "Plants",
                    vec![
                        vec![json!("plant"), json!("height"), json!("code")],
                        vec![json!("fern"), json!(0.5), json!("007")],
                        vec![json!("oak, old"), json!(20), json!("x")],
                    ],
                ),
            ],
            ..Book::default()
        },
    );
    s.add(
        PRIVATE_ID,
        Book {
            shared_with: vec![EMAIL.to_owned()],
            sheets: vec![
                Sheet::new(
                    0,
                    "Orders",
                    vec![
                        vec![
                            json!("id"),
                            json!("item"),
                            json!("price"),
                            json!("paid"),
                            json!("ordered"),
                            json!("shipped_at"),
                            json!("note"),
                            json!("mixed"),
                            json!("blank"),
                        ],
                        vec![
                            json!(1),
                            json!("apple"),
                            json!(1.5),
                            json!(true),
                            json!(JAN_31),
                            json!(JAN_31_0830),
                            json!(""),
                            json!(5),
                        ],
                        vec![
                            json!(2),
                            json!("pear"),
                            json!(2),
                            json!(false),
                            json!(FEB_1),
                            json!(FEB_1),
                            json!("late"),
                            json!("five"),
                        ],
                        vec![
                            json!(3),
                            json!("fig"),
                            Json::Null,
                            json!(true),
                            Json::Null,
                            Json::Null,
                            Json::Null,
                            json!(true),
                        ],
                    ],
                )
                .format_column(4, "DATE")
                .format_column(5, "DATE_TIME"),
                Sheet::new(
                    777,
                    "Notes",
                    vec![
                        vec![json!("k"), json!("v")],
                        vec![json!("a"), json!(1)],
                        vec![json!("b"), json!(2)],
                    ],
                ),
            ],
            ..Book::default()
        },
    );
    s.add(
        FORBIDDEN_ID,
        Book {
            shared_with: vec!["someone-else@example.iam.gserviceaccount.com".to_owned()],
            sheets: vec![Sheet::new(0, "Sheet1", vec![vec![json!("x")]])],
            ..Book::default()
        },
    );
    s.add(
        QUOTA_ID,
        Book {
            shared_with: vec![EMAIL.to_owned()],
            over_quota: true,
            sheets: vec![Sheet::new(0, "Sheet1", vec![vec![json!("x")]])],
            ..Book::default()
        },
    );
    s
}

/// A service-account section, its fields as Streamlit's private-gsheet tutorial writes
/// them (the key file's), pointed at the stand-in.
fn account(name: &str, s: &StandIn, key: &google::Key, spreadsheet: &str) -> String {
    format!(
        r#"
[connections.{name}]
spreadsheet = "https://docs.google.com/spreadsheets/d/{spreadsheet}/edit#gid=0"
type = "service_account"
project_id = "plugboard-test"
private_key_id = "0123456789abcdef"
private_key = {pem:?}
client_email = "{EMAIL}"
client_id = "123456789012345678901"
auth_uri = "https://accounts.google.com/o/oauth2/auth"
token_uri = "{token}"
auth_provider_x509_cert_url = "https://www.googleapis.com/oauth2/v1/certs"
client_x509_cert_url = "https://www.googleapis.com/robot/v1/metadata/x509/reader%40plugboard-test.iam.gserviceaccount.com"
sheets_base_url = "{base}"
"#,
        pem = key.pem,
        token = s.token_uri(),
        base = s.url(),
    )
}

fn public_section(name: &str, s: &StandIn) -> String {
    format!(
        r#"
[connections.{name}]
type = "gsheets"
spreadsheet = "https://docs.google.com/spreadsheets/d/{PUBLIC_ID}/edit#gid=0"
export_base_url = "{}"
"#,
        s.url()
    )
}

fn project(secrets: &str) -> Project {
    Project::new(&["plugboard_gsheets"], secrets)
}

fn strings(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    let c = df.column(col).unwrap_or_else(|e| panic!("{col}: {e}"));
    let s = c.str().unwrap_or_else(|e| panic!("{col} is not text: {e}"));
    s.iter().map(|v| v.map(str::to_owned)).collect()
}

fn dtype(df: &DataFrame, col: &str) -> DataType {
    df.column(col)
        .unwrap_or_else(|e| panic!("{col}: {e}"))
        .dtype()
        .clone()
}

#[test]
fn a_public_sheet_reads_by_title_and_by_gid_through_the_cli() {
    let s = standin(Duration::from_secs(3600));
    let p = project(&public_section("public", &s));
    // No worksheet: the URL's #gid=0.
    let first = cli!(p, ["read", "public", "", "--format", "csv"]).ok();
    assert_eq!(
        first,
        "name,legs,born,cute\ncat,4,2020-05-01,true\nbird,2,2021-01-31,false\nsnake,,2019-12-24,true\n"
    );
    let by_title = cli!(p, ["read", "public", "Plants", "--format", "csv"]).ok();
    let by_gid = cli!(p, ["read", "public", "42", "--format", "csv"]).ok();
    let by_option = cli!(
        p,
        [
            "read",
            "public",
            "",
            "-x",
            "worksheet=42",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(
        by_title,
        "plant,height,code\nfern,0.5,007\n\"oak, old\",20.0,x\n"
    );
    assert_eq!(by_gid, by_title);
    assert_eq!(by_option, by_title);
    let requests = s.requests();
    assert!(
        requests
            .iter()
            .any(|(r, _)| r.contains("/gviz/tq?") && r.contains("sheet=Plants")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|(r, _)| r.contains("/export?format=csv&gid=42")),
        "{requests:?}"
    );
    assert!(
        requests.iter().all(|(_, bearer)| !bearer),
        "a public read sends no token"
    );

    // Typed from the CSV's text: numbers, ISO dates, TRUE/FALSE; "007" stays text.
    let host = p.host();
    let conn = host.connection("public").expect("connect");
    let pets = conn.read("Pets").fetch().expect("read");
    assert_eq!(dtype(&pets, "legs"), DataType::Int64);
    assert_eq!(dtype(&pets, "born"), DataType::Date);
    assert_eq!(dtype(&pets, "cute"), DataType::Boolean);
    assert_eq!(pets.column("legs").expect("legs").null_count(), 1);
    let plants = conn.read("Plants").fetch().expect("read");
    assert_eq!(dtype(&plants, "height"), DataType::Float64);
    assert_eq!(
        strings(&plants, "code"),
        [Some("007".to_owned()), Some("x".to_owned())]
    );
}

#[test]
fn a_public_sheet_that_is_not_public_or_missing_fails_in_one_line() {
    let s = standin(Duration::from_secs(3600));
    let secrets = format!(
        "{}\n[connections.closed]\ntype = \"gsheets\"\nspreadsheet = \"{PRIVATE_ID}\"\nexport_base_url = \"{url}\"\n\
         [connections.gone]\ntype = \"gsheets\"\nspreadsheet = \"1NoSuchBook\"\nexport_base_url = \"{url}\"\n",
        public_section("public", &s),
        url = s.url()
    );
    let p = project(&secrets);
    let closed = cli!(p, ["read", "closed", ""]).fails();
    assert!(closed.contains("auth error"), "{closed}");
    assert!(
        closed.contains(PRIVATE_ID) && closed.contains("Anyone with the link"),
        "{closed}"
    );
    let gone = cli!(p, ["read", "gone", ""]).fails();
    assert!(
        gone.contains("query error") && gone.contains("1NoSuchBook"),
        "{gone}"
    );
    assert!(gone.contains("not found"), "{gone}");
    let write = cli!(p, ["exec", "public", "clear Pets"]).fails();
    assert!(
        write.contains("unsupported error") && write.contains("service account"),
        "{write}"
    );
}

#[test]
fn a_service_account_reads_typed_values_by_title_and_gid() {
    let s = standin(Duration::from_secs(3600));
    let p = project(&account("gsheets", &s, google::key(0), PRIVATE_ID));
    let host = p.host();
    let conn = host.connection("gsheets").expect("connect");
    let df = conn.read("").fetch().expect("read the first worksheet");
    assert_eq!(df.height(), 3);
    assert_eq!(dtype(&df, "id"), DataType::Int64);
    assert_eq!(dtype(&df, "item"), DataType::String);
    assert_eq!(dtype(&df, "price"), DataType::Float64);
    assert_eq!(dtype(&df, "paid"), DataType::Boolean);
    assert_eq!(dtype(&df, "ordered"), DataType::Date);
    assert!(
        matches!(dtype(&df, "shipped_at"), DataType::Datetime(_, None)),
        "{:?}",
        dtype(&df, "shipped_at")
    );
    // Empty cells are NULL; a column of numbers, text and a boolean is text.
    assert_eq!(strings(&df, "note"), [None, Some("late".to_owned()), None]);
    assert_eq!(
        strings(&df, "mixed"),
        [
            Some("5".to_owned()),
            Some("five".to_owned()),
            Some("TRUE".to_owned())
        ]
    );
    assert_eq!(df.column("blank").expect("blank").null_count(), 3);
    assert_eq!(df.column("price").expect("price").null_count(), 1);
    conn.read("Notes").fetch().expect("another worksheet");
    assert_eq!(s.token_requests(), 1, "the token is kept while it is valid");
    let csv = |args: &[&str]| {
        let mut all = vec!["read", "gsheets"];
        all.extend_from_slice(args);
        all.extend(["--format", "csv"]);
        p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &all, &[])
            .ok()
    };
    let orders = csv(&["Orders", "-x", "usecols=id,ordered,shipped_at"]);
    assert_eq!(
        orders,
        "id,ordered,shipped_at\n1,2024-01-31,2024-01-31T08:30:00.000\n2,2024-02-01,2024-02-01T00:00:00.000\n3,,\n"
    );
    let notes = csv(&["Notes"]);
    assert_eq!(notes, "k,v\na,1\nb,2\n");
    assert_eq!(csv(&["777"]), notes, "by gid");
    assert_eq!(
        csv(&["", "-x", "worksheet=777"]),
        notes,
        "by gid, as an option"
    );
    // gsheets-connection's read options, and a range.
    assert_eq!(
        csv(&["Orders", "-x", "usecols=0,1", "-x", "nrows=1"]),
        "id,item\n1,apple\n"
    );
    assert_eq!(
        csv(&["Notes", "-x", "skiprows=1", "-x", "header=0"]),
        "a,1\nb,2\n"
    );
    assert_eq!(
        csv(&["Notes", "-x", "header=false"]),
        "column_1,column_2\nk,v\na,1\nb,2\n"
    );
    assert_eq!(
        csv(&["Notes!A2:B3", "-x", "header=none"]),
        "column_1,column_2\na,1\nb,2\n"
    );
    assert_eq!(
        csv(&["Orders", "--limit", "1", "-x", "usecols=item"]),
        "item\napple\n"
    );

    // The section's `worksheet` is the default: a title, or a gid.
    assert_eq!(csv(&["", "--set", "worksheet=777"]), notes);
    assert_eq!(csv(&["", "--set", "worksheet=Notes"]), notes);
    let missing = cli!(p, ["read", "gsheets", "Nope"]).fails();
    assert!(
        missing.contains("no worksheet \"Nope\"") && missing.contains("\"Notes\" (gid 777)"),
        "{missing}"
    );
    let option = cli!(p, ["read", "gsheets", "Notes", "-x", "nrow=1"]).fails();
    assert!(option.contains("unknown read option `nrow`"), "{option}");
}

#[test]
fn an_expired_token_is_renewed() {
    let s = standin(Duration::from_secs(2));
    let p = project(&account("gsheets", &s, google::key(0), PRIVATE_ID));
    let host = p.host();
    let conn = host.connection("gsheets").expect("connect");
    conn.read("Notes").fetch().expect("first read");
    conn.read("Orders")
        .fetch()
        .expect("second read, same token");
    assert_eq!(s.token_requests(), 1);
    std::thread::sleep(Duration::from_millis(2500));
    conn.read("Notes")
        .refresh(true)
        .fetch()
        .expect("a read after the token expired");
    assert_eq!(s.token_requests(), 2, "the expired token was renewed once");
    assert_eq!(s.refused_assertions(), 0);
    // A token the API refuses (revoked) is dropped, and the call made once more with a new one.
    s.revoke_tokens();
    conn.read("Notes")
        .refresh(true)
        .fetch()
        .expect("a read after the token was revoked");
    assert_eq!(s.token_requests(), 3, "one new token for the refused one");
    // Every API request carried a token.
    assert!(
        s.requests()
            .iter()
            .filter(|(r, _)| r.starts_with("GET /v4/"))
            .all(|(_, bearer)| *bearer)
    );
}

#[test]
fn the_stand_in_refuses_an_expired_or_foreign_assertion() {
    let s = standin(Duration::from_secs(3600));
    let claims = |iat: u64, exp: u64| json!({"iss": EMAIL, "scope": google::SCOPE, "aud": s.token_uri(), "iat": iat, "exp": exp});
    let now = google::now();
    let (ok, body) = s.exchange(&google::sign(google::key(0), &claims(now, now + 600)));
    assert_eq!(ok, 200, "{body}");
    let (expired, body) = s.exchange(&google::sign(
        google::key(0),
        &claims(now - 7200, now - 3600),
    ));
    assert_eq!(expired, 400);
    assert!(body.contains("invalid_grant"), "{body}");
    let (foreign, body) = s.exchange(&google::sign(google::key(1), &claims(now, now + 600)));
    assert_eq!(foreign, 400);
    assert!(body.contains("Invalid JWT Signature"), "{body}");
}

#[test]
fn a_wrong_key_is_an_auth_error() {
    let s = standin(Duration::from_secs(3600));
    let p = project(&account("wrongkey", &s, google::key(1), PRIVATE_ID));
    let err = cli!(
        p,
        ["read", "wrongkey", "Notes", "--type", "GSheetsConnection"]
    )
    .fails();
    assert!(err.contains("auth error"), "{err}");
    assert!(
        err.contains(EMAIL) && err.contains("Invalid JWT Signature"),
        "{err}"
    );
    assert!(err.contains(&format!("spreadsheet {PRIVATE_ID}")), "{err}");
    assert_eq!(s.refused_assertions(), 1, "an auth error is not retried");
    assert!(
        s.requests().iter().all(|(r, _)| !r.contains("/v4/")),
        "no API call without a token"
    );
    // Through the library, the kind is data.
    let host = p.host();
    let e = host
        .connection_with("wrongkey", ConnectOptions::new().kind("gsheets"))
        .and_then(|c| c.read("Notes").fetch())
        .expect_err("a wrong key");
    assert_eq!(e.plugin_kind(), Some(plugboard_api::ErrorKind::AUTH), "{e}");
}

#[test]
fn forbidden_missing_and_over_quota_spreadsheets_fail_in_one_line() {
    let s = standin(Duration::from_secs(3600));
    let p = project(&account("gsheets", &s, google::key(0), PRIVATE_ID));
    let forbidden = cli!(
        p,
        [
            "read",
            "gsheets",
            "",
            "-x",
            &format!("spreadsheet={FORBIDDEN_ID}")
        ]
    )
    .fails();
    assert!(forbidden.contains("auth error"), "{forbidden}");
    assert!(
        forbidden.contains(FORBIDDEN_ID) && forbidden.contains(EMAIL),
        "{forbidden}"
    );
    assert!(forbidden.contains("403 PERMISSION_DENIED"), "{forbidden}");
    let missing = cli!(p, ["read", "gsheets", "", "-x", "spreadsheet=1NoSuchBook"]).fails();
    assert!(missing.contains("query error"), "{missing}");
    assert!(
        missing.contains("1NoSuchBook") && missing.contains(EMAIL),
        "{missing}"
    );
    assert!(missing.contains("404 NOT_FOUND"), "{missing}");
    let quota = cli!(
        p,
        [
            "read",
            "gsheets",
            "",
            "-x",
            &format!("spreadsheet={QUOTA_ID}")
        ]
    )
    .fails();
    assert!(quota.contains("429 RESOURCE_EXHAUSTED"), "{quota}");
    assert!(quota.contains(QUOTA_ID) && quota.contains(EMAIL), "{quota}");
    assert!(
        quota.contains("3 attempts"),
        "retried as retryable: {quota}"
    );
}

#[test]
fn a_write_reads_back() {
    let s = standin(Duration::from_secs(3600));
    let p = project(&account("gsheets", &s, google::key(0), PRIVATE_ID));
    let data = "name,n,ok,when\nx,1,TRUE,2024-01-31\ny,2.5,FALSE,\n";
    let out = cli!(
        p,
        [
            "exec",
            "gsheets",
            "update Notes",
            "-p",
            &format!("data={data}")
        ]
    )
    .ok();
    assert_eq!(out.trim(), "2 rows affected");
    assert_eq!(
        s.cells(PRIVATE_ID, "Notes").expect("Notes"),
        vec![
            vec![json!("name"), json!("n"), json!("ok"), json!("when")],
            vec![json!("x"), json!(1), json!(true), json!("2024-01-31")],
            vec![json!("y"), json!(2.5), json!(false), Json::Null],
        ]
    );
    let back = cli!(p, ["read", "gsheets", "Notes", "--format", "csv"]).ok();
    assert_eq!(
        back,
        "name,n,ok,when\nx,1.0,true,2024-01-31\ny,2.5,false,\n"
    );

    // create: a new worksheet (batchUpdate addSheet), from JSON rows as `--format json` prints.
    let rows = r#"[{"city":"Oslo","pop":709000},{"city":"Bergen","pop":null}]"#;
    let out = cli!(
        p,
        [
            "exec",
            "gsheets",
            "create \"New cities\"",
            "-p",
            &format!("data={rows}")
        ]
    )
    .ok();
    assert_eq!(out.trim(), "2 rows affected");
    assert!(s.titles(PRIVATE_ID).contains(&"New cities".to_owned()));
    let back = cli!(p, ["read", "gsheets", "New cities", "--format", "csv"]).ok();
    assert_eq!(back, "city,pop\nOslo,709000\nBergen,\n");
    let again = cli!(p, ["exec", "gsheets", "create \"New cities\""]).fails();
    assert!(
        again.contains("already exists") && again.contains("statement 1"),
        "{again}"
    );

    // clear, and a write through the library drops the connection's cached reads.
    let host = p.host();
    let conn = host.connection("gsheets").expect("connect");
    assert_eq!(conn.read("New cities").fetch().expect("read").height(), 2);
    conn.execute("clear \"New cities\"").run().expect("clear");
    assert_eq!(s.cells(PRIVATE_ID, "New cities"), Some(vec![]));
    let after = conn.read("New cities").fetch().expect("read after clear");
    assert_eq!(after.height(), 0);

    let bad = cli!(p, ["exec", "gsheets", "drop Notes"]).fails();
    assert!(
        bad.contains("statement 1") && bad.contains("update <worksheet>"),
        "{bad}"
    );
    let no_data = cli!(p, ["exec", "gsheets", "update Notes"]).fails();
    assert!(no_data.contains(":data"), "{no_data}");
}

#[test]
fn no_secret_reaches_any_output() {
    let s = standin(Duration::from_secs(3600));
    let key = google::key(0);
    let secrets = format!(
        "{}{}",
        account("gsheets", &s, key, PRIVATE_ID),
        account("denied", &s, key, FORBIDDEN_ID)
    );
    let p = project(&secrets);
    let mut outputs = Vec::new();
    for args in [
        &["-vv", "read", "gsheets", "Orders"][..],
        &["-vv", "read", "gsheets", "Nope"],
        &["-vv", "read", "denied", "", "--type", "gsheets"],
        &[
            "-vv",
            "exec",
            "gsheets",
            "update Notes",
            "-p",
            "data=a\n1\n",
        ],
        &["connections", "list"],
        &["-vv", "connections", "list"],
    ] {
        let run = p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), args, &[]);
        outputs.push(format!("{}\n{}", run.stdout(), run.stderr()));
    }
    let (_, log) = plugboard_tests::capture_logs(|| {
        let host = p.host();
        let conn = host.connection("gsheets").expect("connect");
        conn.read("Orders").fetch().expect("read");
        let e = conn.read("Nope").fetch().expect_err("no such worksheet");
        outputs.push(format!("{e} {e:?}"));
    });
    outputs.push(log);
    let all = outputs.join("\n");
    assert!(
        all.contains(EMAIL),
        "the outputs are the ones expected: {all}"
    );
    let body: Vec<&str> = key
        .pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for line in &body {
        assert!(!all.contains(line), "a line of the private key leaked");
    }
    assert!(
        !all.contains("0123456789abcdef"),
        "the private key id leaked"
    );
    let assertions = s.assertions();
    assert!(!assertions.is_empty());
    for a in assertions {
        let signature = a.rsplit('.').next().unwrap_or(&a);
        assert!(!all.contains(signature), "a signed assertion leaked");
    }
    let tokens = s.tokens();
    assert!(!tokens.is_empty());
    for t in tokens {
        assert!(!all.contains(&t), "an access token leaked");
        assert!(!all.contains(&t["ya29.".len()..]));
    }
}

#[test]
fn the_streamlit_tutorials_sections_read_through_the_cli() {
    let s = standin(Duration::from_secs(3600));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("streamlit");
    // The tutorials' spreadsheet id, `xxxxxxx`: one the stand-in serves.
    s.add(
        "xxxxxxx",
        Book {
            public: true,
            shared_with: vec!["xxx@xxx.iam.gserviceaccount.com".to_owned()],
            sheets: vec![Sheet::new(
                0,
                "Sheet1",
                vec![
                    vec![json!("name"), json!("pet")],
                    vec![json!("Mary"), json!("dog")],
                    vec![json!("John"), json!("cat")],
                ],
            )],
            ..Book::default()
        },
    );
    let expected = "name,pet\nMary,dog\nJohn,cat\n";

    // "Connect Streamlit to a public Google Sheet": the section as written; Google's
    // address replaced by the stand-in's.
    let public = std::fs::read_to_string(dir.join("gsheets-public.toml")).expect("corpus");
    let p = project(&public);
    let base = format!("export_base_url={}", s.url());
    let out = cli!(
        p,
        ["read", "gsheets", "", "--set", &base, "--format", "csv"]
    )
    .ok();
    assert_eq!(out, expected);

    // "Connect Streamlit to a private Google Sheet": the key file's fields as written, the
    // marker key replaced by the test key, and the stand-in for Google's endpoints. The
    // stand-in only takes assertions from the tutorial's account.
    let s2 = StandIn::start(
        google::key(0),
        "xxx@xxx.iam.gserviceaccount.com",
        Duration::from_secs(3600),
    );
    s2.add(
        "xxxxxxx",
        Book {
            shared_with: vec!["xxx@xxx.iam.gserviceaccount.com".to_owned()],
            sheets: vec![Sheet::new(
                0,
                "Sheet1",
                vec![
                    vec![json!("name"), json!("pet")],
                    vec![json!("Mary"), json!("dog")],
                    vec![json!("John"), json!("cat")],
                ],
            )],
            ..Book::default()
        },
    );
    let private = std::fs::read_to_string(dir.join("gsheets-private.toml")).expect("corpus");
    let marker = "\"-----BEGIN PRIVATE KEY-----\\nMARKER-KEY-10\\n-----END PRIVATE KEY-----\\n\"";
    assert!(private.contains(marker), "the corpus file changed");
    let private = private.replace(marker, &format!("{:?}", google::key(0).pem));
    let p = project(&private);
    let token_uri = format!("token_uri={}", s2.token_uri());
    let sheets = format!("sheets_base_url={}", s2.url());
    let out = cli!(
        p,
        [
            "read", "gsheets", "", "--set", &token_uri, "--set", &sheets, "--format", "csv"
        ]
    )
    .ok();
    assert_eq!(out, expected);
    assert_eq!(s2.token_requests(), 1);
    // As the tutorial's app asks for it: st.connection("gsheets", type=GSheetsConnection).
    let out = cli!(
        p,
        [
            "read",
            "gsheets",
            "Sheet1",
            "--type",
            "GSheetsConnection",
            "--set",
            &token_uri,
            "--set",
            &sheets,
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, expected);
}

#[test]
fn the_built_library_conforms_against_the_stand_in() {
    use plugboard_api::conformance::{Case, run};
    use plugboard_api::ffi::Module;

    let s = standin(Duration::from_secs(3600));
    let case: Case = serde_json::from_value(json!({
        "config": {
            "type": "service_account",
            "spreadsheet": PRIVATE_ID,
            "client_email": EMAIL,
            "private_key": google::key(0).pem,
            "token_uri": s.token_uri(),
            "sheets_base_url": s.url(),
        },
        "rows": {"query": "Orders"},
        "empty": {"query": "Orders", "options": {"nrows": 0}},
        "failing": {"query": "No such worksheet"},
        "bad_config": [{"spreadsheet": PUBLIC_ID, "colour": "red"}, "colour"],
    }))
    .expect("a conformance case");
    let report = run(
        Module::load(&plugboard_tests::lib("plugboard_gsheets")).expect("load"),
        &case,
    );
    assert!(report.passed(), "{report}");
}
