//! The live test's processes: a Prosody of its own on 127.0.0.1 (a fresh data directory, its
//! accounts registered with prosodyctl), the bot (its binary, started, stopped with SIGINT and
//! killed with SIGKILL), and slixmpp persons (tests/peers/xmpp_person.py, JSON lines). All are
//! stopped on drop, also when the test panics.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// What the test needs on the machine, or why it cannot run (`.ci/setup-xmpp.sh` installs it).
pub fn missing_tools() -> Option<String> {
    let prosody = Command::new("prosody").arg("-v").output();
    if prosody.is_err() {
        return Some("prosody is not installed".into());
    }
    let python = repo_root().join(".venv-xmpp/bin/python3");
    (!python.exists()).then(|| format!("{} is missing", python.display()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

pub struct Prosody {
    child: Child,
    config: PathBuf,
    pub port: u16,
}

impl Prosody {
    /// Starts Prosody in `dir` with PEP, MAM (every message archived), carbons and stream
    /// management; plain TCP with SCRAM (no TLS on 127.0.0.1).
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = dir.join("prosody.cfg.lua");
        let path = |p: &Path| p.display().to_string();
        std::fs::write(
            &config,
            format!(
                r#"run_as_root = true
data_path = "{data}"
pidfile = "{pid}"
certificates = "{dir}"
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
modules_enabled = {{ "roster", "saslauth", "disco", "carbons", "pep", "mam", "smacks", "ping" }}
modules_disabled = {{ "tls", "s2s", "posix" }}
archive_expires_after = "never"
default_archive_policy = true
log = {{ warn = "{log}" }}
VirtualHost "localhost"
"#,
                data = path(&data),
                pid = path(&dir.join("prosody.pid")),
                dir = path(dir),
                log = path(&dir.join("prosody.log")),
            ),
        )
        .unwrap();
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&config)
            .arg("-F")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prosody = Self {
            child,
            config,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "prosody did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        prosody
    }

    pub fn register(&self, user: &str, password: &str) {
        let status = Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.config)
            .args(["register", user, "localhost", password])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "prosodyctl register {user}");
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bot, as its binary, on a store in the test's directory.
pub struct Bot {
    child: Option<Child>,
    store: PathBuf,
    log: PathBuf,
    port: u16,
    starts: usize,
}

pub const BOT: &str = "bot@localhost";
const BOT_PASSWORD: &str = "bot password";

impl Bot {
    pub fn new(prosody: &Prosody, dir: &Path) -> Self {
        prosody.register("bot", BOT_PASSWORD);
        Self {
            child: None,
            store: dir.join("bot.sqlite3"),
            log: dir.join("bot.log"),
            port: prosody.port,
            starts: 0,
        }
    }

    /// Starts the bot and waits until it says it is online.
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_olmo-xmpp-bot"))
            .args([
                "--jid",
                BOT,
                "--host",
                "127.0.0.1",
                "--plaintext",
                "--port",
                &self.port.to_string(),
            ])
            .arg("--store")
            .arg(&self.store)
            .env("OLMO_XMPP_PASSWORD", BOT_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.contains("online"),
            "the bot did not come online: {line:?} (see {})",
            self.log.display()
        );
        // Keep reading its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        self.child = Some(child);
    }

    /// Ctrl-C: the bot ends its stream and exits successfully.
    pub fn interrupt(&mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "the bot exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the bot did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// How many times the bot was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// The bot's log (stderr of every run).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// slixmpp persons, each a device of an account, in one Python process.
pub struct Persons {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Persons {
    pub fn start(prosody: &Prosody) -> Self {
        let python = repo_root().join(".venv-xmpp/bin/python3");
        let mut child = Command::new(python)
            .arg(repo_root().join("tests/peers/xmpp_person.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            port: prosody.port,
        }
    }

    pub fn call(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let response: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("persons: bad line {line:?}: {e}"));
        assert_eq!(
            response["ok"], true,
            "persons: {request} failed: {response}"
        );
        response
    }

    /// Logs a device in (`ns`: "omemo03" or "omemo2"); its device id.
    pub fn login(&mut self, name: &str, jid: &str, password: &str, ns: &str) -> u64 {
        let host = "127.0.0.1";
        let answer = self.call(json!({"op": "login", "name": name, "jid": jid,
            "password": password, "host": host, "port": self.port, "ns": ns}));
        answer["device_id"].as_u64().unwrap()
    }

    pub fn send(&mut self, name: &str, body: &str) {
        self.call(json!({"op": "send", "name": name, "to": BOT, "body": body}));
    }

    /// The bot's answers this device decrypted, once there are `count` (or the time is up);
    /// and the seconds from its last send to the last answer.
    pub fn answers(&mut self, name: &str, count: usize, timeout_s: f64) -> (Vec<String>, f64) {
        let answer = self.call(json!({"op": "wait_for", "name": name, "from": BOT,
            "count": count, "timeout_s": timeout_s}));
        let bodies = answer["bodies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_owned())
            .collect();
        (
            bodies,
            answer["seconds_to_last"].as_f64().unwrap_or(f64::NAN),
        )
    }
}

impl Drop for Persons {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
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
