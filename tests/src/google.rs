//! A stand-in for Google on 127.0.0.1, for the gsheets connector: the OAuth 2.0 token
//! endpoint, the Sheets API v4 calls the connector makes, and public sheets' CSV exports.
//!
//! It is strict where the connector could be wrong: the token endpoint checks the JWT
//! assertion's RS256 signature against the test key's public half (ring), its issuer,
//! audience, scope and times, and refuses a wrong or expired one as Google does
//! (`invalid_grant`); the API refuses a request without a live bearer token (401), a
//! spreadsheet not shared with the token's account (403) and an unknown one (404). Tokens
//! live as long as [`StandIn::start`] says, so that renewal can be tested, and every token
//! request is counted.
//!
//! Test keys are made at test time with `openssl genpkey` (never committed).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value as Json, json};

/// The scope the connector must ask for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets";

/// An RSA test key: its PKCS#8 PEM and its public half (DER `RSAPublicKey`).
pub struct Key {
    pub pem: String,
    pub public: Vec<u8>,
}

/// The test keys, made once per test process: `key(0)` and a second, `key(1)`, that the
/// stand-in does not know.
pub fn key(n: usize) -> &'static Key {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        (0..2)
            .map(|i| make_key(&dir.path().join(format!("key{i}.pem"))))
            .collect()
    })[n]
}

fn make_key(path: &Path) -> Key {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(path)
        .output()
        .expect("run openssl genpkey (the gsheets tests need the openssl CLI)");
    assert!(
        out.status.success(),
        "openssl genpkey failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(path).expect("read the key");
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = STANDARD.decode(b64).expect("PEM body");
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("a PKCS#8 RSA key");
    Key {
        pem,
        public: pair.public().as_ref().to_vec(),
    }
}

/// A worksheet: its gid, title, cells (JSON: numbers, booleans, strings; `null` empty) and
/// the number format type of each cell (`DATE`, `DATE_TIME`, `TIME`, or empty).
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    pub gid: i64,
    pub title: String,
    pub cells: Vec<Vec<Json>>,
    pub formats: Vec<Vec<String>>,
}

impl Sheet {
    pub fn new(gid: i64, title: &str, cells: Vec<Vec<Json>>) -> Self {
        Self {
            gid,
            title: title.to_owned(),
            cells,
            formats: Vec::new(),
        }
    }

    /// Gives every cell of column `col` below the header the number format `kind`.
    pub fn format_column(mut self, col: usize, kind: &str) -> Self {
        for r in 1..self.cells.len() {
            while self.formats.len() <= r {
                self.formats.push(Vec::new());
            }
            while self.formats[r].len() <= col {
                self.formats[r].push(String::new());
            }
            self.formats[r][col] = kind.to_owned();
        }
        self
    }

    fn format(&self, r: usize, c: usize) -> &str {
        self.formats
            .get(r)
            .and_then(|row| row.get(c))
            .map_or("", String::as_str)
    }
}

/// A spreadsheet: its worksheets, who may read it, and how it misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Book {
    pub sheets: Vec<Sheet>,
    /// "Anyone with the link can view": the CSV export answers without signing in.
    pub public: bool,
    /// Service accounts it is shared with.
    pub shared_with: Vec<String>,
    /// Every API call on it answers 429 (quota exceeded).
    pub over_quota: bool,
}

#[derive(Default)]
struct State {
    public_key: Vec<u8>,
    email: String,
    token_uri: String,
    token_lifetime: Duration,
    tokens: HashMap<String, (String, Instant)>,
    token_requests: usize,
    refused_assertions: usize,
    /// Every assertion received (credentials for an hour: none may be printed).
    assertions: Vec<String>,
    books: HashMap<String, Book>,
    /// `METHOD /path?query` of every request, and whether it carried a bearer token.
    requests: Vec<(String, bool)>,
    next_token: u64,
}

