//! `olmo matrix decrypt`: room events in, one JSON line per event out, in input order.
//!
//! Events are decrypted a batch at a time through the machine (one commit per batch, holding
//! the replay record of its events, whatever their rooms), and each batch's lines are written only after its
//! commit. Decrypting an event again is not a replay (the record is keyed on (session, index)
//! and remembers the event id and timestamp), so a run that is killed and resumed, or run
//! twice, writes the same lines.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use olmo::matrix::{Machine, UnableToDecrypt};
use olmo::store::{Backend, block_on};
use serde_json::Value;

use super::input::{EventSink, InputError, Position, read_events};
use super::output::{self, Summary};
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
    let (out, summary): (Box<dyn Write>, Summary) = match &args.output {
        Some(path) if args.resume => resume(path)?,
        Some(path) => (
            Box::new(
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            ),
            Summary::default(),
        ),
        None => (Box::new(std::io::stdout().lock()), Summary::default()),
    };
    let position = Position::default();
    let progress = Progress::new(show, &inputs, &position);
    let mut sink = Decryptor {
        machine,
        default_room: args.room.clone(),
        skip: summary.events,
        seen: 0,
        batch_size: args.batch as usize,
        pending: Vec::new(),
        rooms: Vec::new(),
        out: BufWriter::new(out),
        summary,
        progress,
    };
    if sink.skip > 0 && show {
        eprintln!(
            "olmo: resuming after the {} events already in the output",
            sink.skip
        );
    }
    for path in &inputs {
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
        match read_events(reader, here, &mut sink) {
            Ok(()) => {}
            Err(InputError::Syntax { line, message }) => {
                // The events before the error are answered, then the run stops.
                sink.flush()?;
                sink.progress.finish();
                return Err(format!("{}: line {line}: {message}", path.display()));
            }
            Err(InputError::Sink(message)) => return Err(message),
        }
    }
    sink.flush()?;
    sink.out
        .flush()
        .map_err(|e| format!("writing the output: {e}"))?;
    sink.progress.finish();
    eprintln!("olmo: {}", sink.summary.line());
    Ok(())
}

/// Opens an interrupted run's output for appending, after its last complete line, and counts
/// the lines already there (they are the summary's start and the input events to skip).
fn resume(path: &Path) -> Result<(Box<dyn Write>, Summary), String> {
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
    /// The encrypted events waiting, one batch per room (a dump interleaves rooms; each
    /// room's batch is one commit).
    rooms: Vec<(String, Vec<Value>)>,
    out: BufWriter<Box<dyn Write>>,
    summary: Summary,
    progress: Progress,
}

impl<B: Backend> EventSink for Decryptor<'_, B> {
    fn event(&mut self, room: Option<&str>, event: Value) -> Result<(), String> {
        self.seen += 1;
        if self.seen <= self.skip {
            return Ok(());
        }
        if self.seen.is_multiple_of(TICK_EVERY) {
            self.progress.read(self.seen);
        }
        let room = room
            .map(str::to_owned)
            .or_else(|| {
                event
                    .get("room_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| self.default_room.clone());
        if !event.is_object() {
            let error = UnableToDecrypt::Malformed("not an event object");
            self.pending.push(Pending::Line(output::failed(
                &event,
                room.as_deref(),
                &error,
            )));
        } else if event.get("type").and_then(Value::as_str) != Some(ENCRYPTED) {
            self.pending
                .push(Pending::Line(output::unencrypted(event, room.as_deref())));
        } else if let Some(room) = room {
            let slot = match self.rooms.iter().position(|(r, _)| *r == room) {
                Some(slot) => slot,
                None => {
                    self.rooms.push((room, Vec::new()));
                    self.rooms.len() - 1
                }
            };
            self.rooms[slot].1.push(event);
            self.pending.push(Pending::Encrypted(slot));
        } else {
            self.pending.push(Pending::Line(output::no_room(&event)));
        }
        if self.pending.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }
}

impl<B: Backend> Decryptor<'_, B> {
    /// Decrypts every room's batch in one commit (their signatures verified together), then
    /// writes the pending lines in input order.
    fn flush(&mut self) -> Result<(), String> {
        let rooms: Vec<(&str, &[Value])> = self
            .rooms
            .iter()
            .map(|(room, events)| (room.as_str(), events.as_slice()))
            .collect();
        let results = block_on(self.machine.decrypt_room_events_of_rooms(
            &rooms,
            &[],
            &mut rand::rng(),
        ))
        .map_err(|e| format!("the store failed: {e}"))?;
        let mut decrypted = Vec::with_capacity(self.rooms.len());
        for ((room, events), results) in self.rooms.drain(..).zip(results) {
            decrypted.push((room, events.into_iter(), results.into_iter()));
        }
        for pending in self.pending.drain(..) {
            let line = match pending {
                Pending::Line(line) => line,
                Pending::Encrypted(slot) => {
                    let Some((batch_room, events, results)) = decrypted.get_mut(slot) else {
                        return Err("the machine returned fewer results than events".into());
                    };
                    let (Some(event), Some(result)) = (events.next(), results.next()) else {
                        return Err("the machine returned fewer results than events".into());
                    };
                    match result {
                        Ok(plain) => {
                            let line = output::Decrypted {
                                event: &event,
                                room: batch_room,
                                decrypted: &plain,
                            };
                            self.summary.count_decrypted();
                            write_line(&mut self.out, &line)?;
                            continue;
                        }
                        Err(error @ UnableToDecrypt::Machine(_)) => {
                            return Err(format!("the store failed: {error}"));
                        }
                        Err(error) => output::failed(&event, Some(batch_room), &error),
                    }
                }
            };
            self.summary.count(&line);
            write_line(&mut self.out, &line)?;
        }
        self.out
            .flush()
            .map_err(|e| format!("writing the output: {e}"))?;
        self.progress.update(&self.summary);
        Ok(())
    }
}

/// One output line.
fn write_line(out: &mut impl Write, line: &impl serde::Serialize) -> Result<(), String> {
    serde_json::to_writer(&mut *out, line).map_err(|e| format!("writing the output: {e}"))?;
    out.write_all(b"\n")
        .map_err(|e| format!("writing the output: {e}"))
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

    fn update(&mut self, summary: &Summary) {
        match self {
            Progress::Bar(bar, position) => {
                bar.set_position(position.bytes.get());
                bar.set_message(format!(
                    "{} events, {} decrypted",
                    summary.events,
                    summary.of("decrypted")
                ));
            }
            Progress::Counts { next } if summary.events >= *next => {
                eprintln!(
                    "olmo: {} events, {} decrypted",
                    summary.events,
                    summary.of("decrypted")
                );
                *next = (summary.events / COUNT_EVERY + 1) * COUNT_EVERY;
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
