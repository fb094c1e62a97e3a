//! python-omemo's SessionManager as the other side of a row: tests/peers/omemo_peer.py run by
//! the repo's venv, timing each operation inside Python (`sm_bench`), so no IPC is measured.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub struct Python {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Python {
    /// The peer, or `None` without the venv made by `.ci/setup-python.sh`.
    pub fn start() -> Option<Self> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = repo.join(".venv/bin/python3");
        if !python.exists() {
            return None;
        }
        let mut child = Command::new(python)
            .arg(repo.join("tests/peers/omemo_peer.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        Some(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn call(&mut self, request: &Value) -> Value {
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let response: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(response["ok"], true, "python peer: {response}");
        response
    }

    /// `n` runs of `operation` (with `extra` fields); the time per run.
    pub fn time(&mut self, operation: &str, extra: &Value, n: usize) -> Duration {
        let mut request = json!({"op": "sm_bench", "operation": operation, "iterations": n});
        if let (Some(request), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
            request.extend(extra.clone());
        }
        let response = self.call(&request);
        Duration::from_secs_f64(response["seconds_per_op"].as_f64().unwrap())
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}
