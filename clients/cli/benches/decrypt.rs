//! `olmo matrix decrypt` beside matrix-nio on the same dump and key export, in the same run.
//!
//! The dump and export are made by the peer (test-vectors/matrix-dump/make_dump.py): 100,000
//! events over 10,000 sessions in 10 rooms, shuffled, and an export of the 10,000 sessions under
//! nio's default 100,000 PBKDF2 rounds. Then, timed end to end (key import included):
//! - `olmo matrix decrypt --keys` (memory store; signatures verified on two threads), its
//!   peak resident memory measured by the kernel (a parent's `RUSAGE_CHILDREN`, through
//!   Python's `resource`);
//! - the same with `--store sqlite:` (a fresh store, then a second run on it, no key file);
//! - nio: `Olm.import_keys` and `decrypt_megolm_event` per event (benches/nio_decrypt.py).
//!
//! Each row gives wall and CPU seconds (CPU: every thread's), and the ratios to nio both
//! ways, since nio runs on one thread. Goals: ≤ 20 s, ≤ 0.1× nio, ≤ 200 MB.
//! `OLMO_BENCH_QUICK=1`, or a run by `cargo test` (no `--bench`: a smoke test): 2,000 events,
//! 200 sessions, 1,000 rounds, the same steps (it must build and run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const PASSPHRASE: &str = "bench passphrase";

/// What one process cost.
struct Run {
    /// Wall-clock seconds.
    wall: f64,
    /// CPU seconds (user and system): the figure that holds on a busy machine.
    cpu: f64,
    /// Peak resident memory, MB.
    rss_mb: f64,
    /// The end of its stdout.
    stdout: String,
}

impl Run {
    fn row(&self, what: &str) {
        println!(
            "{what:<40} {:7.2} s wall {:7.2} s CPU {:7.1} MB peak RSS",
            self.wall, self.cpu, self.rss_mb
        );
    }
}

/// Runs `program args` under Python's `resource` (the kernel's count for a child).
fn measured(python: &Path, program: &[&str]) -> Run {
    const WRAPPER: &str = "import json,resource,subprocess,sys,time\n\
        t=time.perf_counter(); r=subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)\n\
        t=time.perf_counter()-t\n\
        if r.returncode: sys.exit('failed: %r' % sys.argv[1:])\n\
        u=resource.getrusage(resource.RUSAGE_CHILDREN)\n\
        print(json.dumps({'s': t, 'cpu': u.ru_utime+u.ru_stime, 'rss': u.ru_maxrss, 'out': r.stdout.decode()[-4000:]}))";
    let output = Command::new(python)
        .args(["-c", WRAPPER])
        .args(program)
        .env("OLMO_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{program:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the wrapper's report");
    Run {
        wall: report["s"].as_f64().unwrap_or(0.0),
        cpu: report["cpu"].as_f64().unwrap_or(0.0),
        rss_mb: report["rss"].as_f64().unwrap_or(0.0) / 1024.0,
        stdout: report["out"].as_str().unwrap_or_default().to_owned(),
    }
}

fn main() {
    let smoke_test = !std::env::args().any(|a| a == "--bench");
    let quick = std::env::var_os("OLMO_BENCH_QUICK").is_some() || smoke_test;
    let (events, sessions, rounds) = if quick {
        (2_000, 200, 1_000)
    } else {
        (100_000, 10_000, 100_000)
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python3");
    assert!(
        python.exists(),
        "the peers' .venv is missing: run .ci/setup-python.sh"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let made = std::time::Instant::now();
    let status = Command::new(&python)
        .arg(root.join("test-vectors/matrix-dump/make_dump.py"))
        .arg(dir.path())
        .args(["--shape", "lines", "--rooms", "10"])
        .args(["--events", &events.to_string()])
        .args(["--sessions", &sessions.to_string()])
        .args(["--rounds", &rounds.to_string()])
        .env("OLMO_PASSPHRASE", PASSPHRASE)
        .status()
        .expect("the generator runs");
    assert!(status.success(), "make_dump.py failed");
    let keys = dir.path().join("keys.txt");
    let dump = dir.path().join("events.lines");
    let size = std::fs::metadata(&dump).map_or(0, |m| m.len());
    println!(
        "dump: {events} events ({:.1} MB), {sessions} sessions, {rounds} PBKDF2 rounds (made by the peer in {:.1} s)",
        size as f64 / 1e6,
        made.elapsed().as_secs_f64()
    );

    let olmo = env!("CARGO_BIN_EXE_olmo");
    let path = |p: &PathBuf| p.to_str().expect("utf-8").to_owned();
    let (keys_s, dump_s) = (path(&keys), path(&dump));
    let out = path(&dir.path().join("out.jsonl"));
    let store = format!("sqlite:{}", dir.path().join("store.db").display());
    let base = ["matrix", "decrypt", "--quiet", "-o", &out];

    let memory = measured(
        &python,
        &[&[olmo], &base[..], &["--keys", &keys_s, &dump_s]].concat(),
    );
    check(&out, events);
    let stored = measured(
        &python,
        &[
            &[olmo],
            &base[..],
            &["--keys", &keys_s, "--store", &store, &dump_s],
        ]
        .concat(),
    );
    check(&out, events);
    let again = measured(
        &python,
        &[&[olmo], &base[..], &["--store", &store, &dump_s]].concat(),
    );
    check(&out, events);
    let script = root.join("clients/cli/benches/nio_decrypt.py");
    let nio = measured(
        &python,
        &[
            python.to_str().expect("utf-8"),
            script.to_str().expect("utf-8"),
            &keys_s,
            &dump_s,
        ],
    );
    let report: Value = serde_json::from_str(nio.stdout.trim()).unwrap_or(Value::Null);
    assert_eq!(
        report["decrypted"].as_u64(),
        Some(events),
        "nio decrypted every event"
    );

    memory.row("olmo matrix decrypt --keys");
    stored.row("olmo matrix decrypt --keys --store");
    again.row("olmo matrix decrypt --store (2nd run)");
    nio.row("matrix-nio import_keys + decrypt");
    println!(
        "  (nio inside: import {:.2} s, decrypt {:.2} s)",
        report["import_seconds"].as_f64().unwrap_or(0.0),
        report["decrypt_seconds"].as_f64().unwrap_or(0.0)
    );
    // olmo verifies signatures on two threads, nio decrypts on one: the wall ratio is what
    // the user waits (on an idle machine), the CPU ratio the work done.
    println!(
        "ratio olmo/nio, CPU (all threads' work): {:.3}x (memory store), {:.3}x (SQLite store)",
        memory.cpu / nio.cpu,
        stored.cpu / nio.cpu
    );
    println!(
        "ratio olmo/nio, wall (olmo on 2 threads, nio on 1): {:.3}x (memory store), {:.3}x (SQLite store)",
        memory.wall / nio.wall,
        stored.wall / nio.wall
    );
    println!("goals: <= 20 s, <= 0.1x nio, <= 200 MB");
}

/// Every event has a decrypted line.
fn check(out: &str, events: u64) {
    let text = std::fs::read_to_string(out).expect("output");
    let decrypted = text
        .lines()
        .filter(|line| line.contains("\"status\":\"decrypted\""))
        .count() as u64;
    assert_eq!(decrypted, events, "olmo decrypted every event");
}
