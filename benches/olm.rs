//! Olm benchmarks: olmo and vodozemac side by side, in the same run.
//!
//! The criterion groups give the standard reports. After them a summary measures every row
//! again with a plain timing loop (median of several batches; setup and drops outside the
//! timed region) and prints olmo's time, vodozemac's, their ratio and the target ratio, followed
//! by the stored sizes of an account and a session in each library's formats.
//!
//! `OLMO_BENCH_QUICK=1` shortens every measurement so the whole
//! bench runs in seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "common/summary.rs"]
mod summary;

use std::hint::black_box;
use std::time::Duration;

use summary::{Row, batch_runner, budget, configure, print_table, row, smoke_test};

use criterion::{BatchSize, Criterion};
use olmo::crypto::Curve25519PublicKey;
use olmo::olm::{Account, OlmMessage, Session};
use olmo::persist::StorageKey;
use vodozemac::olm::{
    Account as VAccount, AccountPickle as VAccountPickle, OlmMessage as VOlmMessage,
    Session as VSession, SessionConfig, SessionPickle as VSessionPickle,
};

/// The plaintext of the encrypt and decrypt rows.
const PLAINTEXT: [u8; 256] = [0x5a; 256];
/// One-time keys held by the account of the restore row.
const RESTORE_ONE_TIME_KEYS: usize = 50;
/// Ping-pong rounds before a session is saved, so it carries several receiving chains.
const SESSION_ROUNDS: usize = 3;
const STORAGE_KEY: [u8; 32] = [0x42; 32];

