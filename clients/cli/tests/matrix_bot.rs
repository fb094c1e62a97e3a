//! `olmo matrix bot` as an operator runs it: the `olmo` binary (so this test lives in the cli
//! package, the only one where Cargo builds it for tests) against a throw-away Synapse, with
//! matrix-nio persons (tests/peers/nio_person.py): alice with two devices and bob in an
//! encrypted room, messages both ways, the bot stopped with SIGINT and killed with SIGKILL
//! mid-conversation (same device after each start, every message answered exactly once), a
//! new device of alice's (the bot shares its key with it), bob leaving (the bot rotates), a
//! second room. It ends by writing the rooms' `/messages` dumps and a nio key export, and prints
//! the bot's added latency per message (sync received → reply sent), measured by the bot.
//!
//! Needs `.venv-synapse` (`.ci/setup-synapse.sh`) and `.venv` (`.ci/setup-python.sh`). Without
//! `.venv-synapse` the test says it skipped, unless `CI` is set: then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../matrix/tests/processes/mod.rs"]
mod processes;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use olmo::megolm::decrypt_key_export;
use processes::{Person, Synapse, write_dumps};
use serde_json::{Value, json};

/// Every line the bot processes wrote to stderr, in order, across restarts.
type Log = Arc<Mutex<Vec<String>>>;

/// One run of `olmo matrix bot`.
struct Bot {
    child: Child,
    log: Log,
    /// Lines before this one belong to earlier runs.
    first_line: usize,
}

impl Bot {
    fn start(synapse: &Synapse, store: &Path, log: &Log) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_olmo"))
            .args(["matrix", "bot", "--homeserver", &synapse.base_url])
            .args(["--user", "bot", "--poll-seconds", "1", "--store"])
            .arg(store)
            .env("OLMO_BOT_PASSWORD", synapse.password("bot"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let first_line = log.lock().unwrap().len();
        let shared = Arc::clone(log);
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("    | {line}");
                shared.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            log: Arc::clone(log),
            first_line,
        }
    }

    /// Waits for a line of this run containing `text`; returns it.
    fn wait_line(&self, text: &str) -> String {
        self.wait_lines(text, 1).pop().unwrap()
    }

