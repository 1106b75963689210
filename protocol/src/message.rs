//! The arbiter <-> worker wire messages: types, encoder, streaming decoder.
//!
//! This module is the codec only. It knows nothing of processes, pipes or time; what the arbiter
//! does with a message (or with a malformed frame) is the [`crate::arbiter`] core's business.
//!
//! # Wire form
//!
//! One message per frame; a frame is printable ASCII terminated by a line feed (`\n`), at most
//! [`MAX_FRAME`] bytes including the line feed. A frame is a verb, optionally followed by `:` and
//! one field. Numbers are decimal without sign or leading zeros. The full grammar is in
//! `docs/protocol.md`.
//!
//! | direction | frame | meaning |
//! |---|---|---|
//! | worker -> arbiter | `ACCEPT` | I am idle: give me a connection |
//! | worker -> arbiter | `ALIVE:<timestamp>` | heartbeat (the arbiter uses its own receive time) |
//! | worker -> arbiter | `ACCEPTED:<socket>` | I accepted one connection from `<socket>` as told |
//! | worker -> arbiter | `EMPTY:<socket>` | `<socket>` had nothing to accept; I am idle again |
//! | worker -> arbiter | `BYE:<reason>` | I am about to exit on purpose (`recycle`, `stop`, `parent`, `memory`) |
//! | arbiter -> worker | `ACCEPT:<socket>` | accept exactly one connection from listener `<socket>` |
//!
//! # Decoding
//!
//! [`Decoder`] is incremental in the style of `httparse`: bytes go in in any chunks, complete
//! frames come out; "needs more bytes" is not an error. Every malformed frame is one
//! [`DecodeError`]; after an error the decoder resynchronises at the next line feed, so the
//! sequence of results depends only on the bytes, never on how they were split. It keeps at most
//! one frame (`MAX_FRAME` bytes) of state and never allocates.

use core::fmt;

/// The longest frame, line feed included. `ALIVE:18446744073709551615\n` is 27 bytes.
pub const MAX_FRAME: usize = 32;

/// Index of a listening socket, as the arbiter and its workers both number them (0-based, in the
/// order of `--bind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ListenerId(pub u16);

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a worker is leaving on purpose, sent in `BYE:<reason>` just before it exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ByeReason {
    /// It served its `max_requests` budget (wire: `recycle`).
    Recycle,
    /// It was asked to stop (TERM) and has finished its work (wire: `stop`).
    Stop,
    /// Its parent is no longer the arbiter it was born to (wire: `parent`).
    Parent,
    /// It passed its soft memory limit and finished its request (wire: `memory`).
    Memory,
}

impl ByeReason {
    /// Every reason, in wire order.
    pub const ALL: [ByeReason; 4] = [Self::Recycle, Self::Stop, Self::Parent, Self::Memory];

    /// The wire token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Recycle => "recycle",
            Self::Stop => "stop",
            Self::Parent => "parent",
            Self::Memory => "memory",
        }
    }

    fn parse(field: &[u8]) -> Result<Self, DecodeError> {
        Self::ALL.into_iter().find(|r| r.as_str().as_bytes() == field).ok_or(DecodeError::UnknownReason)
    }
}

/// A message from a worker to the arbiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WorkerMsg {
    /// `ACCEPT`: the worker is idle and asks for a connection.
    Accept,
    /// `ALIVE:<timestamp>`: heartbeat. The timestamp is the worker's own (milliseconds of its
    /// monotonic clock) and is informational: liveness is judged on the arbiter's receive time.
    Alive {
        /// The worker's clock, milliseconds.
        timestamp: u64,
    },
    /// `ACCEPTED:<socket>`: the worker accepted the connection it was told to accept.
    Accepted {
        /// The listener it accepted from.
        socket: ListenerId,
    },
    /// `EMPTY:<socket>`: the accept found nothing (another process took it, or the client left);
    /// the worker is idle again without sending `ACCEPT`.
    Empty {
        /// The listener that had nothing.
        socket: ListenerId,
    },
    /// `BYE:<reason>`: the worker exits on purpose right after this frame.
    Bye {
        /// Why.
        reason: ByeReason,
    },
}

/// A message from the arbiter to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ArbiterMsg {
    /// `ACCEPT:<socket>`: accept exactly one connection from this listener.
    Accept {
        /// The listener that is ready.
        socket: ListenerId,
    },
}

