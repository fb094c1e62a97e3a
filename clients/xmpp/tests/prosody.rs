//! The bot against a real Prosody with slixmpp persons: Alice speaks OMEMO 0.3 (slixmpp-omemo),
//! Bob OMEMO 2 (python-omemo's SessionManager with twomemo); messages both ways, the bot
//! stopped with Ctrl-C and later killed with SIGKILL while they keep writing (each message
//! answered once from the archive, none twice), and a new device of each person. The bot's
//! added latency per message is printed.
//!
//! Needs Prosody and `.venv-xmpp` (`.ci/setup-xmpp.sh`). Without them the test says it skipped,
//! unless `CI` is set: then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod live;

use live::{Bot, Persons, Prosody, missing_tools};

/// Messages each person sends while the bot is up, for the latency figures.
const LIVE: usize = 10;

fn echoes(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("echo: {prefix} {i}")).collect()
}

#[test]
fn the_bot_answers_both_versions_across_restarts_and_new_devices() {
    if let Some(missing) = missing_tools() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: {missing} (run .ci/setup-xmpp.sh)"
        );
        eprintln!("skipped: {missing} (run .ci/setup-xmpp.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prosody = Prosody::start(dir.path());
    prosody.register("alice", "alice password");
    prosody.register("bob", "bob password");
    let mut bot = Bot::new(&prosody, dir.path());
    bot.start();
    let mut persons = Persons::start(&prosody);
    persons.login(
        "alice",
        "alice@localhost/phone",
        "alice password",
        "omemo03",
    );
    persons.login("bob", "bob@localhost/phone", "bob password", "omemo2");

    // Live: each message is answered, in each person's version.
    let mut round_trips = Vec::new();
    for i in 0..LIVE {
        for name in ["alice", "bob"] {
            persons.send(name, &format!("{name} {i}"));
            let (answers, seconds) = persons.answers(name, i + 1, 20.0);
            assert_eq!(answers, echoes(name, 0..i + 1), "{name}");
            round_trips.push(seconds * 1e3);
        }
    }

    // Ctrl-C; both write while it is away; it answers from the archive when back.
    bot.interrupt();
    persons.send("alice", &format!("alice {LIVE}"));
    persons.send("bob", &format!("bob {LIVE}"));
    bot.start();
    for name in ["alice", "bob"] {
        let (answers, _) = persons.answers(name, LIVE + 1, 30.0);
        assert_eq!(answers, echoes(name, 0..LIVE + 1), "{name} after a restart");
    }

    // SIGKILL; again; and once more it answers each message once.
    bot.kill();
    persons.send("alice", &format!("alice {}", LIVE + 1));
    persons.send("bob", &format!("bob {}", LIVE + 1));
    bot.start();
    for name in ["alice", "bob"] {
        let (answers, _) = persons.answers(name, LIVE + 2, 30.0);
        assert_eq!(answers, echoes(name, 0..LIVE + 2), "{name} after a kill");
    }

    // A new device of each: the bot fetches the new device list and answers both devices.
    persons.login(
        "alice tablet",
        "alice@localhost/tablet",
        "alice password",
        "omemo03",
    );
    persons.login(
        "bob tablet",
        "bob@localhost/tablet",
        "bob password",
        "omemo2",
    );
    for (person, tablet) in [("alice", "alice tablet"), ("bob", "bob tablet")] {
        persons.send(tablet, "from the tablet");
        let (on_tablet, _) = persons.answers(tablet, 1, 20.0);
        assert_eq!(on_tablet, ["echo: from the tablet"], "{tablet}");
        let (on_phone, _) = persons.answers(person, LIVE + 3, 20.0);
        assert_eq!(
            on_phone.last().map(String::as_str),
            Some("echo: from the tablet")
        );
    }

    // Nothing was answered twice: wait, then count again.
    std::thread::sleep(std::time::Duration::from_secs(2));
    for name in ["alice", "bob"] {
        let (answers, _) = persons.answers(name, LIVE + 4, 0.5);
        assert_eq!(answers.len(), LIVE + 3, "{name}: {answers:?}");
    }
    bot.interrupt();

    let log = bot.log();
    assert!(!log.contains("did not decrypt"), "{log}");
    let mut added: Vec<f64> = log
        .lines()
        .filter_map(|line| {
            line.strip_prefix("bot: answered in ")?
                .strip_suffix(" ms")?
                .parse()
                .ok()
        })
        .collect();
    report("bot: stanza in → answer sent", &mut added);
    report("person: send → answer decrypted", &mut round_trips);
}

fn report(what: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    if samples.is_empty() {
        return;
    }
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    println!(
        "{what}: median {median:.2} ms, p90 {p90:.2} ms over {} messages (Prosody on 127.0.0.1)",
        samples.len()
    );
}
