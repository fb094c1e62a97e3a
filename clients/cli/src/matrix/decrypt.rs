//! `olmo matrix decrypt`: room events in, one JSON line per event out, in input order.
//!
//! Events are decrypted a batch at a time through the machine (one commit per batch, holding
//! the replay record of its events, whatever their rooms), and each batch's lines are written only after its
//! commit. Decrypting an event again is not a replay (the record is keyed on (session, index)
//! and remembers the event id and timestamp), so a run that is killed and resumed, or run
//! twice, writes the same lines.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;

use indicatif::{ProgressBar, ProgressStyle};
use olmo::matrix::{EncryptedEventFields, Machine, UnableToDecrypt};
use olmo::store::{Backend, block_on};
use serde_json::Value;

use super::input::{EventSink, InputError, Position, read_events};
use super::output::{self, Summary};
use super::raw_event::RawEvent;
use super::verify::TwoThreads;
use super::writer::{self, Committed, Line, Source};
use super::{keys, open_memory, open_sqlite, passphrase};
use crate::args::DecryptArgs;

/// The progress bar moves every this many events read.
const TICK_EVERY: u64 = 256;
/// Without a terminal, a count line on stderr every this many events.
const COUNT_EVERY: u64 = 10_000;
/// Bytes read from an input file at a time: JSON lines parse from the buffer when a whole
/// line is in it.
const READ_BUFFER: usize = 256 * 1024;
/// The event type of encrypted room events.
const ENCRYPTED: &str = "m.room.encrypted";

/// Runs the command.
pub fn run(args: &DecryptArgs) -> Result<(), String> {
    match &args.store {
        Some(spec) => decrypt(&open_sqlite(spec)?, args),
        None => decrypt(&open_memory()?, args),
    }
}

fn decrypt<B: Backend>(machine: &Machine<B>, args: &DecryptArgs) -> Result<(), String> {
    let show = !args.quiet;
    if !args.keys.is_empty() {
        let passphrase = passphrase(&args.passphrase)?;
        for path in &args.keys {
            let result = keys::import_file(machine, path, &passphrase, show)?;
            if show {
                keys::report_import(path, &result);
            }
        }
    }
    let inputs: Vec<PathBuf> = if args.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.inputs.clone()
    };
    let (out, summary): (Box<dyn Write + Send>, Summary) = match &args.output {
        Some(path) if args.resume => resume(path)?,
        Some(path) => (
            Box::new(
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            ),
            Summary::default(),
        ),
        None => (Box::new(std::io::stdout()), Summary::default()),
    };
    let position = Position::default();
    let progress = Progress::new(show, &inputs, &position);
    let skip = summary.events;
    if skip > 0 && show {
        eprintln!("olmo: resuming after the {skip} events already in the output");
    }
    let counts = (summary.events, summary.of("decrypted"));
    let (batches, received) = std::sync::mpsc::sync_channel(0);
    let (read, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || writer::write_batches(received, out, summary));
        let mut sink = Decryptor {
            machine,
            default_room: args.room.clone(),
            skip,
            seen: 0,
            batch_size: args.batch as usize,
            pending: Vec::new(),
            rooms: Vec::new(),
            texts: String::new(),
            batches,
            counts,
            progress,
            verifier: TwoThreads::default(),
        };
        let read = read_inputs(&inputs, &position, &mut sink);
        sink.progress.finish();
        drop(sink);
        // A panic in the writer is a bug: it goes on here.
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, written)
    });
    // The writer's own error explains a stop better than the reader's "the writer stopped".
    let summary = written?;
    read?;
    eprintln!("olmo: {}", summary.line());
    Ok(())
}

/// Reads every input into `sink`, then decrypts what is left.
fn read_inputs<B: Backend>(
    inputs: &[PathBuf],
    position: &Position,
    sink: &mut Decryptor<'_, B>,
) -> Result<(), String> {
    for path in inputs {
        let reader: Box<dyn BufRead> = if path == Path::new("-") {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(BufReader::with_capacity(
                READ_BUFFER,
                File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?,
            ))
        };
        let here = Position {
            bytes: position.bytes.clone(),
            newlines: Default::default(),
        };
        match read_events(reader, here, sink) {
            Ok(()) => {}
            Err(InputError::Syntax { line, message }) => {
                // The events before the error are answered, then the run stops.
                sink.flush()?;
                return Err(format!("{}: line {line}: {message}", path.display()));
            }
            Err(InputError::Sink(message)) => return Err(message),
        }
    }
    sink.flush()
}

