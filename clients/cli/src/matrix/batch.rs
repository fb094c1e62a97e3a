//! The input read and parsed into batches on a thread of its own, while the decrypting thread
//! commits the batch before.
//!
//! An event given as its text is parsed here once: an encrypted one keeps its text and where
//! its fields are in it (ranges, so the batch owns everything it holds and can cross to the
//! decrypting thread); every other event's line is made here.

use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender};

use indicatif::ProgressBar;
use olmo::matrix::{EncryptedEventFields, UnableToDecrypt};
use serde_json::Value;

use super::input::{EventSink, Position};
use super::output;
use super::raw_event::RawEvent;

/// The event type of encrypted room events.
pub const ENCRYPTED: &str = "m.room.encrypted";
/// The progress bar moves every this many events read.
const TICK_EVERY: u64 = 256;

/// An output line waiting for its batch's commit.
pub enum Pending {
    /// Ready (not encrypted, or refused before decryption).
    Line(Value),
    /// The next event of this room's JSON values (an index into [`Read::rooms`]).
    Encrypted(usize),
    /// An encrypted event kept as its text in [`Read::texts`] and [`Read::contents`].
    Text(Spans),
}

/// Where a part of an event is in a batch's texts: 8 bytes rather than a `Range<usize>`'s
/// 16, since a batch holds a record per event (a batch's texts past 4 GiB take the JSON
/// value path instead).
#[derive(Clone, Copy)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The part of `texts` it names.
    pub fn of(self, texts: &str) -> Option<&str> {
        let start = self.start as usize;
        texts.get(start..start + self.len as usize)
    }

    /// As a range of the batch's texts.
    pub fn range(self) -> Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// Where an encrypted event's text and fields are in a batch's buffers.
pub struct Spans {
    /// The event's fields but `content`, as a JSON object in [`Read::texts`] (all the output
    /// line needs of it: a decrypted line replaces the content).
    pub event: Span,
    /// `room_id`, when a string.
    pub room_id: Option<Span>,
    /// `event_id`'s JSON text, when present (any JSON value).
    pub event_id: Option<Span>,
    sender: Option<Span>,
    event_id_str: Option<Span>,
    origin_server_ts: Option<u64>,
    /// The content's fields, in [`Read::contents`] (freed once the batch is decrypted).
    algorithm: Option<Span>,
    session_id: Option<Span>,
    ciphertext: Option<Span>,
}

impl Spans {
    /// Writes `event`'s fields but `content` to `texts` (an object of the same fields, which
    /// [`RawEvent::parse`] reads back the same) and what decryption reads of the content to
    /// `contents`, and says where they are; `None` (nothing written) when the buffers would
    /// pass what a [`Span`] can name.
    fn write(event: &RawEvent<'_>, texts: &mut String, contents: &mut String) -> Option<Self> {
        let end = texts.len().checked_add(event.text.len())?;
        u32::try_from(end).ok()?;
        u32::try_from(contents.len().checked_add(event.text.len())?).ok()?;
        // Every offset is below the lengths checked above.
        let span = |start: usize, len: usize| Span {
            start: start as u32,
            len: len as u32,
        };
        // `part` lies in `raw`, which starts at `at` in `texts`.
        let inside = |part: Option<&str>, raw: &str, at: usize| {
            part.map(|part| {
                span(
                    part.as_ptr() as usize - raw.as_ptr() as usize + at,
                    part.len(),
                )
            })
        };
        let start = texts.len();
        let (mut room_id, mut event_id, mut sender, mut event_id_str) = (None, None, None, None);
        texts.push('{');
        for (index, (key, raw)) in event.fields.iter().enumerate() {
            if index > 0 {
                texts.push(',');
            }
            // Keys with escapes never reach here (the event would not parse).
            texts.push('"');
            texts.push_str(key);
            texts.push_str("\":");
            let (raw, at) = (raw.get(), texts.len());
            texts.push_str(raw);
            match *key {
                "room_id" => room_id = inside(event.room_id, raw, at),
                "event_id" => {
                    event_id = Some(span(at, raw.len()));
                    event_id_str = inside(event.encrypted.event_id, raw, at);
                }
                "sender" => sender = inside(event.encrypted.sender, raw, at),
                _ => {}
            }
        }
        texts.push('}');
        let mut content = |part: Option<&str>| {
            part.map(|part| {
                let at = contents.len();
                contents.push_str(part);
                span(at, part.len())
            })
        };
        let fields = &event.encrypted;
        Some(Self {
            event: span(start, texts.len() - start),
            room_id,
            event_id,
            sender,
            event_id_str,
            origin_server_ts: fields.origin_server_ts,
            algorithm: content(fields.algorithm),
            session_id: content(fields.session_id),
            ciphertext: content(fields.ciphertext),
        })
    }

