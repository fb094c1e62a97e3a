//! Drives an interop peer process (tests/peers/libolm_peer.py) over
//! stdin/stdout: one JSON request per line, exactly one JSON response line.
//!
//! Responses are `{"ok": true, ...}` or `{"ok": false, "error": "Class: msg"}`.
//! Pickle keys are passed as JSON strings; the peer hands python-olm the
//! string, which uses its UTF-8 bytes as the libolm pickle key — so the Rust
//! side must use `key.as_bytes()` of the same string.
//!
//! The peer needs the venv made by `.ci/setup-python.sh`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Peer {
    /// Spawns the libolm peer (tests/peers/libolm_peer.py, python-olm).
    pub fn libolm() -> Peer {
        Peer::python("libolm", "libolm_peer.py")
    }

    /// Spawns the matrix-nio peer (tests/peers/nio_peer.py).
    pub fn nio() -> Peer {
        Peer::python("nio", "nio_peer.py")
    }

    /// Spawns the matrix-nio machine peer (tests/peers/nio_machine_peer.py: one device's
    /// `nio.crypto.Olm`, with the test playing the homeserver).
    pub fn nio_machine() -> Peer {
        Peer::python("nio-machine", "nio_machine_peer.py")
    }

    /// Spawns the XEdDSA peer (tests/peers/xeddsa_peer.py, the PyPI `xeddsa` package).
    pub fn xeddsa() -> Peer {
        Peer::python("xeddsa", "xeddsa_peer.py")
    }

    /// Spawns the python-omemo peer (tests/peers/omemo_peer.py: twomemo, oldmemo and the
    /// SessionManager).
    pub fn omemo() -> Peer {
        Peer::python("omemo", "omemo_peer.py")
    }

    /// Spawns the libsignal peer (tests/peers/libsignal/peer.mjs, libsignal-client 0.72.1 in
    /// Node), installed by `.ci/setup-node.sh`.
    pub fn libsignal() -> Peer {
        let peers = repo_root().join("tests").join("peers");
        let script = peers.join("libsignal").join("peer.mjs");
        let modules = peers.join("libsignal").join("node_modules");
        if !modules.exists() {
            panic!(
                "libsignal peer needs {}: run .ci/setup-node.sh first",
                modules.display()
            );
        }
        Peer::spawn("libsignal", Path::new("node"), &[script.as_path()])
    }

    /// A peer script in tests/peers run by the repo's `.venv` Python.
    fn python(name: &str, script: &str) -> Peer {
        let repo = repo_root();
        let python = repo.join(".venv").join("bin").join("python3");
        let script = repo.join("tests").join("peers").join(script);
        if !python.exists() {
            panic!(
                "{name} peer needs the Python venv at {}: run .ci/setup-python.sh first",
                python.display()
            );
        }
        Peer::spawn(name, &python, &[script.as_path()])
    }

    fn spawn(name: &str, program: &Path, args: &[&Path]) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Python tracebacks (if any) show up in the test's output.
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {name} peer ({}): {e}; run .ci/setup-python.sh and .ci/setup-node.sh",
                    program.display()
                )
            });
        let stdin = child.stdin.take().expect("peer stdin");
        let stdout = BufReader::new(child.stdout.take().expect("peer stdout"));
        Peer {
            name: name.to_string(),
            child,
            stdin: Some(stdin),
            stdout,
        }
    }

    /// Sends one request and returns the raw response object (ok or not).
    /// Panics only if the peer process is broken (died, bad JSON, ...).
    pub fn raw(&mut self, request: &Value) -> Value {
        let mut line = serde_json::to_string(request).expect("serialize request");
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("peer stdin already closed");
        if let Err(e) = stdin.write_all(line.as_bytes()).and_then(|_| stdin.flush()) {
            panic!("{} peer: cannot send request {request}: {e}", self.name);
        }
        let mut response = String::new();
        match self.stdout.read_line(&mut response) {
            Ok(0) => panic!(
                "{} peer exited without answering request {request} (status: {:?})",
                self.name,
                self.child.try_wait()
            ),
            Ok(_) => {}
            Err(e) => panic!("{} peer: cannot read response to {request}: {e}", self.name),
        }
        let value: Value = serde_json::from_str(&response).unwrap_or_else(|e| {
            panic!(
                "{} peer: invalid JSON response {response:?} to {request}: {e}",
                self.name
            )
        });
        if !value.is_object() || !value.get("ok").is_some_and(Value::is_boolean) {
            panic!(
                "{} peer: malformed response {value} to {request}",
                self.name
            );
        }
        value
    }

    /// Sends a request; `Ok(response)` if it has `"ok": true`, otherwise
    /// `Err(error string)` (e.g. "OlmSessionError: BAD_MESSAGE_MAC").
    pub fn try_call(&mut self, request: Value) -> Result<Value, String> {
        let response = self.raw(&request);
        if response["ok"] == Value::Bool(true) {
            Ok(response)
        } else {
            Err(response
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("<no error message>")
                .to_string())
        }
    }

    /// Sends a request and returns the response; panics if it has `"ok": false`.
    pub fn call(&mut self, request: Value) -> Value {
        let op = request
            .get("op")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "<no op>".to_string());
        match self.try_call(request.clone()) {
            Ok(response) => response,
            Err(error) => panic!(
                "{} peer: op {op} failed: {error}\n  request: {request}",
                self.name
            ),
        }
    }

    /// Convenience: `call` and take a string field of the response.
    pub fn call_str(&mut self, request: Value, field: &str) -> String {
        let response = self.call(request);
        response
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_else(|| {
                panic!(
                    "{} peer: no string field {field:?} in {response}",
                    self.name
                )
            })
            .to_string()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // Best effort: the peer answers and exits; closing stdin (EOF)
            // also makes it exit if the quit could not be sent.
            let _ = stdin.write_all(b"{\"op\":\"quit\"}\n");
            let _ = stdin.flush();
            drop(stdin);
        }
        let _ = self.child.wait();
    }
}