/// Opens an interrupted run's output for appending, after its last complete line, and counts
/// the lines already there (they are the summary's start and the input events to skip).
fn resume(path: &Path) -> Result<(Box<dyn Write + Send>, Summary), String> {
    let mut summary = Summary::default();
    let mut complete = 0u64;
    match File::open(path) {
        Ok(file) => {
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                let value: Value = serde_json::from_slice(&line).map_err(|e| {
                    format!(
                        "{} line {}: not a line this command wrote ({e})",
                        path.display(),
                        summary.events + 1
                    )
                })?;
                summary.count(&value);
                complete += n as u64;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.set_len(complete)
        .map_err(|e| format!("cannot truncate {}: {e}", path.display()))?;
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
        .map_err(|e| format!("cannot seek {}: {e}", path.display()))?;
    Ok((Box::new(file), summary))
}

/// An output line waiting for its batch's commit.
enum Pending {
    /// Ready (not encrypted, or refused before decryption).
    Line(Value),
    /// The next result of this room's batch (an index into `Decryptor::rooms`).
    Encrypted(usize),
    /// An event kept as its text, this range of `Decryptor::texts`: read at the commit.
    Text(std::ops::Range<usize>),
}

struct Decryptor<'m, B: Backend> {
    machine: &'m Machine<B>,
    default_room: Option<String>,
    /// Input events whose lines the output already has.
    skip: u64,
    seen: u64,
    /// Events per commit.
    batch_size: usize,
    pending: Vec<Pending>,
    /// The encrypted events waiting as JSON values, one batch per room (a dump interleaves
    /// rooms; each room's batch is one commit).
    rooms: Vec<(String, Vec<Value>)>,
    /// The texts of the events waiting as text, one after another (one buffer, reused).
    texts: String,
    /// Committed batches, to the writer thread.
    batches: SyncSender<Committed>,
    /// Lines committed and decrypted ones among them, for the progress shown.
    counts: (u64, u64),
    progress: Progress,
    /// Each batch's signatures, verified on two threads.
    verifier: TwoThreads,
}

/// Where an event given as a JSON value goes.
enum Class {
    /// Its line is ready.
    Line(Value),
    /// Not encrypted: passed through, in this room.
    Unencrypted(Option<String>),
    /// To be decrypted in this room.
    Encrypted(String),
}

/// Sorts an event given as a JSON value, in `room` if its container names one.
fn classify(event: &Value, room: Option<&str>, default_room: Option<&String>) -> Class {
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

impl<B: Backend> EventSink for Decryptor<'_, B> {
    fn event(&mut self, room: Option<&str>, event: Value) -> Result<(), String> {
        if !self.admit() {
            return Ok(());
        }
        match classify(&event, room, self.default_room.as_ref()) {
            Class::Line(line) => self.pending.push(Pending::Line(line)),
            Class::Unencrypted(room) => self
                .pending
                .push(Pending::Line(output::unencrypted(event, room.as_deref()))),
            Class::Encrypted(room) => {
                let slot = match self.rooms.iter().position(|(r, _)| *r == room) {
                    Some(slot) => slot,
                    None => {
                        self.rooms.push((room, Vec::new()));
                        self.rooms.len() - 1
                    }
                };
                self.rooms[slot].1.push(event);
                self.pending.push(Pending::Encrypted(slot));
            }
        }
        self.flush_if_full()
    }

    fn raw_event(&mut self, text: &str) -> Result<(), String> {
        if !self.admit() {
            return Ok(());
        }
        let start = self.texts.len();
        self.texts.push_str(text);
        self.pending.push(Pending::Text(start..self.texts.len()));
        self.flush_if_full()
    }
}

/// A waiting event's place in the commit, once every event of the batch is read.
enum Planned {
    Line(Value),
    /// Decrypted in this group (an index into the rooms given to the machine).
    Encrypted(usize, From),
}

/// Where a waiting encrypted event is kept.
enum From {
    /// Its text (this range of the batch's texts) and its parse (an index into them).
    Text(std::ops::Range<usize>, usize),
    /// In a room's JSON values: `(slot, index)`.
    Room(usize, usize),
    /// Among the texts that needed a JSON value (an index into them).
    Value(usize),
}

/// The events of one room given to the machine.
type Group<'a> = (&'a str, Vec<EncryptedEventFields<'a>>);

/// The group of `room`, added when new.
fn group_of<'a>(groups: &mut Vec<Group<'a>>, room: &'a str) -> usize {
    match groups.iter().position(|(r, _)| *r == room) {
        Some(group) => group,
        None => {
            groups.push((room, Vec::new()));
            groups.len() - 1
        }
    }
}