/// Why a frame could not be decoded. Each malformed input has exactly one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DecodeError {
    /// The frame had no bytes before its line feed.
    #[error("empty frame")]
    Empty,
    /// No line feed within `MAX_FRAME` bytes; the rest up to the next line feed is discarded.
    #[error("frame longer than {MAX_FRAME} bytes")]
    TooLong,
    /// A byte above 0x7f.
    #[error("non-ASCII byte in frame")]
    NonAscii,
    /// An ASCII control character or a space (carriage returns included).
    #[error("control character or space in frame")]
    Control,
    /// The verb is not one this direction of the protocol knows.
    #[error("unknown verb")]
    UnknownVerb,
    /// The verb needs a `:<field>` and has none.
    #[error("missing field")]
    MissingField,
    /// A field where the verb takes none, or a second `:`.
    #[error("unexpected extra field")]
    ExtraField,
    /// A `:` followed by nothing.
    #[error("empty field")]
    EmptyField,
    /// A number field with a byte that is not a decimal digit.
    #[error("field is not a decimal number")]
    NotANumber,
    /// A number with a leading zero (numbers have one spelling only).
    #[error("number has a leading zero")]
    LeadingZero,
    /// A number too large for its type.
    #[error("number out of range")]
    Overflow,
    /// A `BYE` reason that is not `recycle`, `stop`, `parent` or `memory`.
    #[error("unknown BYE reason")]
    UnknownReason,
}

/// One encoded frame, line feed included. Lives on the stack: encoding never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    bytes: [u8; MAX_FRAME],
    len: u8,
}

impl Frame {
    /// The bytes to write, line feed included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn new() -> Self {
        Frame { bytes: [0; MAX_FRAME], len: 0 }
    }

    fn push(&mut self, s: &[u8]) {
        let at = usize::from(self.len);
        self.bytes[at..at + s.len()].copy_from_slice(s);
        self.len += s.len() as u8;
    }

    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn with(verb: &str, field: Option<Field>) -> Self {
        let mut f = Frame::new();
        f.push(verb.as_bytes());
        match field {
            None => {}
            Some(Field::Num(n)) => {
                f.push(b":");
                f.push_u64(n);
            }
            Some(Field::Word(w)) => {
                f.push(b":");
                f.push(w.as_bytes());
            }
        }
        f.push(b"\n");
        f
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Frames are ASCII by construction.
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

enum Field {
    Num(u64),
    Word(&'static str),
}

/// A message type of one direction of the protocol.
pub trait Message: Sized + Copy + fmt::Debug {
    /// Parses one frame, line feed excluded. The frame has already passed the byte checks
    /// (printable ASCII, non-empty, not too long); this checks verb and fields.
    fn parse(frame: &[u8]) -> Result<Self, DecodeError>;
    /// The frame for this message, line feed included.
    fn encode(&self) -> Frame;
}

/// A frame split into its verb and optional field.
fn split(frame: &[u8]) -> (&[u8], Option<&[u8]>) {
    match frame.iter().position(|&b| b == b':') {
        None => (frame, None),
        Some(i) => (&frame[..i], Some(&frame[i + 1..])),
    }
}

fn field_of(field: Option<&[u8]>) -> Result<&[u8], DecodeError> {
    let f = field.ok_or(DecodeError::MissingField)?;
    if f.is_empty() {
        return Err(DecodeError::EmptyField);
    }
    if f.contains(&b':') {
        return Err(DecodeError::ExtraField);
    }
    Ok(f)
}

fn no_field(field: Option<&[u8]>) -> Result<(), DecodeError> {
    match field {
        None => Ok(()),
        Some(_) => Err(DecodeError::ExtraField),
    }
}

fn number(field: Option<&[u8]>, max: u64) -> Result<u64, DecodeError> {
    let f = field_of(field)?;
    if !f.iter().all(u8::is_ascii_digit) {
        return Err(DecodeError::NotANumber);
    }
    if f.len() > 1 && f[0] == b'0' {
        return Err(DecodeError::LeadingZero);
    }
    let mut n: u64 = 0;
    for &d in f {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(DecodeError::Overflow)?;
    }
    if n > max {
        return Err(DecodeError::Overflow);
    }
    Ok(n)
}

fn listener(field: Option<&[u8]>) -> Result<ListenerId, DecodeError> {
    // The bound makes the narrowing exact.
    number(field, u64::from(u16::MAX)).map(|n| ListenerId(n as u16))
}

impl Message for WorkerMsg {
    fn parse(frame: &[u8]) -> Result<Self, DecodeError> {
        let (verb, field) = split(frame);
        match verb {
            b"ACCEPT" => no_field(field).map(|()| WorkerMsg::Accept),
            b"ALIVE" => number(field, u64::MAX).map(|timestamp| WorkerMsg::Alive { timestamp }),
            b"ACCEPTED" => listener(field).map(|socket| WorkerMsg::Accepted { socket }),
            b"EMPTY" => listener(field).map(|socket| WorkerMsg::Empty { socket }),
            b"BYE" => {
                let f = field_of(field)?;
                ByeReason::parse(f).map(|reason| WorkerMsg::Bye { reason })
            }
            _ => Err(DecodeError::UnknownVerb),
        }
    }

    fn encode(&self) -> Frame {
        match *self {
            WorkerMsg::Accept => Frame::with("ACCEPT", None),
            WorkerMsg::Alive { timestamp } => Frame::with("ALIVE", Some(Field::Num(timestamp))),
            WorkerMsg::Accepted { socket } => Frame::with("ACCEPTED", Some(Field::Num(u64::from(socket.0)))),
            WorkerMsg::Empty { socket } => Frame::with("EMPTY", Some(Field::Num(u64::from(socket.0)))),
            WorkerMsg::Bye { reason } => Frame::with("BYE", Some(Field::Word(reason.as_str()))),
        }
    }
}

impl Message for ArbiterMsg {
    fn parse(frame: &[u8]) -> Result<Self, DecodeError> {
        let (verb, field) = split(frame);
        match verb {
            b"ACCEPT" => listener(field).map(|socket| ArbiterMsg::Accept { socket }),
            _ => Err(DecodeError::UnknownVerb),
        }
    }

    fn encode(&self) -> Frame {
        match *self {
            ArbiterMsg::Accept { socket } => Frame::with("ACCEPT", Some(Field::Num(u64::from(socket.0)))),
        }
    }
}

/// Checks the bytes of one complete frame (line feed excluded), then parses it.
pub fn parse_frame<M: Message>(frame: &[u8]) -> Result<M, DecodeError> {
    if frame.is_empty() {
        return Err(DecodeError::Empty);
    }
    if frame.len() >= MAX_FRAME {
        return Err(DecodeError::TooLong);
    }
    if frame.iter().any(|&b| b >= 0x80) {
        return Err(DecodeError::NonAscii);
    }
    if frame.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(DecodeError::Control);
    }
    M::parse(frame)
}

/// Incremental decoder for one direction of the protocol (`Decoder<WorkerMsg>` in the arbiter,
/// `Decoder<ArbiterMsg>` in a worker).
///
/// Feed bytes with [`Decoder::decode`] until it has consumed them all. State is one frame buffer;
/// the decoder never allocates and never panics.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Decoder<M> {
    buf: [u8; MAX_FRAME],
    len: u8,
    /// Inside an over-long frame: drop bytes up to and including the next line feed.
    discarding: bool,
    _msg: core::marker::PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for Decoder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &String::from_utf8_lossy(&self.buf[..usize::from(self.len)]))
            .field("discarding", &self.discarding)
            .finish()
    }
}

