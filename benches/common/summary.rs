//! The benches' shared harness: run modes, criterion settings, and the summary table that times
//! olmo and vodozemac side by side and prints their ratio against a target.
//!
//! Each row alternates batches of the two sides, so a change in machine load hits both alike,
//! and reports the median time per call of each side and the median of the ratios of
//! neighbouring batches (compared under the same load).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;

/// Short measurements: `OLMO_BENCH_QUICK=1`, or a smoke test.
pub fn quick() -> bool {
    std::env::var("OLMO_BENCH_QUICK").is_ok_and(|v| v == "1") || smoke_test()
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs benches without it, in a
/// debug build: there each bench runs once (criterion's test mode) and the summary is skipped.
pub fn smoke_test() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Shortens a criterion group in quick mode.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    if quick() {
        group
            .measurement_time(Duration::from_millis(200))
            .warm_up_time(Duration::from_millis(100))
            .sample_size(10);
    }
}

/// The time each side of a summary row gets.
pub fn budget() -> Duration {
    if quick() {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(200)
    }
}

/// One side of a summary row: makes `n` inputs with `setup` (untimed), runs `routine` on each
/// and returns the time per call; the outputs are dropped after the clock stops.
pub fn batch_runner<I, O>(
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
/// A call longer than `batch_time` (a whole backlog) runs alone.
pub fn calibrate(run: &mut impl FnMut(usize) -> Duration, batch_time: Duration) -> usize {
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

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// One line of the summary table.
pub struct Row {
    name: String,
    olmo: Duration,
    vodozemac: Duration,
    ratio: f64,
    target: f64,
}

/// Times both sides of a row for about `budget` each.
pub fn row(
    name: impl Into<String>,
    target: f64,
    budget: Duration,
    mut olmo: impl FnMut(usize) -> Duration,
    mut vodozemac: impl FnMut(usize) -> Duration,
) -> Row {
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
    Row {
        name: name.into(),
        olmo: median(a),
        vodozemac: median(b),
        ratio: ratios[ratios.len() / 2],
        target,
    }
}

pub fn format_duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

impl Row {
    /// The median times of the two sides.
    #[allow(dead_code)] // the benches that print only the table have no use for it
    pub fn times(&self) -> (Duration, Duration) {
        (self.olmo, self.vodozemac)
    }
}

/// Prints the rows, each with its verdict against its target.
pub fn print_table(rows: &[Row]) {
    print_table_against(rows, "olmo", "vodozemac");
}

/// [`print_table`] with the two sides named.
pub fn print_table_against(rows: &[Row], left: &str, right: &str) {
    println!();
    println!(
        "{:<32} {:>12} {:>12} {:>7} {:>7}  ",
        "row", left, right, "ratio", "target"
    );
    println!("{}", "-".repeat(78));
    for row in rows {
        let verdict = if row.ratio <= row.target {
            "ok"
        } else {
            "MISSED"
        };
        println!(
            "{:<32} {:>12} {:>12} {:>7.3} {:>7}  {verdict}",
            row.name,
            format_duration(row.olmo),
            format_duration(row.vodozemac),
            row.ratio,
            format!("≤{:.1}", row.target),
        );
    }
    println!(
        "(times: medians of alternating batches; ratio: median of {left}/{right} over \
         neighbouring batch pairs)"
    );
}