fn storage_key() -> StorageKey {
    StorageKey::from_bytes(STORAGE_KEY)
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// An account holding one fresh one-time key, and that key.
fn olmo_bob() -> (Account, Curve25519PublicKey) {
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    bob.mark_keys_as_published();
    (bob, otk)
}

fn vodo_bob() -> (VAccount, vodozemac::Curve25519PublicKey) {
    let mut bob = VAccount::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    (bob, otk)
}

fn olmo_establish(
    alice: &Account,
    bob: &mut Account,
    otk: Curve25519PublicKey,
) -> (Session, Session) {
    let mut outbound = alice
        .create_outbound_session(bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(pre_key) = outbound.encrypt(&PLAINTEXT).unwrap() else {
        panic!("the first message is a pre-key message")
    };
    let inbound = bob
        .create_inbound_session(alice.curve25519_key(), &pre_key)
        .unwrap();
    (outbound, inbound.session)
}

fn vodo_establish(
    alice: &VAccount,
    bob: &mut VAccount,
    otk: vodozemac::Curve25519PublicKey,
) -> (VSession, VSession) {
    let mut outbound = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let VOlmMessage::PreKey(pre_key) = outbound.encrypt(PLAINTEXT).unwrap() else {
        panic!("the first message is a pre-key message")
    };
    let inbound = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &pre_key)
        .unwrap();
    (outbound, inbound.session)
}

/// One round: Alice → Bob, Bob → Alice. Each encrypt after a receive is a ratchet step.
fn olmo_round(alice: &mut Session, bob: &mut Session) {
    let message = alice.encrypt(&PLAINTEXT).unwrap();
    black_box(bob.decrypt(&message).unwrap());
    let reply = bob.encrypt(&PLAINTEXT).unwrap();
    black_box(alice.decrypt(&reply).unwrap());
}

fn vodo_round(alice: &mut VSession, bob: &mut VSession) {
    let message = alice.encrypt(PLAINTEXT).unwrap();
    black_box(bob.decrypt(&message).unwrap());
    let reply = bob.encrypt(PLAINTEXT).unwrap();
    black_box(alice.decrypt(&reply).unwrap());
}

/// A pair of sessions that have exchanged `rounds` rounds.
fn olmo_pair(rounds: usize) -> (Session, Session) {
    let alice = Account::new();
    let (mut bob, otk) = olmo_bob();
    let (mut a, mut b) = olmo_establish(&alice, &mut bob, otk);
    for _ in 0..rounds {
        olmo_round(&mut a, &mut b);
    }
    (a, b)
}

fn vodo_pair(rounds: usize) -> (VSession, VSession) {
    let alice = VAccount::new();
    let (mut bob, otk) = vodo_bob();
    let (mut a, mut b) = vodo_establish(&alice, &mut bob, otk);
    for _ in 0..rounds {
        vodo_round(&mut a, &mut b);
    }
    (a, b)
}

/// Established sessions in the sending steady state: Alice has received a reply and sent once
/// since, so further encrypts stay in her current chain.
fn olmo_sender() -> (Session, Session) {
    let (mut a, mut b) = olmo_pair(1);
    let message = a.encrypt(&PLAINTEXT).unwrap();
    b.decrypt(&message).unwrap();
    (a, b)
}

fn vodo_sender() -> (VSession, VSession) {
    let (mut a, mut b) = vodo_pair(1);
    let message = a.encrypt(PLAINTEXT).unwrap();
    b.decrypt(&message).unwrap();
    (a, b)
}

fn vodo_clone(session: &VSession) -> VSession {
    VSession::from_pickle(session.pickle())
}

/// Bob's session (already in Alice's current chain) and the next message of that chain.
fn olmo_receiver() -> (Session, OlmMessage) {
    let (mut a, b) = olmo_sender();
    (b, a.encrypt(&PLAINTEXT).unwrap())
}

fn vodo_receiver() -> (VSession, VOlmMessage) {
    let (mut a, b) = vodo_sender();
    (b, a.encrypt(PLAINTEXT).unwrap())
}

/// The largest gap a receiver walks before it can check a message's MAC.
const FORGED_GAP: usize = 1_999;

/// Bob's session and a message `FORGED_GAP` steps ahead in Alice's chain with its MAC broken:
/// the most work a forger can make a receiver do per message (every chain step up to the MAC).
fn olmo_forged() -> (Session, OlmMessage) {
    let (mut a, b) = olmo_sender();
    let mut message = a.encrypt(&PLAINTEXT).unwrap();
    for _ in 0..FORGED_GAP {
        message = a.encrypt(&PLAINTEXT).unwrap();
    }
    let mut bytes = message.as_bytes().to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    let forged = OlmMessage::from_parts(message.message_type().as_u8(), &bytes).unwrap();
    (b, forged)
}

fn vodo_forged() -> (VSession, VOlmMessage) {
    let (mut a, b) = vodo_sender();
    let mut message = a.encrypt(PLAINTEXT).unwrap();
    for _ in 0..FORGED_GAP {
        message = a.encrypt(PLAINTEXT).unwrap();
    }
    let (message_type, mut bytes) = message.to_parts();
    *bytes.last_mut().unwrap() ^= 1;
    (b, VOlmMessage::from_parts(message_type, &bytes).unwrap())
}

fn olmo_account_with_keys() -> Account {
    let mut account = Account::new();
    account.generate_one_time_keys(RESTORE_ONE_TIME_KEYS);
    account
}

fn vodo_account_with_keys() -> VAccount {
    let mut account = VAccount::new();
    account.generate_one_time_keys(RESTORE_ONE_TIME_KEYS);
    account
}

// ---------------------------------------------------------------------------------------------
// Criterion groups
// ---------------------------------------------------------------------------------------------

fn bench_account_creation(c: &mut Criterion) {
    let mut group = c.benchmark_group("account creation");
    configure(&mut group);
    group.bench_function("olmo", |b| b.iter(Account::new));
    group.bench_function("vodozemac", |b| b.iter(VAccount::new));
    group.finish();
}

fn bench_session_establishment(c: &mut Criterion) {
    let mut group = c.benchmark_group("session establishment");
    configure(&mut group);
    let alice = Account::new();
    group.bench_function("olmo", |b| {
        b.iter_batched(
            olmo_bob,
            |(mut bob, otk)| olmo_establish(&alice, &mut bob, otk),
            BatchSize::SmallInput,
        );
    });
    let valice = VAccount::new();
    group.bench_function("vodozemac", |b| {
        b.iter_batched(
            vodo_bob,
            |(mut bob, otk)| vodo_establish(&valice, &mut bob, otk),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_encrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("encrypt");
    configure(&mut group);
    let (mut session, _) = olmo_sender();
    group.bench_function("olmo", |b| {
        b.iter(|| session.encrypt(black_box(&PLAINTEXT)).unwrap());
    });
    let (mut vsession, _) = vodo_sender();
    group.bench_function("vodozemac", |b| {
        b.iter(|| vsession.encrypt(black_box(PLAINTEXT)).unwrap());
    });
    group.finish();
}

fn bench_decrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("decrypt");
    configure(&mut group);
    let (session, message) = olmo_receiver();
    group.bench_function("olmo", |b| {
        b.iter_batched(
            || (session.clone(), message.clone()),
            |(mut session, message)| session.decrypt(&message).unwrap(),
            BatchSize::SmallInput,
        );
    });
    let (vsession, vmessage) = vodo_receiver();
    group.bench_function("vodozemac", |b| {
        b.iter_batched(
            || (vodo_clone(&vsession), vmessage.clone()),
            |(mut session, message)| session.decrypt(&message).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping-pong");
    configure(&mut group);
    let (mut a, mut b) = olmo_pair(0);
    group.bench_function("olmo", |bencher| {
        bencher.iter(|| olmo_round(&mut a, &mut b))
    });
    let (mut va, mut vb) = vodo_pair(0);
    group.bench_function("vodozemac", |bencher| {
        bencher.iter(|| vodo_round(&mut va, &mut vb));
    });
    group.finish();
}

fn bench_account_restore(c: &mut Criterion) {
    let mut group = c.benchmark_group("account restore (50 one-time keys)");
    configure(&mut group);
    let key = storage_key();
    let blob = olmo_account_with_keys().save(&key);
    group.bench_function("olmo", |b| {
        b.iter(|| Account::restore(black_box(&blob), &key).unwrap());
    });
    let pickle = vodo_account_with_keys().pickle().encrypt(&STORAGE_KEY);
    group.bench_function("vodozemac", |b| {
        b.iter(|| {
            VAccount::from_pickle(
                VAccountPickle::from_encrypted(black_box(&pickle), &STORAGE_KEY).unwrap(),
            )
        });
    });
    group.finish();
}

fn bench_session_persistence(c: &mut Criterion) {
    let mut group = c.benchmark_group("session save+restore");
    configure(&mut group);
    let key = storage_key();
    let (session, _) = olmo_pair(SESSION_ROUNDS);
    group.bench_function("olmo", |b| {
        b.iter(|| Session::restore(&black_box(&session).save(&key), &key).unwrap());
    });
    let (vsession, _) = vodo_pair(SESSION_ROUNDS);
    group.bench_function("vodozemac", |b| {
        b.iter(|| {
            let pickle = black_box(&vsession).pickle().encrypt(&STORAGE_KEY);
            VSession::from_pickle(VSessionPickle::from_encrypted(&pickle, &STORAGE_KEY).unwrap())
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

fn summary_rows(budget: Duration) -> Vec<Row> {
    let key = storage_key();
    let mut rows = Vec::new();

    rows.push(row(
        "account creation",
        1.0,
        budget,
        batch_runner(|| (), |()| Account::new()),
        batch_runner(|| (), |()| VAccount::new()),
    ));

    let alice = Account::new();
    let valice = VAccount::new();
    rows.push(row(
        "session establishment",
        1.0,
        budget,
        batch_runner(olmo_bob, |(mut bob, otk)| {
            olmo_establish(&alice, &mut bob, otk)
        }),
        batch_runner(vodo_bob, |(mut bob, otk)| {
            vodo_establish(&valice, &mut bob, otk)
        }),
    ));

    let (mut session, _) = olmo_sender();
    let (mut vsession, _) = vodo_sender();
    rows.push(row(
        "encrypt (256 B, same chain)",
        0.3,
        budget,
        batch_runner(|| (), |()| session.encrypt(&PLAINTEXT).unwrap()),
        batch_runner(|| (), |()| vsession.encrypt(PLAINTEXT).unwrap()),
    ));

    let (session, message) = olmo_receiver();
    let (vsession, vmessage) = vodo_receiver();
    rows.push(row(
        "decrypt (256 B)",
        1.0,
        budget,
        batch_runner(
            || (session.clone(), message.clone()),
            |(mut s, m)| s.decrypt(&m).unwrap(),
        ),
        batch_runner(
            || (vodo_clone(&vsession), vmessage.clone()),
            |(mut s, m)| s.decrypt(&m).unwrap(),
        ),
    ));

    let (session, forged) = olmo_forged();
    let (vsession, vforged) = vodo_forged();
    rows.push(row(
        "forged, 1,999 steps ahead (rejected)",
        1.0,
        budget,
        batch_runner(
            || (session.clone(), forged.clone()),
            |(mut s, m)| s.decrypt(&m).unwrap_err(),
        ),
        batch_runner(
            || (vodo_clone(&vsession), vforged.clone()),
            |(mut s, m)| s.decrypt(&m).unwrap_err(),
        ),
    ));

    let (mut a, mut b) = olmo_pair(0);
    let (mut va, mut vb) = vodo_pair(0);
    rows.push(row(
        "ping-pong round (2 steps)",
        1.0,
        budget,
        batch_runner(|| (), |()| olmo_round(&mut a, &mut b)),
        batch_runner(|| (), |()| vodo_round(&mut va, &mut vb)),
    ));

    let blob = olmo_account_with_keys().save(&key);
    let pickle = vodo_account_with_keys().pickle().encrypt(&STORAGE_KEY);
    rows.push(row(
        "account restore (50 OTKs)",
        0.2,
        budget,
        batch_runner(|| (), |()| Account::restore(&blob, &key).unwrap()),
        batch_runner(
            || (),
            |()| {
                VAccount::from_pickle(
                    VAccountPickle::from_encrypted(&pickle, &STORAGE_KEY).unwrap(),
                )
            },
        ),
    ));

    let (session, _) = olmo_pair(SESSION_ROUNDS);
    let (vsession, _) = vodo_pair(SESSION_ROUNDS);
    rows.push(row(
        "session save+restore",
        1.0,
        budget,
        batch_runner(
            || (),
            |()| Session::restore(&session.save(&key), &key).unwrap(),
        ),
        batch_runner(
            || (),
            |()| {
                let pickle = vsession.pickle().encrypt(&STORAGE_KEY);
                VSession::from_pickle(
                    VSessionPickle::from_encrypted(&pickle, &STORAGE_KEY).unwrap(),
                )
            },
        ),
    ));

    rows
}

/// Length of unpadded base64 of `n` bytes.
fn base64_length(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

fn print_sizes() {
    let key = storage_key();
    let account = olmo_account_with_keys();
    let vaccount = vodo_account_with_keys();
    let (session, _) = olmo_pair(SESSION_ROUNDS);
    let (vsession, _) = vodo_pair(SESSION_ROUNDS);

    let account_blob = account.save(&key).len();
    let session_blob = session.save(&key).len();
    let vaccount_pickle = vaccount.pickle().encrypt(&STORAGE_KEY).len();
    let vsession_pickle = vsession.pickle().encrypt(&STORAGE_KEY).len();
    let account_libolm = account.to_libolm_pickle(&STORAGE_KEY).len();
    let session_libolm = session.to_libolm_pickle(&STORAGE_KEY).len();
    let vaccount_libolm = vaccount.to_libolm_pickle(&STORAGE_KEY).unwrap().len();

    println!();
    println!(
        "stored sizes (account with {RESTORE_ONE_TIME_KEYS} one-time keys; session after \
         {SESSION_ROUNDS} ping-pong rounds)"
    );
    println!(
        "{:<42} {:>10} {:>14} {:>10}",
        "object", "olmo", "olmo (base64)", "vodozemac"
    );
    println!("{}", "-".repeat(79));
    println!(
        "{:<42} {:>10} {:>14} {:>10}",
        "account: save / pickle().encrypt",
        account_blob,
        base64_length(account_blob),
        vaccount_pickle
    );
    println!(
        "{:<42} {:>10} {:>14} {:>10}",
        "session: save / pickle().encrypt",
        session_blob,
        base64_length(session_blob),
        vsession_pickle
    );
    println!(
        "{:<42} {:>10} {:>14} {:>10}",
        "account: libolm pickle (base64)", account_libolm, "-", vaccount_libolm
    );
    println!(
        "{:<42} {:>10} {:>14} {:>10}",
        "session: libolm pickle (base64)", session_libolm, "-", "n/a"
    );
    println!(
        "(olmo's blob is raw bytes, shown also as its unpadded base64 length; vodozemac's \
         pickles are base64 strings; vodozemac 0.11 cannot export a session to libolm)"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");

    let mut criterion = Criterion::default().configure_from_args();
    bench_account_creation(&mut criterion);
    bench_session_establishment(&mut criterion);
    bench_encrypt(&mut criterion);
    bench_decrypt(&mut criterion);
    bench_ping_pong(&mut criterion);
    bench_account_restore(&mut criterion);
    bench_session_persistence(&mut criterion);
    criterion.final_summary();

    if listing || smoke_test() {
        return;
    }
    print_table(&summary_rows(budget()));
    print_sizes();
}