/// The stand-in server; stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    /// Starts on a free port of 127.0.0.1, trusting `key`'s public half for assertions
    /// signed by `email`, and issuing tokens that live `token_lifetime`.
    pub fn start(key: &Key, email: &str, token_lifetime: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            public_key: key.public.clone(),
            email: email.to_owned(),
            token_uri: format!("http://{addr}/token"),
            token_lifetime,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, halt) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let st = Arc::clone(&st);
                std::thread::spawn(move || {
                    let _ = handle(stream, &st);
                });
            }
        });
        Self { addr, state, stop }
    }

    /// The base URL (`http://127.0.0.1:<port>`): `sheets_base_url` and `export_base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint: `token_uri`.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.url())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, id: &str, book: Book) {
        self.state().books.insert(id.to_owned(), book);
    }

    /// How many times the token endpoint was asked (granted or not).
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// Forgets every access token issued so far, as a revoked token is: the API answers
    /// 401 to them.
    pub fn revoke_tokens(&self) {
        self.state()
            .tokens
            .values_mut()
            .for_each(|(_, until)| *until = Instant::now());
    }

    /// Every JWT assertion the token endpoint received.
    pub fn assertions(&self) -> Vec<String> {
        self.state().assertions.clone()
    }

    /// How many assertions it refused.
    pub fn refused_assertions(&self) -> usize {
        self.state().refused_assertions
    }

    /// Every access token issued.
    pub fn tokens(&self) -> Vec<String> {
        self.state().tokens.keys().cloned().collect()
    }

    /// The requests so far: `METHOD /path?query`, and whether each carried a bearer token.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.state().requests.clone()
    }

    /// A worksheet's cells as stored now.
    pub fn cells(&self, id: &str, title: &str) -> Option<Vec<Vec<Json>>> {
        let st = self.state();
        let sheet = st.books.get(id)?.sheets.iter().find(|s| s.title == title)?;
        Some(sheet.cells.clone())
    }

    /// The titles of a spreadsheet's worksheets.
    pub fn titles(&self, id: &str) -> Vec<String> {
        self.state()
            .books
            .get(id)
            .map(|b| b.sheets.iter().map(|s| s.title.clone()).collect())
            .unwrap_or_default()
    }

    /// POSTs an assertion to the token endpoint; returns the status and body.
    pub fn exchange(&self, assertion: &str) -> (u16, String) {
        let body = format!(
            "grant_type={}&assertion={assertion}",
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
        let mut s = TcpStream::connect(self.addr).expect("connect to the stand-in");
        write!(
            s,
            "POST /token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// An RS256 JWT over `claims`, signed with `key` (for tests of the stand-in itself).
pub fn sign(key: &Key, claims: &Json) -> String {
    let b64: String = key
        .pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(b64).expect("PEM body");
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("key");
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    location: Option<String>,
}

fn answer(status: u16, body: Json) -> Answer {
    Answer {
        status,
        content_type: "application/json; charset=UTF-8",
        body: body.to_string(),
        location: None,
    }
}

fn api_error(status: u16, code: &str, message: &str) -> Answer {
    answer(
        status,
        json!({"error": {"code": status, "message": message, "status": code}}),
    )
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let bearer = headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned);
    let a = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.requests
            .push((format!("{method} {target}"), bearer.is_some()));
        route(&mut st, &method, &target, bearer.as_deref(), &body)
    };
    let reason = match a.status {
        200 => "OK",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Other",
    };
    let mut out = stream;
    let location = a
        .location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    write!(
        out,
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{location}Connection: close\r\n\r\n",
        a.status,
        a.content_type,
        a.body.len()
    )?;
    out.write_all(a.body.as_bytes())?;
    out.flush()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&b[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn route(st: &mut State, method: &str, target: &str, bearer: Option<&str>, body: &str) -> Answer {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let q = query(q);
    if method == "POST" && path == "/token" {
        return token(st, body);
    }
    if method == "GET" && path == "/accounts/ServiceLogin" {
        return Answer {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: "<html><body>Sign in - Google Accounts</body></html>".to_owned(),
            location: None,
        };
    }
    if let Some(rest) = path.strip_prefix("/spreadsheets/d/") {
        return public(st, rest, &q);
    }
    if let Some(rest) = path.strip_prefix("/csv/") {
        // Where the export redirects to, as docs.google.com sends to googleusercontent.com.
        let book = st.books.get(rest);
        let sheet = book.and_then(|b| match q.get("gid") {
            Some(g) => b.sheets.iter().find(|s| s.gid.to_string() == *g),
            None => b.sheets.first(),
        });
        return match sheet {
            Some(s) => csv(s),
            None => not_found_html(),
        };
    }
    let Some(rest) = path.strip_prefix("/v4/spreadsheets/") else {
        return api_error(404, "NOT_FOUND", "no such endpoint");
    };
    let email = match bearer.and_then(|t| st.tokens.get(t)) {
        Some((email, until)) if Instant::now() < *until => email.clone(),
        _ => {
            return api_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            );
        }
    };
    // `<id>`, `<id>:batchUpdate`, `<id>/values/<range>`, `<id>/values/<range>:clear`.
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let (id, batch) = match id.strip_suffix(":batchUpdate") {
        Some(id) => (id, true),
        None => (id, false),
    };
    let id = decode(id);
    let Some(book) = st.books.get_mut(&id) else {
        return api_error(404, "NOT_FOUND", "Requested entity was not found.");
    };
    if !book.shared_with.contains(&email) {
        return api_error(
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        );
    }
    if book.over_quota {
        return api_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user'",
        );
    }
    if batch && method == "POST" {
        return add_sheet(book, body);
    }
    if tail.is_empty() && method == "GET" {
        if let Some(range) = q.get("ranges") {
            return formats(book, range, &q);
        }
        if q.get("fields").map(String::as_str) != Some("sheets.properties(sheetId,title,index)") {
            return api_error(400, "INVALID_ARGUMENT", "unexpected fields");
        }
        let sheets: Vec<Json> = book
            .sheets
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"properties": {"sheetId": s.gid, "title": s.title, "index": i}}))
            .collect();
        return answer(200, json!({"sheets": sheets}));
    }
    let Some(range) = tail.strip_prefix("values/") else {
        return api_error(404, "NOT_FOUND", "no such endpoint");
    };
    let (range, clear) = match range.strip_suffix(":clear") {
        Some(r) => (r, true),
        None => (range, false),
    };
    let range = decode(range);
    let Some((title, bounds)) = parse_range(&range) else {
        return api_error(
            400,
            "INVALID_ARGUMENT",
            &format!("Unable to parse range: {range}"),
        );
    };
    let Some(sheet) = book.sheets.iter_mut().find(|s| s.title == title) else {
        return api_error(
            400,
            "INVALID_ARGUMENT",
            &format!("Unable to parse range: {range}"),
        );
    };
    match (method, clear) {
        ("POST", true) => {
            sheet.cells.clear();
            sheet.formats.clear();
            answer(200, json!({"spreadsheetId": id, "clearedRange": range}))
        }
        ("GET", false) => {
            if q.get("dateTimeRenderOption").map(String::as_str) != Some("SERIAL_NUMBER")
                || !matches!(
                    q.get("valueRenderOption").map(String::as_str),
                    Some("UNFORMATTED_VALUE" | "FORMULA")
                )
            {
                return api_error(400, "INVALID_ARGUMENT", "unexpected render options");
            }
            let rows = window(&sheet.cells, bounds, |v| v.clone());
            let rows: Vec<Json> = rows
                .into_iter()
                .map(|r| {
                    Json::Array(
                        r.into_iter()
                            .map(|v| if v.is_null() { json!("") } else { v })
                            .collect(),
                    )
                })
                .collect();
            answer(
                200,
                json!({"range": range, "majorDimension": "ROWS", "values": rows}),
            )
        }
        ("PUT", false) => {
            let Ok(req) = serde_json::from_str::<Json>(body) else {
                return api_error(400, "INVALID_ARGUMENT", "body is not JSON");
            };
            if !matches!(
                q.get("valueInputOption").map(String::as_str),
                Some("RAW" | "USER_ENTERED")
            ) {
                return api_error(400, "INVALID_ARGUMENT", "valueInputOption is required");
            }
            let values = req["values"].as_array().cloned().unwrap_or_default();
            let (c0, r0) = (bounds.0.unwrap_or(0), bounds.1.unwrap_or(0));
            for (i, row) in values.iter().enumerate() {
                let cells = row.as_array().cloned().unwrap_or_default();
                while sheet.cells.len() <= r0 + i {
                    sheet.cells.push(Vec::new());
                }
                for (j, v) in cells.into_iter().enumerate() {
                    let r = &mut sheet.cells[r0 + i];
                    while r.len() <= c0 + j {
                        r.push(Json::Null);
                    }
                    r[c0 + j] = if v == json!("") { Json::Null } else { v };
                }
            }
            let cols = values
                .iter()
                .filter_map(Json::as_array)
                .map(Vec::len)
                .max()
                .unwrap_or(0);
            answer(
                200,
                json!({"spreadsheetId": id, "updatedRange": range, "updatedRows": values.len(),
                       "updatedColumns": cols, "updatedCells": values.len() * cols}),
            )
        }
        _ => api_error(404, "NOT_FOUND", "no such endpoint"),
    }
}

