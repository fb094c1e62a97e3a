//! The output lines of committed batches, formatted and written on a thread of their own.
//!
//! The decrypting thread sends a batch here only after its commit, with its results in input
//! order; formatting and writing them (and freeing the batch) then overlaps the next batch's
//! decryption. The bytes are those the decrypting thread would have written itself.

use std::io::Write;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};

use olmo::matrix::DecryptedRoomEvent;
use serde_json::Value;

use super::output::{self, Summary};
use super::raw_event::RawEvent;

/// Bytes gathered before a write to the output.
const WRITE_BUFFER: usize = 256 * 1024;

/// A decrypted event as it came.
pub enum Source {
    /// Its fields but `content` as an object, this range of the batch's texts (parsed again
    /// here, as the whole event was for decryption).
    Text(Range<usize>),
    /// Its JSON value.
    Json(Value),
}

/// One output line to be.
pub enum Line {
    /// Ready (not encrypted, or failed).
    Ready(Value),
    /// Decrypted in this room (an index into the batch's rooms).
    Decrypted(Source, usize, DecryptedRoomEvent),
}

/// A committed batch's lines, in input order.
pub struct Committed {
    /// The texts of the events given as text.
    pub texts: String,
    /// The rooms the events were decrypted in.
    pub rooms: Vec<String>,
    /// The lines.
    pub lines: Vec<Line>,
}

/// Writes every batch received to `out` (flushed after each), counting its lines in
/// `summary`, and says on `done` when each is written and freed, handing back its texts'
/// buffer (emptied) for a batch to come; answers the summary once the sender is gone.
pub fn write_batches(
    batches: Receiver<Committed>,
    done: Sender<String>,
    out: impl Write,
    mut summary: Summary,
) -> Result<Summary, String> {
    let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, out);
    for batch in batches {
        write_batch(&mut out, &mut summary, &batch)?;
        out.flush()
            .map_err(|e| format!("writing the output: {e}"))?;
        let Committed { mut texts, .. } = batch;
        texts.clear();
        // The reader may be gone already (an input error): nothing waits then.
        let _ = done.send(texts);
    }
    Ok(summary)
}

fn write_batch(
    out: &mut impl Write,
    summary: &mut Summary,
    batch: &Committed,
) -> Result<(), String> {
    for line in &batch.lines {
        match line {
            Line::Ready(line) => {
                summary.count(line);
                write_line(out, line)?;
            }
            Line::Decrypted(source, room, plain) => {
                let room = batch.rooms.get(*room).ok_or("a line names no room")?;
                let raw;
                let event = match source {
                    Source::Json(event) => output::Event::Json(event),
                    Source::Text(range) => {
                        raw = batch
                            .texts
                            .get(range.clone())
                            .and_then(RawEvent::parse)
                            .ok_or("an event read differently twice")?;
                        output::Event::Raw(&raw)
                    }
                };
                let line = output::Decrypted {
                    event,
                    room,
                    decrypted: plain,
                };
                summary.count_decrypted();
                write_line(out, &line)?;
            }
        }
    }
    Ok(())
}

/// One output line.
fn write_line(out: &mut impl Write, line: &impl serde::Serialize) -> Result<(), String> {
    serde_json::to_writer(&mut *out, line).map_err(|e| format!("writing the output: {e}"))?;
    out.write_all(b"\n")
        .map_err(|e| format!("writing the output: {e}"))
}
