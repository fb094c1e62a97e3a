//! `olmo matrix decrypt`: room events in, one JSON line per event out, in input order.
//!
//! Events are decrypted a batch at a time through the machine (one commit per batch, holding
//! the replay record of its events, whatever their rooms), and each batch's lines are written only after its
//! commit. Decrypting an event again is not a replay (the record is keyed on (session, index)
//! and remembers the event id and timestamp), so a run that is killed and resumed, or run
//! twice, writes the same lines.
//!
//! Three threads make a pipeline: a reader reads and parses the next batch ([`super::batch`]),
//! this one decrypts and commits the current one, and a writer formats and writes the lines of
//! the one before ([`super::writer`]), so the thread that holds the machine only decrypts.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, SyncSender};

use indicatif::{ProgressBar, ProgressStyle};
use olmo::matrix::{EncryptedEventFields, Machine, UnableToDecrypt};
use olmo::store::{Backend, block_on};
use serde_json::Value;

use super::batch::{Batcher, Pending, Read};
use super::input::{InputError, Position, read_events};
use super::output::{self, Summary};
use super::verify::TwoThreads;
use super::writer::{self, Committed, Line, Source};
use super::{keys, open_memory, open_sqlite, passphrase};
use crate::args::DecryptArgs;

/// Without a terminal, a count line on stderr every this many events.
const COUNT_EVERY: u64 = 10_000;
/// Bytes read from an input file at a time: JSON lines parse from the buffer when a whole
/// line is in it.
const READ_BUFFER: usize = 256 * 1024;

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
    let progress = Progress::new(show, &inputs);
    let skip = summary.events;
    if skip > 0 && show {
        eprintln!("olmo: resuming after the {skip} events already in the output");
    }
    let counts = (summary.events, summary.of("decrypted"));
    let ticker = match &progress {
        Progress::Bar(bar) => Some(bar.clone()),
        _ => None,
    };
    let (reads, to_decrypt) = std::sync::mpsc::sync_channel(0);
    let (batches, received) = std::sync::mpsc::sync_channel(0);
    let (done, written) = std::sync::mpsc::channel();
    let (spare, spares) = std::sync::mpsc::channel();
    let default_room = args.room.clone();
    let batch_size = args.batch as usize;
    let (read, decrypted, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || writer::write_batches(received, done, out, summary));
        let reader = scope.spawn(|| {
            let mut sink = Batcher {
                default_room: default_room.clone(),
                skip,
                seen: 0,
                batch_size,
                batch: Read::default(),
                batches: reads,
                sent: 0,
                written,
                spares,
                ticker: ticker.map(|bar| (bar, Position::default())),
            };
            read_inputs(&inputs, &mut sink)
        });
        let mut decryptor = Decryptor {
            machine,
            default_room: default_room.as_deref(),
            batches,
            counts,
            progress,
            verifier: TwoThreads::default(),
            spare,
        };
        let mut decrypted = Ok(());
        for batch in to_decrypt.iter() {
            decrypted = decryptor.flush(batch);
            if decrypted.is_err() {
                break;
            }
        }
        // The reader, blocked on a batch, stops when nobody takes it.
        drop(to_decrypt);
        decryptor.progress.finish();
        drop(decryptor);
        // A panic in a helper thread is a bug: it goes on here.
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, decrypted, written)
    });
    // The first thread to fail says why; the others only that they were stopped.
    let summary = written?;
    decrypted?;
    read?;
    eprintln!("olmo: {}", summary.line());
    Ok(())
}

/// Reads every input into `sink`, and sends the last batch.
fn read_inputs(inputs: &[PathBuf], sink: &mut Batcher) -> Result<(), String> {
    let position = sink
        .ticker
        .as_ref()
        .map(|(_, position)| position.clone())
        .unwrap_or_default();
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
                sink.send()?;
                return Err(format!("{}: line {line}: {message}", path.display()));
            }
            Err(InputError::Sink(message)) => return Err(message),
        }
    }
    sink.send()
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

struct Decryptor<'m, B: Backend> {
    machine: &'m Machine<B>,
    default_room: Option<&'m str>,
    /// Committed batches, to the writer thread.
    batches: SyncSender<Committed>,
    /// Lines committed and decrypted ones among them, for the progress shown.
    counts: (u64, u64),
    progress: Progress,
    /// Each batch's signatures, verified on two threads.
    verifier: TwoThreads,
    /// A decrypted batch's emptied buffers, back to the reader.
    spare: Sender<(Vec<Pending>, String)>,
}

