//! Times an operation against the sum of its primitives' costs, and prints the tables.
//!
//! A row alternates one batch of the operation with one batch of each primitive it is made of,
//! so a change in machine load hits both sides alike. Each round gives the operation's time per
//! call, the sum `Σ count × primitive time per call` and their ratio; the row reports the
//! medians of the three over its rounds. Every primitive keeps all its batches, across rows,
//! for the primitives table.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::summary::{calibrate, format_duration};

/// One primitive of [`Catalogue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PrimitiveId(usize);

struct Primitive {
    name: String,
    run: Box<dyn FnMut(usize) -> Duration>,
    /// Calibrated on first use.
    batch: Option<usize>,
    samples: Vec<Duration>,
}

/// The primitives, timed alone, and the rows built from them.
#[derive(Default)]
pub struct Catalogue {
    primitives: Vec<Primitive>,
}

/// A row's recipe: how many calls of which primitive.
pub type Terms = Vec<(u32, PrimitiveId)>;

/// One line of the summary table.
pub struct Row {
    name: String,
    olmo: Duration,
    sum: Duration,
    ratio: f64,
    recipe: String,
}

impl Catalogue {
    /// Adds a primitive; `run` is a [`super::summary::batch_runner`].
    pub fn add(
        &mut self,
        name: impl Into<String>,
        run: impl FnMut(usize) -> Duration + 'static,
    ) -> PrimitiveId {
        self.primitives.push(Primitive {
            name: name.into(),
            run: Box::new(run),
            batch: None,
            samples: Vec::new(),
        });
        PrimitiveId(self.primitives.len() - 1)
    }

    /// One batch of a primitive: its time per call (kept as a sample too).
    fn time(&mut self, id: PrimitiveId, batch_time: Duration) -> Duration {
        let primitive = &mut self.primitives[id.0];
        let batch = *primitive
            .batch
            .get_or_insert_with(|| calibrate(&mut primitive.run, batch_time));
        let per_call = (primitive.run)(batch);
        primitive.samples.push(per_call);
        per_call
    }

    /// Times `operation` and the primitives of `terms` for about `budget` each.
    pub fn row(
        &mut self,
        name: impl Into<String>,
        terms: &[(u32, PrimitiveId)],
        budget: Duration,
        mut operation: impl FnMut(usize) -> Duration,
    ) -> Row {
        const MIN_ROUNDS: usize = 5;
        const MAX_ROUNDS: usize = 1000;
        let batch_time = budget / 10;
        let distinct: BTreeSet<PrimitiveId> = terms.iter().map(|&(_, id)| id).collect();
        let n_operation = calibrate(&mut operation, batch_time);
        let sides = u32::try_from(distinct.len() + 1).unwrap();
        let (mut olmo, mut sums, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let start = Instant::now();
        while olmo.len() < MIN_ROUNDS
            || (start.elapsed() < budget * sides && olmo.len() < MAX_ROUNDS)
        {
            let per_call = operation(n_operation);
            let mut times = Vec::with_capacity(distinct.len());
            for &id in &distinct {
                times.push((id, self.time(id, batch_time)));
            }
            let sum: f64 = terms
                .iter()
                .map(|&(count, id)| {
                    let time = times.iter().find(|(t, _)| *t == id).unwrap().1;
                    f64::from(count) * time.as_secs_f64()
                })
                .sum();
            olmo.push(per_call.as_secs_f64());
            sums.push(sum);
            ratios.push(per_call.as_secs_f64() / sum);
        }
        let recipe = terms
            .iter()
            .map(|&(count, id)| format!("{count} × {}", self.primitives[id.0].name))
            .collect::<Vec<_>>()
            .join(" + ");
        Row {
            name: name.into(),
            olmo: Duration::from_secs_f64(median(olmo)),
            sum: Duration::from_secs_f64(median(sums)),
            ratio: median(ratios),
            recipe,
        }
    }

    /// Prints every primitive that was timed, with its median time per call.
    pub fn print_primitives(&self) {
        println!();
        println!(
            "{:<50} {:>12}",
            "primitive (olmo::crypto unless noted)", "per call"
        );
        println!("{}", "-".repeat(63));
        for primitive in &self.primitives {
            if primitive.samples.is_empty() {
                continue;
            }
            let samples = primitive
                .samples
                .iter()
                .map(Duration::as_secs_f64)
                .collect();
            println!(
                "{:<50} {:>12}",
                primitive.name,
                format_duration(Duration::from_secs_f64(median(samples)))
            );
        }
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Prints the summary table: each operation, the sum of its primitives and their ratio.
pub fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<36} {:>12} {:>18} {:>7}",
        "operation", "olmo", "sum of primitives", "ratio"
    );
    println!("{}", "-".repeat(76));
    for row in rows {
        println!(
            "{:<36} {:>12} {:>18} {:>7.3}",
            row.name,
            format_duration(row.olmo),
            format_duration(row.sum),
            row.ratio,
        );
    }
    println!(
        "(times: medians over alternating batches; ratio: median of operation / sum over the same \
         rounds; near 1 = little overhead beyond the cryptography)"
    );
}

/// Prints what each row's sum is made of.
pub fn print_recipes(rows: &[Row]) {
    println!();
    println!("sum of primitives, per row:");
    for row in rows {
        println!("  {}: {}", row.name, row.recipe);
    }
}