    /// Waits until `n` lines of this run contain `text`; returns them.
    fn wait_lines(&self, text: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log.lock().unwrap();
            let lines: Vec<String> = log[self.first_line..]
                .iter()
                .filter(|l| l.contains(text))
                .cloned()
                .collect();
            if lines.len() >= n {
                return lines;
            }
            drop(log);
            assert!(
                Instant::now() < deadline,
                "the bot never logged {text:?} {n} times"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The device id this run logged as ready.
    fn device(&self) -> String {
        let line = self.wait_line("ready: ");
        line.rsplit(' ').next().unwrap().to_owned()
    }

    /// Ctrl-C: the bot finishes its step and exits with success.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the bot did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "the bot stopped with {status}");
        self.wait_line("stopped");
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many of `person`'s decrypted messages in `room` have `body`.
fn count(person: &mut Person, room: &str, body: &str) -> usize {
    person.sync();
    let (messages, _) = person.messages(room);
    messages.iter().filter(|m| m["body"] == json!(body)).count()
}

fn session_of(message: &Value) -> String {
    message["session_id"].as_str().unwrap().to_owned()
}

/// The bot's own figures: milliseconds from a sync's arrival to the reply sent, for the first
/// reply after each sync (later ones also wait for those before them), and of those the
/// milliseconds spent waiting for the homeserver, each sorted.
fn latencies(log: &Log) -> (Vec<f64>, Vec<f64>) {
    let log = log.lock().unwrap();
    let (mut total, mut waiting) = (Vec::new(), Vec::new());
    for line in log.iter() {
        let Some(figures) = line.split(": reply 1 since the sync, ").nth(1) else {
            continue;
        };
        let Some((after, of_it)) = figures.split_once(" ms after it, ") else {
            continue;
        };
        let of_it = of_it.trim_end_matches(" ms of it waiting for the homeserver");
        total.push(after.parse::<f64>().unwrap());
        waiting.push(of_it.parse::<f64>().unwrap());
    }
    total.sort_by(f64::total_cmp);
    waiting.sort_by(f64::total_cmp);
    (total, waiting)
}

/// Logs the time of each step, so a slow one shows in the test's output.
struct Clock(Instant, Instant);

impl Clock {
    fn step(&mut self, name: &str) {
        let now = Instant::now();
        eprintln!(
            "{:>6.1} s  {:>5.1} s  {name}",
            now.duration_since(self.0).as_secs_f64(),
            now.duration_since(self.1).as_secs_f64()
        );
        self.1 = now;
    }
}

#[test]
fn olmo_matrix_bot_has_help_and_wants_its_password_from_the_environment() {
    let olmo = env!("CARGO_BIN_EXE_olmo");
    let help = Command::new(olmo)
        .args(["matrix", "bot", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for option in ["--homeserver", "--user", "--store", "--password-env"] {
        assert!(text.contains(option), "{option} missing from {text}");
    }

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bot.sqlite3");
    let run = Command::new(olmo)
        .args([
            "matrix",
            "bot",
            "--homeserver",
            "http://127.0.0.1:9",
            "--user",
            "bot",
        ])
        .args(["--password-env", "OLMO_TEST_UNSET_PASSWORD", "--store"])
        .arg(&store)
        .env_remove("OLMO_TEST_UNSET_PASSWORD")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let error = String::from_utf8_lossy(&run.stderr);
    assert!(error.contains("set OLMO_TEST_UNSET_PASSWORD"), "{error}");
}

#[test]
fn olmo_matrix_bot_answers_nio_persons_on_synapse() {
    let mut clock = Clock(Instant::now(), Instant::now());
    let Some(synapse) = Synapse::start_or_skip(&["alice", "bob", "bot"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bot.sqlite3");
    let log = Log::default();
    let bot = Bot::start(&synapse, &store, &log);
    let device = bot.device();
    let bot_id = "@bot:localhost";
    let mut alice = Person::login(&synapse, "alice", "alice phone");
    let mut laptop = Person::login(&synapse, "alice", "alice laptop");
    let mut bob = Person::login(&synapse, "bob", "bob phone");
    clock.step("synapse, the bot, alice (two devices) and bob");

    let room = alice.peer.call_str(
        json!({"op": "create_room", "invite": [bot_id, bob.user_id], "encrypted": true}),
        "room_id",
    );
    bob.peer.call(json!({"op": "join", "room_id": room}));
    bot.wait_line(&format!("joined {room}"));
    alice.send(&room, "hello bot");
    let first = alice.wait_for(&room, "echo: hello bot");
    assert_eq!(first["sender"], json!(bot_id));
    laptop.wait_for(&room, "echo: hello bot");
    bob.wait_for(&room, "echo: hello bot");
    bob.send(&room, "!ping");
    bob.wait_for(&room, "pong");
    laptop.send(&room, "from alice's laptop");
    alice.wait_for(&room, "echo: from alice's laptop");
    // The bot answers with notices, and answers none (two bots would talk forever).
    let notice = json!({"op": "send", "room_id": room, "body": "a notice", "msgtype": "m.notice"});
    alice.peer.call(notice);
    alice.send(&room, "after the notice");
    alice.wait_for(&room, "echo: after the notice");
    assert_eq!(count(&mut alice, &room, "echo: a notice"), 0);
    clock.step("encrypted room: the bot joins and answers alice's two devices and bob");

    // A clean stop, more messages while the bot is away than a sync's timeline holds (Synapse
    // gives 10), and a restart as the same device that answers them all.
    bot.interrupt();
    let away: Vec<String> = (1..=12).map(|n| format!("while away {n}")).collect();
    for body in &away {
        alice.send(&room, body);
    }
    let bot = Bot::start(&synapse, &store, &log);
    assert_eq!(bot.device(), device, "a new device after a restart");
    for body in &away {
        let answer = alice.wait_for(&room, &format!("echo: {body}"));
        assert_eq!(
            session_of(&answer),
            session_of(&first),
            "the bot's session survives"
        );
    }
    bob.send(&room, "after the restart");
    bob.wait_for(&room, "echo: after the restart");
    clock.step("SIGINT, 12 messages meanwhile, restart: same device, same session, all answered");

    // SIGKILL in the middle of a burst: after the restart every message is answered once.
    let answered = bot.wait_lines("answered", 1).len();
    let burst: Vec<String> = (1..=4).map(|n| format!("burst {n}")).collect();
    for body in &burst {
        alice.send(&room, body);
    }
    bot.wait_lines("answered", answered + 1);
    bot.kill();
    let bot = Bot::start(&synapse, &store, &log);
    assert_eq!(bot.device(), device, "a new device after SIGKILL");
    for body in &burst {
        alice.wait_for(&room, &format!("echo: {body}"));
    }
    bob.send(&room, "after the kill");
    bob.wait_for(&room, "echo: after the kill");
    for body in &burst {
        let echoes = count(&mut alice, &room, &format!("echo: {body}"));
        assert_eq!(echoes, 1, "{body:?} answered {echoes} times");
    }
    alice.sync();
    let devices = alice.peer.call(json!({"op": "devices", "user_id": bot_id}));
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1, "{devices}");
    clock.step("SIGKILL mid-burst: each message answered exactly once, still one device");

    // A new device of alice's: the bot lists it, and it reads the bot's next message.
    let mut tablet = Person::login(&synapse, "alice", "alice tablet");
    // (Asked again if the bot answered before the device list reached it.)
    let listings = |alice: &mut Person| {
        let (messages, _) = alice.messages(&room);
        let bodies = messages.iter().filter_map(|m| m["body"].as_str());
        bodies
            .filter(|b| b.starts_with("your devices"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let listed = (0..3)
        .find_map(|_| {
            let before = listings(&mut alice).len();
            alice.send(&room, "!devices");
            let deadline = Instant::now() + Duration::from_secs(20);
            while listings(&mut alice).len() == before {
                assert!(Instant::now() < deadline, "no answer to !devices");
                alice.peer.call(json!({"op": "sync", "timeout_ms": 500}));
            }
            listings(&mut alice)
                .pop()
                .filter(|l| l.contains(&tablet.device_id))
        })
        .expect("the bot never listed alice's tablet");
    assert!(listed.contains(&alice.device_id) && listed.contains(&laptop.device_id));
    alice.send(&room, "for the tablet too");
    let shared = tablet.wait_for(&room, "echo: for the tablet too");
    tablet.send(&room, "from the tablet");
    tablet.wait_for(&room, "echo: from the tablet");
    clock.step("alice's new device: the bot shares its key with it");

    // Bob leaves: the bot's next message is in a new session bob never gets.
    bob.peer.call(json!({"op": "leave", "room_id": room}));
    alice.send(&room, "bob has left");
    let rotated = alice.wait_for(&room, "echo: bob has left");
    assert_ne!(session_of(&rotated), session_of(&shared), "no rotation");
    let export = dir.path().join("bob.keys");
    bob.peer
        .call(json!({"op": "export_keys", "path": export, "passphrase": "bob"}));
    let bob_keys = decrypt_key_export(&std::fs::read_to_string(&export).unwrap(), "bob").unwrap();
    let bob_sessions: Vec<&str> = bob_keys.iter().map(|k| k.session_id.as_str()).collect();
    assert!(bob_sessions.contains(&session_of(&shared).as_str()));
    assert!(
        !bob_sessions.contains(&session_of(&rotated).as_str()),
        "bob got the new key"
    );
    clock.step("bob left: the bot rotated, bob cannot read it");

    // A second room, with a message from before the bot was invited: history, not news.
    let second = alice
        .peer
        .call_str(json!({"op": "create_room", "encrypted": true}), "room_id");
    alice.send(&second, "before the bot came");
    alice
        .peer
        .call(json!({"op": "invite", "room_id": second, "user_id": bot_id}));
    bot.wait_line(&format!("joined {second}"));
    alice.send(&second, "in the second room");
    let other = alice.wait_for(&second, "echo: in the second room");
    tablet.wait_for(&second, "echo: in the second room");
    assert_eq!(count(&mut alice, &second, "echo: before the bot came"), 0);
    let log_now = log.lock().unwrap().clone();
    assert!(
        !log_now.iter().any(|l| l.contains("cannot")),
        "{log_now:#?}"
    );
    clock.step("a second room");

    // The dumps `olmo matrix decrypt` reads: every bot session is in alice's export.
    let dumps = write_dumps(&mut alice, &[&room, &second], dir.path());
    let text = std::fs::read_to_string(&dumps.key_export).unwrap();
    let keys = decrypt_key_export(&text, &dumps.passphrase).unwrap();
    for message in [&first, &rotated, &other] {
        let session = session_of(message);
        assert!(
            keys.iter().any(|k| k.session_id == session),
            "{session} not exported"
        );
    }
    for (path, decrypted) in dumps.rooms.iter().zip(&dumps.decrypted) {
        let dump: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let encrypted: Vec<&str> = dump["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == json!("m.room.encrypted"))
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        // Every message nio read is in the dump, still encrypted.
        assert!(decrypted.len() >= 2);
        for message in decrypted {
            assert!(
                encrypted.contains(&message["event_id"].as_str().unwrap()),
                "{message}"
            );
        }
    }
    // `olmo matrix decrypt` with nio's key export reads every message nio read, as nio read it.
    for (path, decrypted) in dumps.rooms.iter().zip(&dumps.decrypted) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_olmo"))
            .args(["matrix", "decrypt", "--quiet", "--keys"])
            .arg(&dumps.key_export)
            .arg(path)
            .env("OLMO_PASSPHRASE", &dumps.passphrase)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let lines: Vec<Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        for message in decrypted {
            let line = lines
                .iter()
                .find(|line| line["event_id"] == message["event_id"])
                .unwrap_or_else(|| panic!("{message} not in olmo's output"));
            assert_eq!(line["status"], "decrypted", "{line}");
            assert_eq!(line["event"]["content"]["body"], message["body"], "{line}");
        }
    }
    bot.interrupt();
    clock.step("dumps written, the bot stopped");

    let (total, waiting) = latencies(&log);
    let at = |figures: &[f64], q: f64| figures[((figures.len() - 1) as f64 * q).round() as usize];
    // Straight to stderr: the harness captures `eprintln!` of a passing test.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "the bot's added latency per message (sync received -> reply sent), {} replies: \
         median {:.1} ms (of it waiting for Synapse {:.1} ms), p90 {:.1} ms, max {:.1} ms",
        total.len(),
        at(&total, 0.5),
        at(&waiting, 0.5),
        at(&total, 0.9),
        at(&total, 1.0)
    );
    if let Some((replies, ms)) = largest_batch(&log) {
        let _ = writeln!(
            std::io::stderr(),
            "the largest batch: {replies} replies after one sync in {ms:.1} ms ({:.1} ms each)",
            ms / f64::from(replies)
        );
    }
}

/// The most replies the bot sent after one sync, and the milliseconds until the last was sent.
fn largest_batch(log: &Log) -> Option<(u32, f64)> {
    let log = log.lock().unwrap();
    log.iter()
        .filter_map(|line| {
            let (_, rest) = line.split_once(": reply ")?;
            let (n, rest) = rest.split_once(" since the sync, ")?;
            let (ms, _) = rest.split_once(" ms after it")?;
            Some((n.parse().ok()?, ms.parse().ok()?))
        })
        .max_by_key(|&(n, _): &(u32, f64)| n)
}