impl<B: Backend> Decryptor<'_, B> {
    /// Counts an input event; false for those the output already has.
    fn admit(&mut self) -> bool {
        self.seen += 1;
        if self.seen <= self.skip {
            return false;
        }
        if self.seen.is_multiple_of(TICK_EVERY) {
            self.progress.read(self.seen);
        }
        true
    }

    fn flush_if_full(&mut self) -> Result<(), String> {
        if self.pending.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Decrypts every room's batch in one commit (their signatures verified together), then
    /// hands the pending lines, in input order, to the writer.
    fn flush(&mut self) -> Result<(), String> {
        let pending = std::mem::take(&mut self.pending);
        let rooms = std::mem::take(&mut self.rooms);
        let capacity = self.texts.len();
        let texts = std::mem::replace(&mut self.texts, String::with_capacity(capacity));
        let (committed, outcome) = self.decrypt_pending(&pending, rooms, texts)?;
        let lines = committed.lines.len() as u64;
        let decrypted = committed
            .lines
            .iter()
            .filter(|line| matches!(line, Line::Decrypted(..)))
            .count() as u64;
        self.batches
            .send(committed)
            .map_err(|_| "the output writer stopped".to_owned())?;
        outcome?;
        self.counts.0 += lines;
        self.counts.1 += decrypted;
        self.progress.update(self.counts);
        Ok(())
    }

    /// The batch's lines, and an error if the store failed at one of them (the lines before it
    /// are still written).
    fn decrypt_pending(
        &mut self,
        pending: &[Pending],
        mut rooms: Vec<(String, Vec<Value>)>,
        texts: String,
    ) -> Result<(Committed, Result<(), String>), String> {
        // The texts read first (borrowed from `texts`); those that need a JSON value get one.
        let mut raw: Vec<Option<RawEvent<'_>>> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        for item in pending {
            if let Pending::Text(range) = item {
                let text = &texts[range.clone()];
                let event = RawEvent::parse(text);
                if event.is_none() {
                    values.push(serde_json::from_str(text).unwrap_or(Value::Null));
                }
                raw.push(event);
            }
        }
        let mut next_in_room = vec![0usize; rooms.len()];
        let (mut raw_index, mut value_index) = (0usize, 0usize);
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut planned: Vec<Planned> = Vec::with_capacity(pending.len());
        let fewer = || "the events read do not match those waiting".to_owned();
        for item in pending {
            let (room, event, from) = match item {
                Pending::Line(line) => {
                    planned.push(Planned::Line(line.clone()));
                    continue;
                }
                Pending::Encrypted(slot) => {
                    let index = next_in_room.get_mut(*slot).ok_or_else(fewer)?;
                    let (room, events) = &rooms[*slot];
                    let event = events.get(*index).ok_or_else(fewer)?;
                    *index += 1;
                    let from = From::Room(*slot, *index - 1);
                    (room.as_str(), output::Event::Json(event), from)
                }
                Pending::Text(range) => {
                    let parsed = raw.get(raw_index).ok_or_else(fewer)?;
                    raw_index += 1;
                    match parsed {
                        Some(event) => {
                            let room = event.room_id.or(self.default_room.as_deref());
                            match (event.event_type, room) {
                                (Some(ENCRYPTED), Some(room)) => {
                                    let from = From::Text(range.clone(), raw_index - 1);
                                    (room, output::Event::Raw(event), from)
                                }
                                (Some(ENCRYPTED), None) => {
                                    let line = output::no_room_with_id(event.event_id());
                                    planned.push(Planned::Line(line));
                                    continue;
                                }
                                _ => {
                                    let value =
                                        serde_json::from_str(event.text).unwrap_or_default();
                                    planned.push(Planned::Line(output::unencrypted(value, room)));
                                    continue;
                                }
                            }
                        }
                        None => {
                            let event = values.get(value_index).ok_or_else(fewer)?;
                            value_index += 1;
                            match classify(event, None, self.default_room.as_ref()) {
                                Class::Line(line) => {
                                    planned.push(Planned::Line(line));
                                    continue;
                                }
                                Class::Unencrypted(room) => {
                                    let line = output::unencrypted(event.clone(), room.as_deref());
                                    planned.push(Planned::Line(line));
                                    continue;
                                }
                                // The room is the event's own or --room: borrowed from either.
                                Class::Encrypted(_) => {
                                    let room = event
                                        .get("room_id")
                                        .and_then(Value::as_str)
                                        .or(self.default_room.as_deref())
                                        .ok_or_else(fewer)?;
                                    let from = From::Value(value_index - 1);
                                    (room, output::Event::Json(event), from)
                                }
                            }
                        }
                    }
                }
            };
            let group = group_of(&mut groups, room);
            let fields = match event {
                output::Event::Json(event) => EncryptedEventFields::of_event(event),
                output::Event::Raw(event) => event.encrypted,
            };
            groups[group].1.push(fields);
            planned.push(Planned::Encrypted(group, from));
        }
        let given: Vec<(&str, &[EncryptedEventFields<'_>])> = groups
            .iter()
            .map(|(room, events)| (*room, events.as_slice()))
            .collect();
        let verifier = &mut self.verifier;
        let results = block_on(self.machine.decrypt_room_event_fields_of_rooms_verified_by(
            &given,
            &[],
            &mut |items| verifier.verify(items),
            &mut rand::rng(),
        ))
        .map_err(|e| format!("the store failed: {e}"))?;
        let group_rooms: Vec<String> = groups.iter().map(|(room, _)| (*room).to_owned()).collect();
        drop(given);
        drop(groups);
        let mut results: Vec<_> = results.into_iter().map(Vec::into_iter).collect();
        let mut lines = Vec::with_capacity(planned.len());
        let mut outcome = Ok(());
        for item in planned {
            let (group, from) = match item {
                Planned::Line(line) => {
                    lines.push(Line::Ready(line));
                    continue;
                }
                Planned::Encrypted(group, from) => (group, from),
            };
            let result = results
                .get_mut(group)
                .and_then(Iterator::next)
                .ok_or("the machine returned fewer results than events")?;
            let error = match result {
                Ok(plain) => {
                    let source = match from {
                        From::Text(range, _) => Source::Text(range),
                        From::Room(slot, index) => {
                            Source::Json(std::mem::take(&mut rooms[slot].1[index]))
                        }
                        From::Value(index) => Source::Json(std::mem::take(&mut values[index])),
                    };
                    lines.push(Line::Decrypted(source, group, plain));
                    continue;
                }
                Err(error @ UnableToDecrypt::Machine(_)) => {
                    outcome = Err(format!("the store failed: {error}"));
                    break;
                }
                Err(error) => error,
            };
            let event_id = match from {
                From::Text(_, index) => raw[index].as_ref().map(RawEvent::event_id),
                From::Room(slot, index) => rooms[slot].1[index].get("event_id").cloned(),
                From::Value(index) => values[index].get("event_id").cloned(),
            };
            let room = Some(group_rooms[group].as_str());
            let line = output::failed_with_id(event_id.unwrap_or(Value::Null), room, &error);
            lines.push(Line::Ready(line));
        }
        drop(raw);
        let committed = Committed {
            texts,
            rooms: group_rooms,
            lines,
        };
        Ok((committed, outcome))
    }
}

/// Progress on stderr: a bar on a terminal, count lines otherwise, or nothing.
enum Progress {
    Bar(ProgressBar, Position),
    Counts { next: u64 },
    Quiet,
}

impl Progress {
    fn new(show: bool, inputs: &[PathBuf], position: &Position) -> Self {
        if !show {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Counts { next: COUNT_EVERY };
        }
        // The inputs' total size, when they are all files: the bar then shows bytes read.
        let total: Option<u64> = inputs
            .iter()
            .map(|p| {
                (p != Path::new("-"))
                    .then(|| std::fs::metadata(p).ok().map(|m| m.len()))
                    .flatten()
            })
            .sum();
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {percent:>3}% {msg} [{elapsed_precise}, {eta} left]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner(),
        };
        Progress::Bar(bar, position.clone())
    }

    /// Events read so far (ahead of the lines written).
    fn read(&self, events: u64) {
        if let Progress::Bar(bar, position) = self {
            bar.set_position(position.bytes.get());
            bar.set_message(format!("{events} events read"));
        }
    }

    /// After a commit: `(lines, decrypted lines)` so far.
    fn update(&mut self, (events, decrypted): (u64, u64)) {
        match self {
            Progress::Bar(bar, position) => {
                bar.set_position(position.bytes.get());
                bar.set_message(format!("{events} events, {decrypted} decrypted"));
            }
            Progress::Counts { next } if events >= *next => {
                eprintln!("olmo: {events} events, {decrypted} decrypted");
                *next = (events / COUNT_EVERY + 1) * COUNT_EVERY;
            }
            _ => {}
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar, _) = self {
            // The last counts are drawn once before the bar goes: redraws are rate-limited,
            // so a run shorter than the interval would otherwise never show them.
            bar.force_draw();
            bar.finish_and_clear();
        }
    }
}
