//! Megolm benchmarks: olmo and vodozemac side by side, in the same run.
//!
//! The criterion groups give the standard reports. After them a summary measures every row
//! again with a plain timing loop (median of several batches; setup and drops outside the
//! timed region) and prints olmo's time, vodozemac's, their ratio and the target ratio.
//!
//! Every decrypting row opens the same ciphertexts in both libraries: the messages are written
//! once by a vodozemac outbound session and decoded by olmo from their bytes, and both
//! inbound sessions come from the same `m.room_key` session key.
//!
//! `OLMO_BENCH_QUICK=1` shortens every measurement, and the backlog
//! to 1,000 messages, so the whole bench runs in seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "common/summary.rs"]
mod summary;

use std::hint::black_box;
use std::time::Duration;

use summary::{Row, batch_runner, budget, configure, print_table, quick, row, smoke_test};

use criterion::{BatchSize, Criterion, SamplingMode};
use olmo::megolm::{
    GroupSession, InboundGroupSession, MegolmMessage, MegolmRatchet, SessionKey, Timestamp,
};
use vodozemac::megolm::{
    GroupSession as VGroupSession, InboundGroupSession as VInboundGroupSession,
    MegolmMessage as VMegolmMessage, SessionConfig, SessionKey as VSessionKey,
};

/// The plaintext of every message.
const PLAINTEXT: [u8; 256] = [0x5a; 256];
/// Messages in the backlog row (full run / quick run).
const BACKLOG: usize = 10_000;
const BACKLOG_QUICK: usize = 1_000;
/// Messages in the backlog when `cargo test` runs the bench once in a debug build.
const BACKLOG_SMOKE: usize = 64;
/// Seed of the backlog's shuffle.
const SHUFFLE_SEED: u64 = 0x6d65_676f_6c6d;
/// The index of the advance rows: one step of R0, then re-deriving R1..R3.
const ADVANCE_TO: u32 = 1 << 24;
/// The farthest jump: 255 steps of every part.
const ADVANCE_TO_LAST: u32 = u32::MAX;

fn backlog_length() -> usize {
    if smoke_test() {
        BACKLOG_SMOKE
    } else if quick() {
        BACKLOG_QUICK
    } else {
        BACKLOG
    }
}