    /// The fields decryption reads, borrowed from the batch's buffers.
    pub fn fields<'t>(&self, texts: &'t str, contents: &'t str) -> EncryptedEventFields<'t> {
        let text = |span: &Option<Span>| span.and_then(|s| s.of(texts));
        let content = |span: &Option<Span>| span.and_then(|s| s.of(contents));
        EncryptedEventFields {
            sender: text(&self.sender),
            event_id: text(&self.event_id_str),
            origin_server_ts: self.origin_server_ts,
            algorithm: content(&self.algorithm),
            session_id: content(&self.session_id),
            ciphertext: content(&self.ciphertext),
        }
    }
}

/// A batch read: its lines in input order, and what they keep.
#[derive(Default)]
pub struct Read {
    pub pending: Vec<Pending>,
    /// The encrypted events given as JSON values, by room (in the order rooms came).
    pub rooms: Vec<(String, Vec<Value>)>,
    /// The encrypted events kept as text, without their contents, one after another.
    pub texts: String,
    /// What decryption reads of their contents.
    pub contents: String,
}

/// The [`EventSink`] of the reading thread: events into batches of `batch_size`, each sent
/// to the decrypting thread when full.
pub struct Batcher {
    pub default_room: Option<String>,
    /// Input events whose lines the output already has.
    pub skip: u64,
    pub seen: u64,
    pub batch_size: usize,
    pub batch: Read,
    pub batches: SyncSender<Read>,
    /// Batches sent so far.
    pub sent: u64,
    /// One message per batch written and freed, with its texts' buffer to reuse: the reader
    /// reads batch `k + 1` only once batch `k - 1` is, so at most one batch is read ahead of
    /// the one decrypting and one behind it (their memory, not three).
    pub written: Receiver<String>,
    /// The emptied record and contents buffers of a decrypted batch, to reuse.
    pub spares: Receiver<(Vec<Pending>, String)>,
    /// The progress bar, moved as events are read, with the bytes read.
    pub ticker: Option<(ProgressBar, Position)>,
}

/// Where an event given as a JSON value goes.
pub enum Class {
    /// Its line is ready.
    Line(Value),
    /// Not encrypted: passed through, in this room.
    Unencrypted(Option<String>),
    /// To be decrypted in this room.
    Encrypted(String),
}

/// Sorts an event given as a JSON value, in `room` if its container names one.
pub fn classify(event: &Value, room: Option<&str>, default_room: Option<&String>) -> Class {
    let room = room
        .or_else(|| event.get("room_id").and_then(Value::as_str))
        .or(default_room.map(String::as_str));
    if !event.is_object() {
        let error = UnableToDecrypt::Malformed("not an event object");
        Class::Line(output::failed(event, room, &error))
    } else if event.get("type").and_then(Value::as_str) != Some(ENCRYPTED) {
        Class::Unencrypted(room.map(str::to_owned))
    } else if let Some(room) = room {
        Class::Encrypted(room.to_owned())
    } else {
        Class::Line(output::no_room(event))
    }
}

impl EventSink for Batcher {
    fn event(&mut self, room: Option<&str>, event: Value) -> Result<(), String> {
        if !self.admit() {
            return Ok(());
        }
        self.add_value(room, event);
        self.send_if_full()
    }

