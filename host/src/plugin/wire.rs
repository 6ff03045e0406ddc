//! The channel between the host and a plugin's worker process: frames on Unix sockets.
//!
//! A frame is a 4-byte little-endian payload length, a 1-byte tag and the payload. [`MSG`]
//! frames carry JSON ([`Request`], [`Reply`]); [`IPC`] frames one Arrow IPC stream message
//! each (a table's schema, or one batch with the dictionaries it needs); [`END`] ends a
//! table.
//!
//! The host talks to a worker over *lanes*, one call at a time on each. The socket the
//! worker starts with (its standard input) is the control lane: the worker says hello on
//! it, and the host sends every new lane through it as a file descriptor. The other lanes
//! serve calls, so concurrent calls never wait on one another, and a slow reader of one
//! table holds back only its own lane: the socket's buffer is the flow control that keeps
//! an export flat in memory.
//!
//! Whatever arrives from a worker is untrusted (a plugin can write to any descriptor of
//! its process): a frame over [`MAX_FRAME`], bad JSON or a bad IPC message is a broken
//! worker, never a host panic or an unbounded allocation.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use plugboard_api::{ApiRelease, ErrorKind, ExecuteRequest, Manifest, PluginError, ReadRequest};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// A JSON message.
pub(crate) const MSG: u8 = 1;
/// One Arrow IPC stream message.
pub(crate) const IPC: u8 = 2;
/// The end of a table.
pub(crate) const END: u8 = 3;

/// The largest frame either side accepts: one batch of a table (the host asks for 65,536
/// rows a batch by default), far below it in practice.
pub(crate) const MAX_FRAME: usize = 1 << 31;

const HEADER: usize = 5;

/// A call from the host.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// A new lane, whose descriptor travels with this message (control lane only).
    Lane,
    /// `request` is the JSON `ConnectRequest`: the connection's own section, nothing else.
    Connect {
        request: String,
    },
    Read {
        conn: u64,
        request: ReadRequest,
    },
    Execute {
        conn: u64,
        request: ExecuteRequest,
    },
    Ping {
        conn: u64,
    },
    /// Stops what `conn` is running on the other lanes (plugin-api 1.7's cancel).
    Cancel {
        conn: u64,
    },
    Close {
        conn: u64,
    },
}

/// A worker's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub(crate) enum Reply {
    /// The library loaded and passed every check (the first message on the control lane).
    Hello {
        manifest: Manifest,
        api: WireRelease,
        pid: u32,
    },
    /// The library did not load; `reason` is the loader's one line.
    LoadFailed {
        reason: String,
    },
    Connected {
        conn: u64,
        target: Option<String>,
    },
    /// A table follows: its schema as an [`IPC`] frame, then batches, then [`END`] or a
    /// `Failed` message.
    Table,
    Rows {
        affected: u64,
    },
    Done,
    Failed {
        error: WireError,
    },
}

/// A [`PluginError`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireError {
    pub kind: u8,
    pub retryable: bool,
    pub message: String,
}

impl From<&PluginError> for WireError {
    fn from(e: &PluginError) -> Self {
        Self {
            kind: e.kind.0,
            retryable: e.retryable,
            message: e.message().to_owned(),
        }
    }
}

impl WireError {
    /// The plugin's error. A kind the worker itself may not claim (the host's own, for
    /// worker failures) is an internal error.
    pub(crate) fn into_error(self) -> PluginError {
        let kind = if self.kind >= super::worker::HOST_KINDS {
            ErrorKind::INTERNAL
        } else {
            ErrorKind(self.kind)
        };
        let mut e = PluginError::new(kind, self.message);
        e.retryable = self.retryable;
        e
    }
}

/// An [`ApiRelease`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireRelease {
    Recorded(String),
    Inferred { major: u32, from: u32, to: u32 },
}

impl From<&ApiRelease> for WireRelease {
    fn from(r: &ApiRelease) -> Self {
        match r {
            ApiRelease::Recorded(v) => Self::Recorded(v.clone()),
            ApiRelease::Inferred { major, from, to } => Self::Inferred {
                major: *major,
                from: *from,
                to: *to,
            },
        }
    }
}

impl From<WireRelease> for ApiRelease {
    fn from(r: WireRelease) -> Self {
        match r {
            WireRelease::Recorded(v) => Self::Recorded(v),
            WireRelease::Inferred { major, from, to } => Self::Inferred { major, from, to },
        }
    }
}

fn header(tag: u8, len: usize) -> io::Result<[u8; HEADER]> {
    let len = u32::try_from(len)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::other(format!("a frame of {len} bytes is too large")))?;
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4] = tag;
    Ok(h)
}

