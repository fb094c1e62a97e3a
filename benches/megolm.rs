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

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
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

fn quick() -> bool {
    std::env::var("OLMO_BENCH_QUICK").is_ok_and(|v| v == "1") || smoke_test()
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs benches without it, in a
/// debug build: there each bench runs once (criterion's test mode) and the summary is skipped.
fn smoke_test() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

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

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    if quick() {
        group
            .measurement_time(Duration::from_millis(200))
            .warm_up_time(Duration::from_millis(100))
            .sample_size(10);
    }
}

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

/// One side of a summary row: makes `n` inputs with `setup` (untimed), runs `routine` on each
/// and returns the time per call; the outputs are dropped after the clock stops.
fn batch_runner<I, O>(
    mut setup: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) -> impl FnMut(usize) -> Duration {
    move |n: usize| {
        let inputs: Vec<I> = (0..n).map(|_| setup()).collect();
        let mut outputs = Vec::with_capacity(n);
        let start = Instant::now();
        for input in inputs {
            outputs.push(routine(black_box(input)));
        }
        let elapsed = start.elapsed();
        black_box(&outputs);
        drop(outputs);
        elapsed / u32::try_from(n).unwrap()
    }
}

/// The batch size that makes one batch of `run` last about `batch_time` (after a warm-up).
/// A call longer than `batch_time` (the backlog) runs alone.
fn calibrate(run: &mut impl FnMut(usize) -> Duration, batch_time: Duration) -> usize {
    const MAX_BATCH: usize = 4096;
    let mut per_call = run(1);
    let warm_up = Instant::now();
    while warm_up.elapsed() < batch_time {
        let n = (batch_time.as_nanos() / per_call.as_nanos().max(1)).clamp(1, 8);
        per_call = run(usize::try_from(n).unwrap()).min(per_call);
    }
    let n = batch_time.as_nanos() / per_call.as_nanos().max(1);
    usize::try_from(n).unwrap_or(MAX_BATCH).clamp(1, MAX_BATCH)
}

/// Median time per call of olmo's and vodozemac's side of a row, and the median of the ratios
/// of neighbouring batches. Batches of the two sides alternate, so a change in machine load
/// hits both alike (and each ratio compares batches run under the same load); each side gets
/// about `budget`.
fn compare(
    budget: Duration,
    mut olmo: impl FnMut(usize) -> Duration,
    mut vodozemac: impl FnMut(usize) -> Duration,
) -> (Duration, Duration, f64) {
    const MIN_BATCHES: usize = 5;
    const MAX_BATCHES: usize = 1000;
    let batch_time = budget / 10;
    let n_olmo = calibrate(&mut olmo, batch_time);
    let n_vodozemac = calibrate(&mut vodozemac, batch_time);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while a.len() < MIN_BATCHES || (start.elapsed() < budget * 2 && a.len() < MAX_BATCHES) {
        a.push(olmo(n_olmo));
        b.push(vodozemac(n_vodozemac));
    }
    let mut ratios: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    (median(a), median(b), ratios[ratios.len() / 2])
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

struct Row {
    name: String,
    olmo: Duration,
    vodozemac: Duration,
    ratio: f64,
    target: f64,
}

fn format_duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn row(
    name: impl Into<String>,
    target: f64,
    budget: Duration,
    olmo: impl FnMut(usize) -> Duration,
    vodozemac: impl FnMut(usize) -> Duration,
) -> Row {
    let (olmo, vodozemac, ratio) = compare(budget, olmo, vodozemac);
    Row {
        name: name.into(),
        olmo,
        vodozemac,
        ratio,
        target,
    }
}

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

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<32} {:>12} {:>12} {:>7} {:>7}  ",
        "row", "olmo", "vodozemac", "ratio", "target"
    );
    println!("{}", "-".repeat(78));
    for row in rows {
        let ratio = row.ratio;
        let verdict = if ratio <= row.target { "ok" } else { "MISSED" };
        println!(
            "{:<32} {:>12} {:>12} {:>7.3} {:>7}  {verdict}",
            row.name,
            format_duration(row.olmo),
            format_duration(row.vodozemac),
            ratio,
            format!("≤{:.1}", row.target),
        );
    }
    println!(
        "(times: medians of alternating batches; ratio: median of olmo/vodozemac over \
         neighbouring batch pairs)"
    );
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
    let budget = if quick() {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(200)
    };
    print_table(&summary_rows(budget, &backlog));
}