/// `(col0, row0, col1, row1)` bounds of an A1 range, inclusive; `None` parts are open.
type Bounds = (Option<usize>, Option<usize>, Option<usize>, Option<usize>);

/// `'Title'!A1:C3`, `Title!A:B`, `'Title'` → (title, bounds).
fn parse_range(range: &str) -> Option<(String, Bounds)> {
    let (title, rest) = if let Some(q) = range.strip_prefix('\'') {
        let mut title = String::new();
        let mut chars = q.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|p| p.1) == Some('\'') {
                    chars.next();
                    title.push('\'');
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                title.push(c);
            }
        }
        (title, &q[end?..])
    } else {
        match range.split_once('!') {
            Some((t, _)) => (t.to_owned(), &range[t.len()..]),
            None => (range.to_owned(), ""),
        }
    };
    let cells = match rest.strip_prefix('!') {
        Some(c) => c,
        None if rest.is_empty() => return Some((title, (None, None, None, None))),
        None => return None,
    };
    let cell = |s: &str| -> Option<(Option<usize>, Option<usize>)> {
        let letters: String = s.chars().take_while(char::is_ascii_alphabetic).collect();
        let digits = &s[letters.len()..];
        let col = (!letters.is_empty()).then(|| {
            letters
                .to_ascii_uppercase()
                .bytes()
                .fold(0usize, |n, b| n * 26 + usize::from(b - b'A' + 1))
                - 1
        });
        let row = if digits.is_empty() {
            None
        } else {
            Some(digits.parse::<usize>().ok()?.checked_sub(1)?)
        };
        Some((col, row))
    };
    let (a, b) = cells.split_once(':').unwrap_or((cells, cells));
    let (c0, r0) = cell(a)?;
    let (c1, r1) = cell(b)?;
    Some((title, (c0, r0, c1, r1)))
}

