//! `olmo matrix decrypt`'s dump reader (`clients/cli/src/matrix/input.rs`), checked where it
//! lives: any bytes give events or a typed error, never a panic, and the events and outcome do
//! not depend on how the input is split into reads. The reader skips whitespace across buffer
//! boundaries by hand, which is where a split could change what it sees.
//! `clients/cli/tests/dump_corpus.rs` replays the seeds and regressions on stable Rust.

#[path = "../../clients/cli/src/matrix/input.rs"]
#[allow(dead_code)]
mod input;

use std::io::{BufReader, Read};

use input::{EventSink, InputError, Position, read_events};
use serde_json::Value;

/// What a read produced: the events with their rooms, then how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<(Option<String>, Value)>,
    end: Result<(), String>,
}

/// Keeps every event; refuses the `refuse_at`-th one, as a failing output would.
struct Collect {
    events: Vec<(Option<String>, Value)>,
    refuse_at: Option<usize>,
}

impl EventSink for Collect {
    fn event(&mut self, room: Option<&str>, event: Value) -> Result<(), String> {
        if self.refuse_at == Some(self.events.len()) {
            return Err("output refused".to_owned());
        }
        self.events.push((room.map(str::to_owned), event));
        Ok(())
    }
}

/// Hands out at most `step` bytes per read, so buffer edges fall everywhere.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn read(data: &[u8], step: usize, refuse_at: Option<usize>) -> Outcome {
    let mut sink = Collect {
        events: Vec::new(),
        refuse_at,
    };
    let reader = BufReader::with_capacity(step.max(1), Trickle { data, step });
    let end = read_events(reader, Position::default(), &mut sink).map_err(|error| match error {
        // The line of a syntax error is counted from consumed bytes, which a parser reading
        // ahead may count differently; the message and the events before it may not differ.
        InputError::Syntax { message, .. } => format!("syntax: {message}"),
        InputError::Sink(message) => format!("sink: {message}"),
    });
    Outcome {
        events: sink.events,
        end,
    }
}

/// The fuzz target `matrix_dump`. The first byte picks the small read size and which event
/// the output refuses; the rest is the dump.
pub fn check_matrix_dump(data: &[u8]) -> bool {
    let Some((&control, dump)) = data.split_first() else {
        return true;
    };
    let whole = read(dump, 1 << 16, None);
    let split = read(dump, usize::from(control % 7) + 1, None);
    assert_eq!(whole, split, "the split of the input changed what was read");
    if let Some(refuse_at) = (control >> 4).checked_sub(1).map(usize::from) {
        let refused = read(dump, 1 << 16, Some(refuse_at));
        if refuse_at < whole.events.len() {
            assert_eq!(refused.events[..], whole.events[..refuse_at]);
            assert_eq!(refused.end, Err("sink: output refused".to_owned()));
        } else {
            assert_eq!(refused, whole);
        }
    }
    true
}