fn config() -> SessionConfig {
    SessionConfig::version_1()
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// One vodozemac outbound session's key at index 0 and its first `count` messages, in both
/// libraries' types (the same bytes).
struct Stream {
    key_base64: String,
    key: SessionKey,
    vkey: VSessionKey,
    messages: Vec<MegolmMessage>,
    vmessages: Vec<VMegolmMessage>,
}

impl Stream {
    fn new(count: usize) -> Self {
        let mut outbound = VGroupSession::new(config());
        let key_base64 = outbound.session_key().to_base64();
        let vmessages: Vec<_> = (0..count).map(|_| outbound.encrypt(PLAINTEXT)).collect();
        let messages = vmessages
            .iter()
            .map(|m| MegolmMessage::decode(&m.to_bytes()).unwrap())
            .collect();
        Self {
            key: SessionKey::from_base64(&key_base64).unwrap(),
            vkey: VSessionKey::from_base64(&key_base64).unwrap(),
            key_base64,
            messages,
            vmessages,
        }
    }

    fn inbound(&self) -> InboundGroupSession {
        InboundGroupSession::new(&self.key)
    }

    fn vinbound(&self) -> VInboundGroupSession {
        VInboundGroupSession::new(&self.vkey, config())
    }
}

fn vodo_clone(session: &VInboundGroupSession) -> VInboundGroupSession {
    VInboundGroupSession::from_pickle(session.pickle())
}

/// Fisher–Yates with splitmix64: the same order on every run and machine.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// The in-order decrypt fixture: inbound sessions that have read message 0, and message 1.
struct NextMessage {
    session: InboundGroupSession,
    message: MegolmMessage,
    vsession: VInboundGroupSession,
    vmessage: VMegolmMessage,
}

fn next_message() -> NextMessage {
    let stream = Stream::new(2);
    let mut session = stream.inbound();
    session.decrypt(&stream.messages[0]).unwrap();
    let mut vsession = stream.vinbound();
    vsession.decrypt(&stream.vmessages[0]).unwrap();
    NextMessage {
        session,
        message: stream.messages[1].clone(),
        vsession,
        vmessage: stream.vmessages[1].clone(),
    }
}

/// The backlog fixture: `count` messages in a fixed shuffled order, both libraries' types.
struct Backlog {
    stream: Stream,
}

fn backlog(count: usize) -> Backlog {
    let mut stream = Stream::new(count);
    let mut order: Vec<usize> = (0..count).collect();
    shuffle(&mut order, SHUFFLE_SEED);
    stream.messages = order.iter().map(|&i| stream.messages[i].clone()).collect();
    stream.vmessages = order.iter().map(|&i| stream.vmessages[i].clone()).collect();
    let fixture = Backlog { stream };
    // Both sides must open every message, and to the same plaintexts.
    let results = olmo_backlog(fixture.stream.inbound(), &fixture.stream.messages).1;
    let vresults = vodo_backlog(fixture.stream.vinbound(), &fixture.stream.vmessages).1;
    for ((result, vresult), &i) in results.iter().zip(&vresults).zip(&order) {
        let (result, vresult) = (result.as_ref().unwrap(), vresult.as_ref().unwrap());
        assert_eq!(result.message_index as usize, i);
        assert_eq!(vresult.message_index as usize, i);
        assert_eq!(&result.plaintext[..], &vresult.plaintext[..]);
    }
    fixture
}

type OlmoBacklogResults =
    Vec<Result<olmo::megolm::DecryptedMessage, olmo::megolm::MegolmDecryptError>>;
type VodoBacklogResults =
    Vec<Result<vodozemac::megolm::DecryptedMessage, vodozemac::megolm::DecryptionError>>;

fn olmo_backlog(
    mut session: InboundGroupSession,
    messages: &[MegolmMessage],
) -> (InboundGroupSession, OlmoBacklogResults) {
    let results = session.decrypt_backlog(messages);
    (session, results)
}

fn vodo_backlog(
    mut session: VInboundGroupSession,
    messages: &[VMegolmMessage],
) -> (VInboundGroupSession, VodoBacklogResults) {
    let results = messages.iter().map(|m| session.decrypt(m)).collect();
    (session, results)
}

// ---------------------------------------------------------------------------------------------
// Criterion groups
// ---------------------------------------------------------------------------------------------

fn bench_encrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("megolm encrypt (256 B)");
    configure(&mut group);
    let mut session = GroupSession::new(Timestamp::from_millis(0));
    group.bench_function("olmo", |b| {
        b.iter(|| session.encrypt(black_box(&PLAINTEXT)).unwrap());
    });
    let mut vsession = VGroupSession::new(config());
    group.bench_function("vodozemac", |b| {
        b.iter(|| vsession.encrypt(black_box(PLAINTEXT)));
    });
    group.finish();
}