/// A waiting event's place in the commit, once every event of the batch is read.
enum Planned {
    Line(Value),
    /// Decrypted in this group (an index into the rooms given to the machine).
    Encrypted(usize, From),
}

/// Where a waiting encrypted event is kept.
enum From {
    /// As text: its index in the batch's pending lines.
    Text(usize),
    /// In a room's JSON values: `(slot, index)`.
    Room(usize, usize),
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
    /// Decrypts every room's batch in one commit (their signatures verified together), then
    /// hands the lines, in input order, to the writer.
    fn flush(&mut self, batch: Read) -> Result<(), String> {
        let Read {
            mut pending,
            rooms,
            texts,
            mut contents,
        } = batch;
        let (committed, outcome) = self.decrypt_pending(&pending, rooms, texts, &mut contents)?;
        let lines = committed.lines.len() as u64;
        let decrypted = committed
            .lines
            .iter()
            .filter(|line| matches!(line, Line::Decrypted(..)))
            .count() as u64;
        self.batches
            .send(committed)
            .map_err(|_| "the output writer stopped".to_owned())?;
        // Their buffers to the reader, for a batch to come: it allocates none per batch.
        pending.clear();
        let _ = self.spare.send((pending, contents));
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
        contents: &mut String,
    ) -> Result<(Committed, Result<(), String>), String> {
        let mut next_in_room = vec![0usize; rooms.len()];
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut planned: Vec<Planned> = Vec::with_capacity(pending.len());
        let fewer = || "the events read do not match those waiting".to_owned();
        for (index, item) in pending.iter().enumerate() {
            let (room, fields, from) = match item {
                Pending::Line(line) => {
                    planned.push(Planned::Line(line.clone()));
                    continue;
                }
                Pending::Encrypted(slot) => {
                    let next = next_in_room.get_mut(*slot).ok_or_else(fewer)?;
                    let (room, events) = &rooms[*slot];
                    let event = events.get(*next).ok_or_else(fewer)?;
                    let from = From::Room(*slot, *next);
                    *next += 1;
                    (room.as_str(), EncryptedEventFields::of_event(event), from)
                }
                Pending::Text(spans) => {
                    let room = spans
                        .room_id
                        .and_then(|span| span.of(&texts))
                        .or(self.default_room)
                        .ok_or_else(fewer)?;
                    (room, spans.fields(&texts, contents), From::Text(index))
                }
            };
            let group = group_of(&mut groups, room);
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
        // Ciphertexts are not needed past decryption.
        contents.clear();
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
                        From::Text(index) => match &pending[index] {
                            Pending::Text(spans) => Source::Text(spans.event.range()),
                            _ => return Err(fewer()),
                        },
                        From::Room(slot, index) => {
                            Source::Json(std::mem::take(&mut rooms[slot].1[index]))
                        }
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
                From::Text(index) => match &pending[index] {
                    // As `RawEvent::event_id`: the field's value, null when absent.
                    Pending::Text(spans) => spans
                        .event_id
                        .and_then(|span| span.of(&texts))
                        .and_then(|raw| serde_json::from_str(raw).ok()),
                    _ => None,
                },
                From::Room(slot, index) => rooms[slot].1[index].get("event_id").cloned(),
            };
            let room = Some(group_rooms[group].as_str());
            let line = output::failed_with_id(event_id.unwrap_or(Value::Null), room, &error);
            lines.push(Line::Ready(line));
        }
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
    Bar(ProgressBar),
    Counts { next: u64 },
    Quiet,
}

impl Progress {
    fn new(show: bool, inputs: &[PathBuf]) -> Self {
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
        Progress::Bar(bar)
    }

    /// After a commit: `(lines, decrypted lines)` so far.
    fn update(&mut self, (events, decrypted): (u64, u64)) {
        match self {
            Progress::Bar(bar) => {
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
        if let Progress::Bar(bar) = self {
            // The last counts are drawn once before the bar goes: redraws are rate-limited,
            // so a run shorter than the interval would otherwise never show them.
            bar.force_draw();
            bar.finish_and_clear();
        }
    }
}