impl<M: Message> Default for Decoder<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Message> Decoder<M> {
    /// An empty decoder.
    pub const fn new() -> Self {
        Decoder { buf: [0; MAX_FRAME], len: 0, discarding: false, _msg: core::marker::PhantomData }
    }

    /// Consumes bytes from `input` up to the end of the first complete frame (or all of them).
    ///
    /// Returns how many bytes were consumed and, if a frame was completed, its result. Call again
    /// with `&input[consumed..]` until everything is consumed; `None` with all bytes consumed
    /// means the decoder needs more bytes ("partial" is not an error).
    #[must_use]
    pub fn decode(&mut self, input: &[u8]) -> (usize, Option<Result<M, DecodeError>>) {
        let mut i = 0;
        if self.discarding {
            match input.iter().position(|&b| b == b'\n') {
                None => return (input.len(), None),
                Some(at) => {
                    self.discarding = false;
                    i = at + 1;
                }
            }
        }
        let rest = &input[i..];
        let room = MAX_FRAME - 1 - usize::from(self.len);
        let window = &rest[..rest.len().min(room + 1)];
        match window.iter().position(|&b| b == b'\n') {
            Some(at) => {
                let result = if self.len == 0 {
                    parse_frame(&window[..at])
                } else {
                    self.append(&window[..at]);
                    let frame = &self.buf[..usize::from(self.len)];
                    parse_frame(frame)
                };
                self.len = 0;
                (i + at + 1, Some(result))
            }
            None if window.len() > room => {
                // The frame needs more than MAX_FRAME bytes: report it once, skip to the next LF.
                self.len = 0;
                self.discarding = true;
                (i + window.len(), Some(Err(DecodeError::TooLong)))
            }
            None => {
                self.append(window);
                (input.len(), None)
            }
        }
    }

    /// Decodes everything in `input`, pushing each frame's result to `out`.
    pub fn decode_all(&mut self, mut input: &[u8], out: &mut impl Extend<Result<M, DecodeError>>) {
        while !input.is_empty() {
            let (used, result) = self.decode(input);
            if let Some(r) = result {
                out.extend(Some(r));
            }
            input = &input[used..];
        }
    }

    /// Bytes of an incomplete frame held so far.
    pub fn buffered(&self) -> usize {
        usize::from(self.len)
    }

    fn append(&mut self, bytes: &[u8]) {
        let at = usize::from(self.len);
        self.buf[at..at + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len() as u8;
    }
}

impl fmt::Display for WorkerMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        wire(f, &self.encode())
    }
}

impl fmt::Display for ArbiterMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        wire(f, &self.encode())
    }
}

fn wire(f: &mut fmt::Formatter<'_>, frame: &Frame) -> fmt::Result {
    let b = frame.as_bytes();
    // ASCII by construction; the trailing line feed is not shown.
    f.write_str(core::str::from_utf8(&b[..b.len() - 1]).unwrap_or("?"))
}

#[cfg(test)]
mod tests;