fn bench_decrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("megolm decrypt (next message)");
    configure(&mut group);
    let fixture = next_message();
    group.bench_function("olmo", |b| {
        b.iter_batched(
            || fixture.session.clone(),
            |mut session| {
                let result = session.decrypt(&fixture.message).unwrap();
                (session, result)
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("vodozemac", |b| {
        b.iter_batched(
            || vodo_clone(&fixture.vsession),
            |mut session| {
                let result = session.decrypt(&fixture.vmessage).unwrap();
                (session, result)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_backlog(c: &mut Criterion, fixture: &Backlog) {
    let stream = &fixture.stream;
    let mut group = c.benchmark_group(format!(
        "megolm backlog ({} messages, shuffled)",
        stream.messages.len()
    ));
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    if quick() {
        group
            .measurement_time(Duration::from_millis(500))
            .warm_up_time(Duration::from_millis(100));
    } else {
        group
            .measurement_time(Duration::from_secs(15))
            .warm_up_time(Duration::from_secs(1));
    }
    group.bench_function("olmo", |b| {
        b.iter_batched(
            || stream.inbound(),
            |session| olmo_backlog(session, &stream.messages),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("vodozemac", |b| {
        b.iter_batched(
            || stream.vinbound(),
            |session| vodo_backlog(session, &stream.vmessages),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn bench_advance(c: &mut Criterion, name: &str, index: u32) {
    let mut group = c.benchmark_group(format!("megolm {name}"));
    configure(&mut group);
    let stream = Stream::new(0);
    let session = stream.inbound();
    group.bench_function("olmo (export_at)", |b| {
        b.iter(|| session.export_at(black_box(index)).unwrap());
    });
    group.bench_function("vodozemac (export_at)", |b| {
        b.iter_batched(
            || stream.vinbound(),
            |mut session| {
                let key = session.export_at(black_box(index)).unwrap();
                (session, key)
            },
            BatchSize::SmallInput,
        );
    });
    let ratchet = stream.key.ratchet().clone();
    group.bench_function("olmo (MegolmRatchet::advance_to)", |b| {
        b.iter_batched(
            || ratchet.clone(),
            |mut ratchet: MegolmRatchet| {
                ratchet.advance_to(black_box(index)).unwrap();
                ratchet
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_import(c: &mut Criterion) {
    let mut group = c.benchmark_group("megolm session key import");
    configure(&mut group);
    let key = Stream::new(0).key_base64;
    group.bench_function("olmo", |b| {
        b.iter(|| InboundGroupSession::new(&SessionKey::from_base64(black_box(&key)).unwrap()));
    });
    group.bench_function("vodozemac", |b| {
        b.iter(|| {
            VInboundGroupSession::new(
                &VSessionKey::from_base64(black_box(&key)).unwrap(),
                config(),
            )
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

fn summary_rows(budget: Duration, backlog: &Backlog) -> Vec<Row> {
    let mut rows = Vec::new();

    let mut session = GroupSession::new(Timestamp::from_millis(0));
    let mut vsession = VGroupSession::new(config());
    rows.push(row(
        "encrypt (256 B)",
        1.0,
        budget,
        batch_runner(|| (), |()| session.encrypt(&PLAINTEXT).unwrap()),
        batch_runner(|| (), |()| vsession.encrypt(PLAINTEXT)),
    ));

    let fixture = next_message();
    rows.push(row(
        "decrypt (next message)",
        1.0,
        budget,
        batch_runner(
            || fixture.session.clone(),
            |mut s| {
                let result = s.decrypt(&fixture.message).unwrap();
                (s, result)
            },
        ),
        batch_runner(
            || vodo_clone(&fixture.vsession),
            |mut s| {
                let result = s.decrypt(&fixture.vmessage).unwrap();
                (s, result)
            },
        ),
    ));

    let stream = &backlog.stream;
    rows.push(row(
        format!("backlog ({} shuffled)", stream.messages.len()),
        0.5,
        budget,
        batch_runner(|| stream.inbound(), |s| olmo_backlog(s, &stream.messages)),
        batch_runner(|| stream.vinbound(), |s| vodo_backlog(s, &stream.vmessages)),
    ));

    let stream = Stream::new(0);
    for (name, index) in [
        ("advance 0 → 2^24 (export_at)", ADVANCE_TO),
        ("advance 0 → 2^32−1 (export_at)", ADVANCE_TO_LAST),
    ] {
        let session = stream.inbound();
        rows.push(row(
            name,
            1.0,
            budget,
            batch_runner(|| (), |()| session.export_at(index).unwrap()),
            batch_runner(
                || stream.vinbound(),
                |mut s| {
                    let key = s.export_at(index).unwrap();
                    (s, key)
                },
            ),
        ));
    }

    let key = &stream.key_base64;
    rows.push(row(
        "session key import",
        1.0,
        budget,
        batch_runner(
            || (),
            |()| InboundGroupSession::new(&SessionKey::from_base64(key).unwrap()),
        ),
        batch_runner(
            || (),
            |()| VInboundGroupSession::new(&VSessionKey::from_base64(key).unwrap(), config()),
        ),
    ));

    rows
}

fn print_notes() {
    println!(
        "(backlog: olmo decrypt_backlog on a fresh session; vodozemac decrypt one by one on a \
         fresh session, same ciphertexts, fixed-seed shuffle)"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");

    let backlog = backlog(backlog_length());
    let mut criterion = Criterion::default().configure_from_args();
    bench_encrypt(&mut criterion);
    bench_decrypt(&mut criterion);
    bench_backlog(&mut criterion, &backlog);
    bench_advance(&mut criterion, "advance 0 → 2^24", ADVANCE_TO);
    bench_advance(&mut criterion, "advance 0 → 2^32−1", ADVANCE_TO_LAST);
    bench_import(&mut criterion);
    criterion.final_summary();

    if listing || smoke_test() {
        return;
    }
    print_table(&summary_rows(budget(), &backlog));
    print_notes();
}
