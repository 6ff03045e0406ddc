//! The servers' floors: what the server takes to produce a result for a client that reads
//! it off the socket and drops it, no decoding, no allocation per row. No client can read
//! the result faster on this machine; every tool's time is this plus its own work.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;

use anyhow::{Context, bail, ensure};

/// Client capabilities: 4.1 protocol, 4.1 authentication, a database in the handshake,
/// authentication plugins.
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
/// utf8mb4_general_ci, as the connector's sessions use.
const UTF8MB4: u8 = 45;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_CLOSE: u8 = 0x19;

/// A MySQL (MariaDB) connection speaking just enough of the protocol to run a prepared
/// statement and count its rows: a user without a password, on TCP.
pub struct MySqlFloor {
    stream: BufReader<TcpStream>,
    seq: u8,
    packet: Vec<u8>,
}

impl MySqlFloor {
    pub fn connect(addr: &str, user: &str, database: &str) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let mut c = Self {
            stream: BufReader::with_capacity(1 << 16, tcp),
            seq: 0,
            packet: Vec::new(),
        };
        c.read_packet()?;
        ensure!(
            c.packet.first() == Some(&10),
            "not a MySQL protocol 10 handshake"
        );
        let mut reply = Vec::new();
        let caps = CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_CONNECT_WITH_DB
            | CLIENT_PLUGIN_AUTH;
        reply.extend_from_slice(&caps.to_le_bytes());
        reply.extend_from_slice(&(1u32 << 24).to_le_bytes());
        reply.push(UTF8MB4);
        reply.extend_from_slice(&[0; 23]);
        reply.extend_from_slice(user.as_bytes());
        reply.push(0);
        reply.push(0); // an empty auth response: no password
        reply.extend_from_slice(database.as_bytes());
        reply.push(0);
        reply.extend_from_slice(b"mysql_native_password\0");
        c.write_packet(&reply)?;
        c.read_packet()?;
        if c.packet.first() == Some(&0xfe) {
            // An authentication switch: the empty password's response is empty.
            c.write_packet(&[])?;
            c.read_packet()?;
        }
        c.ok()?;
        Ok(c)
    }

    /// Prepares `sql` and executes it: returns the rows, read to the end and dropped.
    pub fn rows(&mut self, sql: &str) -> anyhow::Result<u64> {
        self.seq = 0;
        self.write_packet(&[&[COM_STMT_PREPARE], sql.as_bytes()].concat())?;
        self.read_packet()?;
        self.ok()?;
        let p = &self.packet;
        ensure!(p.len() >= 12, "a short COM_STMT_PREPARE reply");
        let id = [p[1], p[2], p[3], p[4]];
        let columns = u16::from_le_bytes([p[5], p[6]]);
        let params = u16::from_le_bytes([p[7], p[8]]);
        ensure!(params == 0, "the floor runs statements without parameters");
        if columns > 0 {
            self.skip_definitions()?;
        }
        self.seq = 0;
        let mut execute = vec![COM_STMT_EXECUTE];
        execute.extend_from_slice(&id);
        execute.push(0); // no cursor
        execute.extend_from_slice(&1u32.to_le_bytes());
        self.write_packet(&execute)?;
        self.read_packet()?; // the column count
        self.ok()?;
        self.skip_definitions()?;
        let mut rows = 0u64;
        loop {
            self.read_packet()?;
            match self.packet.first() {
                Some(0x00) => rows += 1,
                Some(0xfe) if self.packet.len() < 9 => break,
                _ => self
                    .ok()
                    .and_then(|()| bail!("an unexpected packet in the rows"))?,
            }
        }
        // No reply to a close.
        self.seq = 0;
        self.write_packet(&[&[COM_STMT_CLOSE], &id[..]].concat())?;
        Ok(rows)
    }

    /// Column definitions up to their EOF packet.
    fn skip_definitions(&mut self) -> anyhow::Result<()> {
        loop {
            self.read_packet()?;
            if self.packet.first() == Some(&0xfe) && self.packet.len() < 9 {
                return Ok(());
            }
        }
    }

    /// Fails with the server's message on an error packet.
    fn ok(&self) -> anyhow::Result<()> {
        if self.packet.first() == Some(&0xff) {
            let message = self.packet.get(9..).unwrap_or_default();
            bail!("MySQL: {}", String::from_utf8_lossy(message));
        }
        Ok(())
    }

    /// The next packet's payload into `self.packet` (a payload of 16 MiB - 1 continues in
    /// the next packet).
    fn read_packet(&mut self) -> anyhow::Result<()> {
        self.packet.clear();
        loop {
            let mut head = [0u8; 4];
            self.stream.read_exact(&mut head)?;
            let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
            self.seq = head[3].wrapping_add(1);
            let at = self.packet.len();
            self.packet.resize(at + len, 0);
            self.stream.read_exact(&mut self.packet[at..])?;
            if len < 0xff_ffff {
                return Ok(());
            }
        }
    }

    fn write_packet(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        ensure!(
            payload.len() < 0xff_ffff,
            "a command too long for the floor"
        );
        let len = (payload.len() as u32).to_le_bytes();
        let mut out = vec![len[0], len[1], len[2], self.seq];
        out.extend_from_slice(payload);
        self.stream.get_mut().write_all(&out)?;
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }
}

