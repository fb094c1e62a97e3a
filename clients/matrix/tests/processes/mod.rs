//! The test's child processes: Synapse (tests/peers/synapse_server.py) and nio persons
//! (tests/peers/nio_person.py), both speaking JSON lines, both stopped on drop (also when a
//! test panics) by closing their stdin. Shared by the client's test and the bot's test in
//! clients/cli (each uses a part of it).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a child may take to exit after its stdin closed before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(15);

pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// A child process that reads JSON lines on stdin and answers on stdout.
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(name: &str, python: &Path, script: &str, args: &[&str]) -> Self {
        let script = repo_root().join("tests").join("peers").join(script);
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", python.display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
        }
    }

    /// A nio person, run by the peers' `.venv`.
    pub fn nio_person() -> Self {
        let python = repo_root().join(".venv").join("bin").join("python3");
        assert!(
            python.exists(),
            "nio_person needs {}: run .ci/setup-python.sh",
            python.display()
        );
        Self::spawn("nio person", &python, "nio_person.py", &[])
    }

    /// Reads one JSON line.
    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => panic!("{} exited ({:?})", self.name, self.child.try_wait()),
            Ok(_) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: bad JSON {line:?}: {e}", self.name)),
        }
    }

    /// Sends one request; panics unless the answer is `"ok": true`.
    pub fn call(&mut self, request: Value) -> Value {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot send {request}: {e}", self.name));
        let response = self.read();
        if response["ok"] != Value::Bool(true) {
            panic!("{}: {request} failed: {}", self.name, response["error"]);
        }
        response
    }

    /// `call`, then a string field of the answer.
    pub fn call_str(&mut self, request: Value, field: &str) -> String {
        let response = self.call(request);
        match response[field].as_str() {
            Some(value) => value.to_owned(),
            None => panic!("{}: no {field} in {response}", self.name),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // EOF on stdin: nio_person quits, synapse_server stops Synapse and deletes its files.
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Synapse with its users registered.
pub struct Synapse {
    _process: Peer,
    pub base_url: String,
    users: Value,
}

impl Synapse {
    /// Starts Synapse with `users`; `None` (and a loud note) when `.venv-synapse` is missing
    /// outside CI. With `CI` set (to anything but `0` or `false`) a missing Synapse fails.
    pub fn start_or_skip(users: &[&str]) -> Option<Self> {
        let python = repo_root()
            .join(".venv-synapse")
            .join("bin")
            .join("python3");
        if !python.exists() {
            let message = format!(
                "no Synapse at {}: run .ci/setup-synapse.sh",
                python.display()
            );
            let ci = std::env::var("CI").unwrap_or_default();
            if !matches!(ci.as_str(), "" | "0" | "false") {
                panic!("{message} (CI is set: the real-homeserver test must run)");
            }
            // Straight to stderr: the test harness captures `eprintln!` of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the real-homeserver test: {message}"
            );
            return None;
        }
        let users = users.join(",");
        let mut process = Peer::spawn(
            "synapse",
            &python,
            "synapse_server.py",
            &["--users", &users],
        );
        let ready = process.read();
        Some(Self {
            _process: process,
            base_url: ready["base_url"].as_str().expect("base_url").to_owned(),
            users: ready["users"].clone(),
        })
    }

    pub fn password(&self, user: &str) -> String {
        self.users[user]
            .as_str()
            .expect("registered user")
            .to_owned()
    }
}

/// A matrix-nio person: one logged-in device.
pub struct Person {
    pub peer: Peer,
    pub user_id: String,
    pub device_id: String,
}

impl Person {
    pub fn login(synapse: &Synapse, user: &str, device_name: &str) -> Self {
        let mut peer = Peer::nio_person();
        let login = peer.call(json!({
            "op": "login", "base_url": synapse.base_url, "user": user,
            "password": synapse.password(user), "device_name": device_name,
        }));
        Self {
            peer,
            user_id: login["user_id"].as_str().unwrap().to_owned(),
            device_id: login["device_id"].as_str().unwrap().to_owned(),
        }
    }

    pub fn sync(&mut self) {
        self.peer.call(json!({"op": "sync"}));
    }

    pub fn send(&mut self, room: &str, body: &str) {
        self.sync();
        self.peer
            .call(json!({"op": "send", "room_id": room, "body": body}));
    }

    /// Syncs until `body` decrypts; returns the message (sender, event_id, session_id).
    pub fn wait_for(&mut self, room: &str, body: &str) -> Value {
        self.peer
            .call(json!({"op": "wait_for", "room_id": room, "body": body, "timeout_s": 20}))
    }

    /// The room's messages as this device has them: (decrypted, undecryptable).
    pub fn messages(&mut self, room: &str) -> (Vec<Value>, Vec<Value>) {
        let answer = self.peer.call(json!({"op": "messages", "room_id": room}));
        let list = |name: &str| answer[name].as_array().cloned().unwrap_or_default();
        (list("messages"), list("undecryptable"))
    }
}

/// What [`write_dumps`] wrote: one `/messages` response per room, and a key export.
pub struct Dumps {
    /// Each room's whole history (oldest first), as `{"chunk": [...], "start", "end"}`.
    pub rooms: Vec<PathBuf>,
    /// `person`'s nio key export.
    pub key_export: PathBuf,
    /// Its passphrase.
    pub passphrase: String,
    /// What `person` decrypted in each room, in timeline order: `{sender, body, event_id,
    /// session_id}` (the reference a decryption of the dumps must match).
    pub decrypted: Vec<Vec<Value>>,
}

/// Writes each room's `/messages` dump (the raw events from the server, through `person`'s
/// access) and `person`'s key export into `dir`: the input of `olmo matrix decrypt`.
pub fn write_dumps(person: &mut Person, rooms: &[&str], dir: &Path) -> Dumps {
    let (mut paths, mut decrypted) = (Vec::new(), Vec::new());
    for (n, room) in rooms.iter().enumerate() {
        person.sync();
        decrypted.push(person.messages(room).0);
        let path = dir.join(format!("room-{n}.messages.json"));
        person
            .peer
            .call(json!({"op": "dump_messages", "room_id": room, "path": path}));
        paths.push(path);
    }
    let passphrase = "olmo bot test export".to_owned();
    let key_export = dir.join("keys.txt");
    person
        .peer
        .call(json!({"op": "export_keys", "path": key_export, "passphrase": passphrase}));
    Dumps {
        rooms: paths,
        key_export,
        passphrase,
        decrypted,
    }
}