/// The cells inside `bounds`, trailing empty cells and rows dropped as Google drops them.
fn window<T: Clone>(cells: &[Vec<Json>], b: Bounds, f: impl Fn(&Json) -> T) -> Vec<Vec<T>> {
    let (c0, r0) = (b.0.unwrap_or(0), b.1.unwrap_or(0));
    let mut rows: Vec<Vec<T>> = Vec::new();
    let mut last_row = 0;
    for (r, row) in cells.iter().enumerate().skip(r0) {
        if b.3.is_some_and(|r1| r > r1) {
            break;
        }
        let mut out = Vec::new();
        let mut last = 0;
        for (c, v) in row.iter().enumerate().skip(c0) {
            if b.2.is_some_and(|c1| c > c1) {
                break;
            }
            out.push(f(v));
            if !v.is_null() {
                last = out.len();
            }
        }
        out.truncate(last);
        if !out.is_empty() {
            last_row = rows.len() + 1;
        }
        rows.push(out);
    }
    rows.truncate(last_row);
    rows
}

fn formats(book: &Book, range: &str, q: &HashMap<String, String>) -> Answer {
    if q.get("fields").map(String::as_str)
        != Some("sheets.data.rowData.values.effectiveFormat.numberFormat.type")
    {
        return api_error(400, "INVALID_ARGUMENT", "unexpected fields");
    }
    let Some((title, b)) = parse_range(range) else {
        return api_error(
            400,
            "INVALID_ARGUMENT",
            &format!("Unable to parse range: {range}"),
        );
    };
    let Some(sheet) = book.sheets.iter().find(|s| s.title == title) else {
        return api_error(
            400,
            "INVALID_ARGUMENT",
            &format!("Unable to parse range: {range}"),
        );
    };
    let (c0, r0) = (b.0.unwrap_or(0), b.1.unwrap_or(0));
    let rows: Vec<Json> = sheet
        .cells
        .iter()
        .enumerate()
        .skip(r0)
        .take_while(|(r, _)| b.3.is_none_or(|r1| *r <= r1))
        .map(|(r, row)| {
            let values: Vec<Json> = (c0..row.len())
                .take_while(|c| b.2.is_none_or(|c1| *c <= c1))
                .map(|c| match sheet.format(r, c) {
                    "" => json!({"effectiveFormat": {}}),
                    kind => json!({"effectiveFormat": {"numberFormat": {"type": kind}}}),
                })
                .collect();
            json!({"values": values})
        })
        .collect();
    answer(200, json!({"sheets": [{"data": [{"rowData": rows}]}]}))
}