/// Writes one frame.
pub(crate) fn write_frame(w: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    let h = header(tag, payload.len())?;
    if payload.len() <= 4096 {
        // One write for small frames: one syscall, one wakeup of the reader.
        let mut small = Vec::with_capacity(HEADER + payload.len());
        small.extend_from_slice(&h);
        small.extend_from_slice(payload);
        return w.write_all(&small);
    }
    w.write_all(&h)?;
    w.write_all(payload)
}

/// Writes one JSON message.
pub(crate) fn write_msg<T: Serialize>(w: &mut impl Write, message: &T) -> io::Result<()> {
    let json = serde_json::to_vec(message).map_err(io::Error::other)?;
    write_frame(w, MSG, &json)
}

/// Reads one frame: its tag and payload.
pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h)?;
    let payload = read_payload(r, &h)?;
    Ok((h[4], payload))
}

fn read_payload(r: &mut impl Read, h: &[u8; HEADER]) -> io::Result<Vec<u8>> {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is too large"),
        ));
    }
    let mut payload = Vec::new();
    payload
        .try_reserve_exact(len)
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.to_string()))?;
    r.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(payload)
}

/// Parses a JSON message frame.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(tag: u8, payload: &[u8]) -> io::Result<T> {
    if tag != MSG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected a message, got a frame of kind {tag}"),
        ));
    }
    serde_json::from_slice(payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one JSON message.
pub(crate) fn read_msg<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<T> {
    let (tag, payload) = read_frame(r)?;
    parse(tag, &payload)
}

/// Sends `lane` to the worker over its control lane, with a [`Request::Lane`] message.
pub(crate) fn send_lane(control: &UnixStream, lane: impl AsFd) -> io::Result<()> {
    let json = serde_json::to_vec(&Request::Lane).map_err(io::Error::other)?;
    let mut frame = header(MSG, json.len())?.to_vec();
    frame.extend_from_slice(&json);
    let fds = [lane.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control_msg = SendAncillaryBuffer::new(&mut space);
    if !control_msg.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("no room for a descriptor"));
    }
    let mut sent = rustix::net::sendmsg(
        control,
        &[IoSlice::new(&frame)],
        &mut control_msg,
        SendFlags::NOSIGNAL,
    )?;
    // The descriptor went with the first byte; the rest is plain data.
    let mut w = control;
    while sent < frame.len() {
        let n = w.write(&frame[sent..])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    Ok(())
}

/// Reads one message from the control lane with the descriptors sent with it. `None` when
/// the host closed the lane.
pub(crate) fn recv_control(control: &UnixStream) -> io::Result<Option<(Request, Vec<OwnedFd>)>> {
    let mut h = [0u8; HEADER];
    let mut got = 0;
    let mut fds = Vec::new();
    while got < HEADER {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            control,
            &mut [IoSliceMut::new(&mut h[got..])],
            &mut ancillary,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for m in ancillary.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        if msg.bytes == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += msg.bytes;
    }
    let payload = read_payload(&mut &*control, &h)?;
    Ok(Some((parse(h[4], &payload)?, fds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        write_msg(&mut buf, &Request::Ping { conn: 7 }).expect("write");
        write_frame(&mut buf, IPC, &vec![9u8; 10_000]).expect("write");
        write_frame(&mut buf, END, &[]).expect("write");
        let mut r = &buf[..];
        let Request::Ping { conn } = read_msg(&mut r).expect("ping") else {
            panic!("not a ping");
        };
        assert_eq!(conn, 7);
        assert_eq!(read_frame(&mut r).expect("ipc"), (IPC, vec![9u8; 10_000]));
        assert_eq!(read_frame(&mut r).expect("end"), (END, vec![]));
        assert_eq!(
            read_frame(&mut r).expect_err("eof").kind(),
            io::ErrorKind::UnexpectedEof
        );
        // A length past the limit is refused before anything is allocated.
        let mut huge = (u32::MAX).to_le_bytes().to_vec();
        huge.push(IPC);
        let e = read_frame(&mut &huge[..]).expect_err("too large");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A truncated payload is an end of stream, not a short frame.
        let mut short = 10u32.to_le_bytes().to_vec();
        short.extend_from_slice(&[MSG, b'{']);
        let e = read_frame(&mut &short[..]).expect_err("short");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_lane_travels_through_the_control_lane() {
        let (host, worker) = UnixStream::pair().expect("pair");
        let (mine, theirs) = UnixStream::pair().expect("pair");
        send_lane(&host, &theirs).expect("send");
        drop(theirs);
        let (request, fds) = recv_control(&worker).expect("recv").expect("a message");
        assert!(matches!(request, Request::Lane));
        assert_eq!(fds.len(), 1);
        let mut lane = UnixStream::from(fds.into_iter().next().expect("fd"));
        write_msg(&mut lane, &Reply::Done).expect("write");
        let mut mine = mine;
        assert!(matches!(read_msg::<Reply>(&mut mine), Ok(Reply::Done)));
        drop(host);
        assert!(recv_control(&worker).expect("eof").is_none());
    }
}
