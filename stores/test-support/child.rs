//! Child processes for the fault tests. A test re-runs its own binary as a child (`--exact` the
//! child's test function, which does nothing unless [`ROLE`] names it); the child speaks to the
//! parent in marked stdout lines, each flushed before its next step, so the parent knows what
//! the child had done when it was killed.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Names the role a child plays.
pub const ROLE: &str = "OLMO_TEST_CHILD";
/// The database the child works on.
pub const DATABASE: &str = "OLMO_TEST_DATABASE";
/// Starts each line a child says, which the test harness's own output never contains.
const MARK: &str = "@child: ";

/// The database to work on when this process is the child playing `role`.
pub fn database(role: &str) -> Option<PathBuf> {
    (std::env::var(ROLE).ok()? == role).then(|| std::env::var(DATABASE).unwrap().into())
}

/// Whether this process is a child of any role (the parent's tests then do nothing).
pub fn is_child() -> bool {
    std::env::var(ROLE).is_ok()
}

/// Says `line` to the parent: straight to stdout past the harness's capture, flushed.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").unwrap();
    out.flush().unwrap();
}

/// What a child said on this line of its output, if anything. The harness's own "test NAME
/// ... " may share a line with the first message.
pub fn said(line: &str) -> Option<&str> {
    line.split_once(MARK).map(|(_, message)| message)
}

/// Starts this test binary as a child running `test` in `role` on `database`.
pub fn spawn(test: &str, role: &str, database: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DATABASE, database)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `child` says `open`, lets it work for `delay`, kills it with SIGKILL, and gives
/// every line it printed.
pub fn kill_after_open(mut child: Child, delay: Duration) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // Kill inside the child's work loop, not during its start-up, which is mostly exec.
    let mut lines = Vec::new();
    loop {
        match lines_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if said(&line) == Some("open") => break,
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!(
                    "the child never opened its store: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, it did not finish");
    reader.join().unwrap();
    lines.extend(lines_rx.try_iter());
    lines
}

/// The number a child said after `prefix` (`conflicts 3`).
pub fn count_of(lines: &[String], prefix: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| said(l)?.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:?}"))
        .parse()
        .unwrap()
}

/// Two children running `test` in `role` on one `database`, started together: each waits until
/// both have opened their store, then reads its start line (`starts[i]`). Gives each child's
/// lines once both finished, and fails if either did not finish cleanly.
pub fn race(test: &str, role: &str, database: &Path, starts: [&str; 2]) -> [Vec<String>; 2] {
    let mut children = [spawn(test, role, database), spawn(test, role, database)];
    let mut readers = Vec::new();
    for child in &mut children {
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "a child died");
            let line = line.trim_end().to_owned();
            let opened = said(&line) == Some("open");
            lines.push(line);
            if opened {
                break;
            }
        }
        readers.push((stdout, lines));
    }
    for (child, start) in children.iter_mut().zip(starts) {
        writeln!(child.stdin.as_mut().unwrap(), "{start}").unwrap();
    }
    let mut outputs = children
        .into_iter()
        .zip(readers)
        .map(|(child, (stdout, mut lines))| {
            lines.extend(stdout.lines().map(Result::unwrap));
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "a racing child failed: {stderr}");
            lines
        });
    let first = outputs.next().unwrap();
    let second = outputs.next().unwrap();
    [first, second]
}