fn add_sheet(book: &mut Book, body: &str) -> Answer {
    let Ok(req) = serde_json::from_str::<Json>(body) else {
        return api_error(400, "INVALID_ARGUMENT", "body is not JSON");
    };
    let Some(title) = req["requests"][0]["addSheet"]["properties"]["title"].as_str() else {
        return api_error(400, "INVALID_ARGUMENT", "only addSheet is served here");
    };
    if book.sheets.iter().any(|s| s.title == title) {
        return api_error(
            400,
            "INVALID_ARGUMENT",
            &format!(
                "Invalid requests[0].addSheet: A sheet with the name \"{title}\" already exists. Please enter another name."
            ),
        );
    }
    let gid = book.sheets.iter().map(|s| s.gid).max().unwrap_or(0) + 1000;
    book.sheets.push(Sheet::new(gid, title, Vec::new()));
    answer(
        200,
        json!({"replies": [{"addSheet": {"properties": {"sheetId": gid, "title": title}}}]}),
    )
}

fn not_found_html() -> Answer {
    Answer {
        status: 404,
        content_type: "text/html; charset=utf-8",
        body: "<html><body>Sorry, unable to open the file at this time.</body></html>".to_owned(),
        location: None,
    }
}

/// `/spreadsheets/d/<id>/export?format=csv&gid=N` and `/spreadsheets/d/<id>/gviz/tq?…`.
fn public(st: &State, rest: &str, q: &HashMap<String, String>) -> Answer {
    let (id, endpoint) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(book) = st.books.get(&decode(id)) else {
        return not_found_html();
    };
    if !book.public {
        return Answer {
            status: 302,
            content_type: "text/html",
            body: String::new(),
            location: Some("/accounts/ServiceLogin".to_owned()),
        };
    }
    match endpoint {
        "export" if q.get("format").map(String::as_str) == Some("csv") => {
            let sheet = match q.get("gid") {
                Some(g) => book.sheets.iter().find(|s| s.gid.to_string() == *g),
                None => book.sheets.first(),
            };
            match sheet {
                Some(s) => Answer {
                    status: 307,
                    content_type: "text/html",
                    body: String::new(),
                    location: Some(format!("/csv/{}?gid={}", decode(id), s.gid)),
                },
                None => not_found_html(),
            }
        }
        "gviz/tq" if q.get("tqx").map(String::as_str) == Some("out:csv") => {
            // As Google does: a title no worksheet has gets the first worksheet.
            let sheet = q
                .get("sheet")
                .and_then(|t| book.sheets.iter().find(|s| &s.title == t))
                .or(book.sheets.first());
            match sheet {
                Some(s) => csv(s),
                None => not_found_html(),
            }
        }
        _ => not_found_html(),
    }
}