    fn raw_event(&mut self, text: &str) -> Result<(), String> {
        if !self.admit() {
            return Ok(());
        }
        match RawEvent::parse(text) {
            Some(event) => {
                let room = event.room_id.or(self.default_room.as_deref());
                let line = match (event.event_type, room) {
                    (Some(ENCRYPTED), Some(_)) => {
                        let batch = &mut self.batch;
                        if let Some(spans) =
                            Spans::write(&event, &mut batch.texts, &mut batch.contents)
                        {
                            batch.pending.push(Pending::Text(spans));
                        } else {
                            let value = serde_json::from_str(text).unwrap_or(Value::Null);
                            self.add_value(None, value);
                        }
                        return self.send_if_full();
                    }
                    (Some(ENCRYPTED), None) => output::no_room_with_id(event.event_id()),
                    _ => {
                        let value = serde_json::from_str(event.text).unwrap_or_default();
                        output::unencrypted(value, room)
                    }
                };
                self.batch.pending.push(Pending::Line(line));
            }
            // Only a JSON value will do.
            None => {
                let value = serde_json::from_str(text).unwrap_or(Value::Null);
                self.add_value(None, value);
            }
        }
        self.send_if_full()
    }
}

impl Batcher {
    /// Counts an input event; false for those the output already has.
    fn admit(&mut self) -> bool {
        self.seen += 1;
        if self.seen <= self.skip {
            return false;
        }
        if self.seen.is_multiple_of(TICK_EVERY)
            && let Some((bar, position)) = &self.ticker
        {
            bar.set_position(position.bytes.get());
            bar.set_message(format!("{} events read", self.seen));
        }
        true
    }

    fn add_value(&mut self, room: Option<&str>, event: Value) {
        let batch = &mut self.batch;
        match classify(&event, room, self.default_room.as_ref()) {
            Class::Line(line) => batch.pending.push(Pending::Line(line)),
            Class::Unencrypted(room) => batch
                .pending
                .push(Pending::Line(output::unencrypted(event, room.as_deref()))),
            Class::Encrypted(room) => {
                let slot = match batch.rooms.iter().position(|(r, _)| *r == room) {
                    Some(slot) => slot,
                    None => {
                        batch.rooms.push((room, Vec::new()));
                        batch.rooms.len() - 1
                    }
                };
                batch.rooms[slot].1.push(event);
                batch.pending.push(Pending::Encrypted(slot));
            }
        }
    }

    fn send_if_full(&mut self) -> Result<(), String> {
        if self.batch.pending.len() >= self.batch_size {
            self.send()?;
        }
        Ok(())
    }

    /// Sends the batch read so far (when it has any event) to be decrypted.
    pub fn send(&mut self) -> Result<(), String> {
        if self.batch.pending.is_empty() {
            return Ok(());
        }
        if let Some((bar, position)) = &self.ticker {
            bar.set_position(position.bytes.get());
        }
        let capacity = self.batch.texts.len();
        let contents = self.batch.contents.len();
        let records = self.batch.pending.len();
        let batch = std::mem::take(&mut self.batch);
        self.batches.send(batch).map_err(|_| STOPPED.to_owned())?;
        self.sent += 1;
        // The decrypting thread took this batch once done with the last, whose buffers it
        // handed back then.
        (self.batch.pending, self.batch.contents) = self
            .spares
            .try_recv()
            .unwrap_or_else(|_| (Vec::with_capacity(records), String::with_capacity(contents)));
        self.batch.texts = if self.sent >= 2 {
            // The texts' buffer of the batch written is this one's: no new large allocation
            // per batch. The writer gone means the run is stopping: the next send says so.
            self.written.recv().unwrap_or_default()
        } else {
            String::with_capacity(capacity)
        };
        Ok(())
    }
}

/// What the reader answers when the decrypting thread stopped first (its own error says why).
pub const STOPPED: &str = "decryption stopped";