/// A PostgreSQL connection speaking just enough of protocol 3.0 to run one COPY and drop
/// its data: a user the server trusts (no password), on TCP.
pub struct PgFloor {
    stream: BufReader<TcpStream>,
    message: Vec<u8>,
}

impl PgFloor {
    pub fn connect(addr: &str, user: &str, database: &str) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let mut c = Self {
            stream: BufReader::with_capacity(1 << 16, tcp),
            message: Vec::new(),
        };
        let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
        for (k, v) in [("user", user), ("database", database)] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut startup = (body.len() as u32 + 4).to_be_bytes().to_vec();
        startup.extend_from_slice(&body);
        c.stream.get_mut().write_all(&startup)?;
        loop {
            match c.read_message()? {
                b'R' => ensure!(
                    c.message == [0, 0, 0, 0],
                    "the floor needs a server that trusts {user} (no password)"
                ),
                b'Z' => return Ok(c),
                _ => {} // parameter status, backend key
            }
        }
    }

    /// Runs `COPY (sql) TO STDOUT (FORMAT binary)`: returns the rows the server says it
    /// sent, each CopyData message read off the socket and dropped.
    pub fn copy(&mut self, sql: &str) -> anyhow::Result<u64> {
        let text = format!("COPY ({sql}) TO STDOUT (FORMAT binary)\0");
        let mut query = vec![b'Q'];
        query.extend_from_slice(&(text.len() as u32 + 4).to_be_bytes());
        query.extend_from_slice(text.as_bytes());
        self.stream.get_mut().write_all(&query)?;
        let mut rows = None;
        loop {
            match self.read_message()? {
                b'C' => {
                    let tag = String::from_utf8_lossy(&self.message);
                    rows = tag
                        .trim_end_matches('\0')
                        .strip_prefix("COPY ")
                        .map(str::parse);
                }
                b'Z' => break,
                _ => {} // CopyOutResponse, CopyData, CopyDone
            }
        }
        Ok(rows.context("no COPY command tag")??)
    }

    /// The next message's type, its body in `self.message`; an ErrorResponse fails.
    fn read_message(&mut self) -> anyhow::Result<u8> {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        ensure!(len >= 4, "a PostgreSQL message of length {len}");
        self.message.resize(len - 4, 0);
        self.stream.read_exact(&mut self.message)?;
        if head[0] == b'E' {
            // Fields: a type byte and a NUL-terminated text each; 'M' is the message.
            let text = self
                .message
                .split(|&b| b == 0)
                .find_map(|f| f.strip_prefix(b"M"))
                .unwrap_or_default();
            bail!("PostgreSQL: {}", String::from_utf8_lossy(text));
        }
        Ok(head[0])
    }
}

/// A Redis connection speaking just enough RESP to list keys and fetch values, dropping
/// them: on TCP, without a password.
pub struct RedisFloor {
    stream: BufReader<TcpStream>,
    line: Vec<u8>,
    value: Vec<u8>,
}

impl RedisFloor {
    pub fn connect(port: u16) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connect to redis on {port}"))?;
        tcp.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::with_capacity(1 << 16, tcp),
            line: Vec::new(),
            value: Vec::new(),
        })
    }

    /// The keys matching `pattern` (`KEYS`: the bench's own server holds a few).
    pub fn keys(&mut self, pattern: &str) -> anyhow::Result<Vec<String>> {
        self.send(&["KEYS", pattern])?;
        let n = self.header(b'*')?;
        (0..n)
            .map(|_| {
                self.bulk()?;
                Ok(String::from_utf8(self.value.clone())?)
            })
            .collect()
    }

    /// `GET`s every key, all sent before the first reply is read; returns the bytes
    /// received, each value read into one reused buffer and dropped.
    pub fn fetch(&mut self, keys: &[String]) -> anyhow::Result<u64> {
        let mut out = Vec::new();
        for k in keys {
            command(&mut out, &["GET", k]);
        }
        self.stream.get_mut().write_all(&out)?;
        let mut bytes = 0;
        for _ in keys {
            bytes += self.bulk()? as u64;
        }
        Ok(bytes)
    }

    fn send(&mut self, args: &[&str]) -> anyhow::Result<()> {
        let mut out = Vec::new();
        command(&mut out, args);
        Ok(self.stream.get_mut().write_all(&out)?)
    }

    /// A reply's first line, which must be of `kind` (`$`, `*`): its number.
    fn header(&mut self, kind: u8) -> anyhow::Result<usize> {
        self.line.clear();
        let mut byte = [0u8];
        while !self.line.ends_with(b"\r\n") {
            self.stream.read_exact(&mut byte)?;
            self.line.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&self.line[1..self.line.len() - 2]).into_owned();
        ensure!(
            self.line[0] == kind,
            "redis replied {}",
            String::from_utf8_lossy(&self.line)
        );
        Ok(text.parse()?)
    }

    /// A bulk string into `self.value`; its length.
    fn bulk(&mut self) -> anyhow::Result<usize> {
        let n = self.header(b'$')?;
        self.value.resize(n + 2, 0);
        self.stream.read_exact(&mut self.value)?;
        self.value.truncate(n);
        Ok(n)
    }
}

fn command(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