/// A worksheet as its CSV export: what the cells display (strings as they are, numbers in
/// their shortest form, booleans as TRUE/FALSE).
fn csv(sheet: &Sheet) -> Answer {
    let mut out = String::new();
    let width = sheet.cells.iter().map(Vec::len).max().unwrap_or(0);
    for row in &sheet.cells {
        let fields: Vec<String> = (0..width)
            .map(|c| {
                let text = match row.get(c).unwrap_or(&Json::Null) {
                    Json::Null => String::new(),
                    Json::Bool(true) => "TRUE".to_owned(),
                    Json::Bool(false) => "FALSE".to_owned(),
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if text.contains([',', '"', '\n']) {
                    format!("\"{}\"", text.replace('"', "\"\""))
                } else {
                    text
                }
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    Answer {
        status: 200,
        content_type: "text/csv; charset=utf-8",
        body: out,
        location: None,
    }
}

/// The token endpoint: checks the assertion as Google does, then issues a token.
fn token(st: &mut State, body: &str) -> Answer {
    st.token_requests += 1;
    let form = query(body);
    let refuse = |st: &mut State, error: &str, description: &str| {
        st.refused_assertions += 1;
        answer(
            400,
            json!({"error": error, "error_description": description}),
        )
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return refuse(st, "unsupported_grant_type", "Invalid grant_type: ");
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    st.assertions.push(assertion.clone());
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return refuse(
            st,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
        );
    };
    let decode_json =
        |p: &str| -> Option<Json> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok() };
    let (Some(header), Some(claims), Ok(signature)) = (
        decode_json(header),
        decode_json(claims),
        URL_SAFE_NO_PAD.decode(signature),
    ) else {
        return refuse(st, "invalid_grant", "Invalid JWT: malformed");
    };
    if header["alg"] != "RS256" {
        return refuse(st, "invalid_grant", "Invalid JWT: alg must be RS256");
    }
    let signed = &assertion[..assertion.rfind('.').unwrap_or(0)];
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &st.public_key,
    );
    if key.verify(signed.as_bytes(), &signature).is_err() {
        return refuse(st, "invalid_grant", "Invalid JWT Signature.");
    }
    let now = now();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    if exp <= now || iat > now + 60 || exp.saturating_sub(iat) > 3600 {
        return refuse(
            st,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if claims["iss"] != st.email.as_str() {
        return refuse(st, "invalid_grant", "Invalid grant: account not found");
    }
    if claims["aud"] != st.token_uri.as_str() {
        return refuse(st, "invalid_grant", "Invalid JWT audience.");
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|x| x == SCOPE))
    {
        return refuse(
            st,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    st.next_token += 1;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let token = format!("ya29.standin{}x{nanos:09}", st.next_token);
    let lifetime = st.token_lifetime;
    let email = st.email.clone();
    st.tokens
        .insert(token.clone(), (email, Instant::now() + lifetime));
    answer(
        200,
        json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
    )
}

/// Google Cloud Storage's check of a service account's self-signed JWT (what object_store
/// sends as the bearer token), in front of an XML-API server that checks none
/// ([`crate::servers::gcs_xml`]): each request must carry `Authorization: Bearer <JWT>`
/// signed RS256 by `key`, with the account's key id, `iss` and `sub` the account's email,
/// a cloud-platform or storage scope, and `iat`/`exp` current and at most an hour apart;
/// anything else is answered 401 as GCS does, and only checked requests reach `upstream`.
/// Counts the requests it refused.
pub struct GcsGate {
    pub port: u16,
    refused: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl GcsGate {
    pub fn start(upstream: u16, key: &'static Key, key_id: &str, email: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let refused = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (key_id, email) = (key_id.to_owned(), email.to_owned());
        let (count, halt) = (refused.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (count, key_id, email) = (count.clone(), key_id.clone(), email.clone());
                std::thread::spawn(move || {
                    let _ = gate(client, upstream, key, &key_id, &email, &count);
                });
            }
        });
        Self {
            port,
            refused,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests were refused so far.
    pub fn refused(&self) -> usize {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for GcsGate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Why GCS would refuse a bearer token, or `None` if it would take it.
fn gcs_refuses(bearer: Option<&str>, key: &Key, key_id: &str, email: &str) -> Option<&'static str> {
    let Some(token) = bearer else {
        return Some("no bearer token");
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Some("not a JWT");
    };
    let decode_json =
        |p: &str| -> Option<Json> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok() };
    let (Some(header), Some(claims), Ok(signature)) = (
        decode_json(header),
        decode_json(claims),
        URL_SAFE_NO_PAD.decode(signature),
    ) else {
        return Some("malformed JWT");
    };
    if header["alg"] != "RS256" || header["kid"] != key_id {
        return Some("unknown key");
    }
    let signed = &token[..token.rfind('.').unwrap_or(0)];
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &key.public,
    );
    if public.verify(signed.as_bytes(), &signature).is_err() {
        return Some("invalid signature");
    }
    if claims["iss"] != email || claims["sub"] != email {
        return Some("wrong account");
    }
    let scoped = claims["scope"].as_str().is_some_and(|s| {
        s.split(' ').any(|x| {
            x == "https://www.googleapis.com/auth/cloud-platform"
                || x.starts_with("https://www.googleapis.com/auth/devstorage.")
        })
    });
    if !scoped {
        return Some("no storage scope");
    }
    let now = now();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    if exp <= now || iat > now + 60 || exp.saturating_sub(iat) > 3600 {
        return Some("expired");
    }
    None
}

/// One client connection, one request: checked, then sent on (on an upstream connection
/// closed after its answer, so the answer is relayed whole) or refused, and closed.
fn gate(
    client: TcpStream,
    upstream: u16,
    key: &Key,
    key_id: &str,
    email: &str,
    refused: &Mutex<usize>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut out = client;
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let header = |name: &str| {
        head.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    if let Some(why) = gcs_refuses(bearer.as_deref(), key, key_id, email) {
        *refused.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let text = format!(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AuthenticationRequired</Code><Message>{why}</Message></Error>"
        );
        write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )?;
        return Ok(());
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    for line in &head[..head.len() - 1] {
        let name = line.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("connection") {
            up.write_all(line.as_bytes())?;
        }
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    // Relayed with `Connection: close` in its head, whatever the upstream said: this
    // connection closes after it, and a client told so never sends a next request on
    // it (one that would race the close and fail as a reset, not as GCS would answer).
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |at| at + 2);
    let (head, rest) = answer.split_at(split);
    for line in String::from_utf8_lossy(head).split_inclusive("\r\n") {
        let name = line.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("connection") {
            out.write_all(line.as_bytes())?;
        }
    }
    out.write_all(b"Connection: close\r\n")?;
    out.write_all(rest)?;
    Ok(())
}
