//! The bot against a real Prosody with slixmpp persons: Alice speaks OMEMO 0.3 (slixmpp-omemo),
//! Bob OMEMO 2 (python-omemo's SessionManager with twomemo); messages both ways, the bot
//! stopped with Ctrl-C and later killed with SIGKILL while they keep writing (each message
//! answered once from the archive, none twice), and a new device of each person, which the bot
//! learns from the server's PEP push (it reads a contact's device lists once per session). The
//! bot's added latency per message is printed.
//!
//! Needs Prosody and `.venv-xmpp` (`.ci/setup-xmpp.sh`). Without them the test says it skipped,
//! unless `CI` is set: then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod live;

use live::{Bot, Persons, Prosody, missing_tools};

/// Messages each person sends while the bot is up, for the latency figures.
const LIVE: usize = 10;
/// Messages each person sends at once before the bot is killed.
const BURST: usize = 5;
/// Alice speaks OMEMO 0.3, Bob OMEMO 2.
const PEOPLE: [&str; 2] = ["alice", "bob"];

/// Each person sends `count` more messages without waiting.
fn send_each(persons: &mut Persons, sent: &mut [usize; 2], count: usize) {
    for (p, name) in PEOPLE.iter().enumerate() {
        for _ in 0..count {
            persons.send(name, &format!("{name} {}", sent[p]));
            sent[p] += 1;
        }
    }
}

/// Every message each person sent is answered, once, in order.
fn expect_all(persons: &mut Persons, sent: &[usize; 2], when: &str) {
    for (p, name) in PEOPLE.iter().enumerate() {
        let (answers, _) = persons.answers(name, sent[p], 30.0);
        assert_eq!(answers, echoes(name, 0..sent[p]), "{name} {when}");
    }
}

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
    let mut sent = [0usize; 2];
    let mut round_trips = Vec::new();
    for _ in 0..LIVE {
        for (p, name) in PEOPLE.iter().enumerate() {
            persons.send(name, &format!("{name} {}", sent[p]));
            sent[p] += 1;
            let (answers, seconds) = persons.answers(name, sent[p], 20.0);
            assert_eq!(answers, echoes(name, 0..sent[p]), "{name}");
            round_trips.push(seconds * 1e3);
        }
    }

    // Ctrl-C; both write while it is away; it answers from the archive when back.
    bot.interrupt();
    send_each(&mut persons, &mut sent, 1);
    bot.start();
    expect_all(&mut persons, &sent, "after Ctrl-C");

    // SIGKILL in the middle of a burst; both write while it is away; every message is
    // answered once when it is back.
    send_each(&mut persons, &mut sent, BURST);
    persons.answers("bob", sent[1] - BURST + 1, 20.0); // the bot is at work
    bot.kill();
    send_each(&mut persons, &mut sent, 1);
    bot.start();
    expect_all(&mut persons, &sent, "after SIGKILL");

    // A new device of each: the server pushes the new device list (the bot read each list once
    // per session, on its first answer) and the bot answers both devices.
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
    for (p, name) in PEOPLE.iter().enumerate() {
        let tablet = format!("{name} tablet");
        persons.send(&tablet, "from the tablet");
        let (on_tablet, _) = persons.answers(&tablet, 1, 20.0);
        assert_eq!(on_tablet, ["echo: from the tablet"], "{tablet}");
        sent[p] += 1;
        let (on_phone, _) = persons.answers(name, sent[p], 20.0);
        assert_eq!(
            on_phone.last().map(String::as_str),
            Some("echo: from the tablet")
        );
    }

    // Nothing was answered twice: wait, then count again.
    std::thread::sleep(std::time::Duration::from_secs(2));
    for (p, name) in PEOPLE.iter().enumerate() {
        let (answers, _) = persons.answers(name, sent[p] + 1, 0.5);
        assert_eq!(answers.len(), sent[p], "{name}: {answers:?}");
    }
    bot.interrupt();

    let log = bot.log();
    assert!(!log.contains("did not decrypt"), "{log}");
    for name in PEOPLE {
        let jid = format!("{name}@localhost");
        let pushed = format!("bot: device list of {jid} pushed: 1 added");
        assert!(
            log.contains(&pushed),
            "{jid}'s tablet was not pushed: {log}"
        );
        let reads = format!("bot: read the device lists of {jid}");
        let reads = log.lines().filter(|l| l.starts_with(&reads)).count();
        assert!(
            (1..=bot.starts()).contains(&reads),
            "{jid}'s lists read {reads} times in {} sessions",
            bot.starts()
        );
    }
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
