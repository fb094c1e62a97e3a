//! OMEMO benchmarks: each operation of olmo's OMEMO 2 and OMEMO 0.3, next to the sum of the
//! primitives it is made of, measured in the same run.
//!
//! The criterion groups give the standard reports. After them a summary measures every row
//! again with a plain timing loop, alternating batches of the operation with batches of each of
//! its primitives (setup and drops outside the timed region), and prints first every primitive's
//! time per call, then for each operation olmo's time, the sum of its primitives
//! (`Σ count × time per call`, the recipe printed below the table) and `ratio = operation / sum`.
//!
//! The primitives are the cryptography an operation cannot do without: X25519 key generations
//! and exchanges, signature checks, HKDF and HMAC calls, AES, the CSPRNG, and the plain protobuf
//! encoding or decoding of each ratchet message. The ratio is what olmo's glue costs on top:
//! copies of sessions so that a failed message changes nothing (atomic commit), the typed
//! `<encrypted>` and `<bundle>` elements (their XML text is neither written nor parsed in these
//! rows), the session store's lookups, protobuf canonical-form checks, key validation,
//! allocation, and any cryptography done more than once. A ratio near 1 means little overhead;
//! 2 means the glue costs as much as the cryptography.
//!
//! Rows: a session built from a parsed `<bundle>` (`VerifiedBundle::from_element`, which verifies the
//! signature, then `OmemoDevice::build_session`); one message encrypted to 1, 10 and 100 devices
//! whose sessions are established and confirmed (no key exchange: the sender repeats messages
//! on its current sending chain, which advances, so no ratchet step is due); one message
//! decrypted on an established session (the next message of the chain each time); and the
//! first message of a key exchange decrypted by its responder.
//!
//! `OLMO_BENCH_QUICK=1` shortens every measurement so the whole bench runs in seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "common/summary.rs"]
#[allow(dead_code)]
mod summary;

#[path = "omemo/measure.rs"]
mod measure;

#[path = "omemo/primitives.rs"]
mod primitives;

use std::time::Duration;

use measure::{Catalogue, Row, print_recipes, print_table};
use primitives::{Recipes, Shared, Signature, VersionInputs};
use summary::{batch_runner, budget, configure, smoke_test};

use criterion::{BatchSize, Criterion};
use olmo::omemo::stanza::{self, EncryptedElement, Envelope};
use olmo::omemo::{IdentityKey, OmemoDevice, VerifiedBundle, Version};

const ALICE: &str = "alice@example.org";
const ALICE_DEVICE: u32 = 1_001;
const BOB: &str = "bob@example.org";
const BOB_DEVICE: u32 = 2_002;
const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];
/// Recipient devices of the encrypt rows.
const FAN_OUT: [usize; 3] = [1, 10, 100];
/// The message body: about the length of a chat message.
const BODY: &str = "Are we still on for lunch tomorrow? I booked a table at the place near the \
                    station for half past twelve.";
/// Fixed `<rpad>` and `<time>`, so that every OMEMO 2 payload has the same length.
const PADDING: &str = "Xq7LmN2pR9sT4vW8yZ1bC5dF3gH6jK0";
const TIME: &str = "2025-01-01T12:00:00Z";

fn version_name(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "OMEMO 2",
        Version::Omemo03 => "OMEMO 0.3",
    }
}

/// What `OmemoDevice::encrypt_message` takes: an SCE envelope for OMEMO 2, the body for 0.3.
fn plaintext(version: Version) -> Vec<u8> {
    match version {
        Version::Omemo2 => {
            let mut envelope = Envelope::for_body(BODY, ALICE, BOB, Some(TIME), &mut rand::rng());
            envelope.rpad = Some(PADDING.to_owned());
            envelope.serialize().into_bytes()
        }
        Version::Omemo03 => BODY.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Makes `alice` and `bob` a confirmed session pair in `version`: Alice builds a session from
/// Bob's bundle and sends the key exchange, Bob answers with an empty message, then Alice sends
/// once more (her ratchet step) and Bob reads it. Both are then in the steady state: Alice sends
/// on her current chain without a key exchange, Bob reads the next message of that chain.
fn connect(alice: &mut OmemoDevice, bob: &mut OmemoDevice, version: Version) {
    let mut rng = rand::rng();
    let (alice_jid, alice_id) = (alice.jid().to_owned(), alice.device_id());
    let (bob_jid, bob_id) = (bob.jid().to_owned(), bob.device_id());
    let to_bob = [(bob_jid.as_str(), bob_id)];
    let to_alice = [(alice_jid.as_str(), alice_id)];
    let bundle = bob.bundle(version);
    alice
        .build_session(&bob_jid, bob_id, &bundle, &mut rng)
        .unwrap();
    let first = alice
        .encrypt_message(version, &to_bob, &plaintext(version), &mut rng)
        .unwrap();
    bob.decrypt_message(&alice_jid, &first, &mut rng).unwrap();
    let reply = bob.encrypt_empty(version, &to_alice, &mut rng).unwrap();
    alice.decrypt_message(&bob_jid, &reply, &mut rng).unwrap();
    let steady = alice
        .encrypt_message(version, &to_bob, &plaintext(version), &mut rng)
        .unwrap();
    assert!(steady.keys.iter().all(|key| !key.key_exchange));
    bob.decrypt_message(&alice_jid, &steady, &mut rng).unwrap();
}

/// A device with no session, and a peer's bundle as parsed from its `<bundle>` element.
struct BuildFixture {
    alice: OmemoDevice,
    bundle: [stanza::BundleElement; 2],
}

fn build_fixture() -> BuildFixture {
    let bob = OmemoDevice::new(BOB, BOB_DEVICE);
    BuildFixture {
        alice: OmemoDevice::new(ALICE, ALICE_DEVICE),
        bundle: VERSIONS.map(|version| bob.bundle(version).to_element()),
    }
}

fn build_session(alice: &mut OmemoDevice, element: &stanza::BundleElement) {
    let mut rng = rand::rng();
    let bundle = VerifiedBundle::from_element(element).unwrap();
    alice
        .build_session(BOB, BOB_DEVICE, &bundle, &mut rng)
        .unwrap();
}

/// Alice with confirmed sessions, in both versions, to `count` devices of distinct contacts.
struct FanOutFixture {
    alice: OmemoDevice,
    recipients: Vec<(String, u32)>,
    plaintext: [Vec<u8>; 2],
}

fn fan_out_fixture(count: usize) -> FanOutFixture {
    let mut alice = OmemoDevice::new(ALICE, ALICE_DEVICE);
    let recipients: Vec<(String, u32)> = (0..count)
        .map(|i| {
            (
                format!("contact{i}@example.org"),
                3_000 + u32::try_from(i).unwrap(),
            )
        })
        .collect();
    for (jid, device_id) in &recipients {
        let mut device = OmemoDevice::new(jid, *device_id);
        for version in VERSIONS {
            connect(&mut alice, &mut device, version);
        }
    }
    FanOutFixture {
        alice,
        recipients,
        plaintext: VERSIONS.map(plaintext),
    }
}

/// The first `count` recipients, as `OmemoDevice::encrypt_message` takes them.
fn first(recipients: &[(String, u32)], count: usize) -> Vec<(&str, u32)> {
    recipients[..count]
        .iter()
        .map(|(jid, id)| (jid.as_str(), *id))
        .collect()
}

fn encrypt(
    alice: &mut OmemoDevice,
    version: Version,
    to: &[(&str, u32)],
    plaintext: &[u8],
) -> EncryptedElement {
    alice
        .encrypt_message(version, to, plaintext, &mut rand::rng())
        .unwrap()
}

/// A confirmed pair in both versions: Alice writes the messages Bob's rows decrypt.
struct PairFixture {
    alice: OmemoDevice,
    bob: OmemoDevice,
    plaintext: [Vec<u8>; 2],
}

fn pair_fixture() -> PairFixture {
    let mut alice = OmemoDevice::new(ALICE, ALICE_DEVICE);
    let mut bob = OmemoDevice::new(BOB, BOB_DEVICE);
    for version in VERSIONS {
        connect(&mut alice, &mut bob, version);
    }
    PairFixture {
        alice,
        bob,
        plaintext: VERSIONS.map(plaintext),
    }
}

impl PairFixture {
    /// The next message of Alice's chain to Bob.
    fn next_message(&mut self, index: usize) -> EncryptedElement {
        encrypt(
            &mut self.alice,
            VERSIONS[index],
            &[(BOB, BOB_DEVICE)],
            &self.plaintext[index],
        )
    }
}

fn decrypt(bob: &mut OmemoDevice, element: &EncryptedElement) -> olmo::omemo::ReceivedMessage {
    let received = bob
        .decrypt_message(ALICE, element, &mut rand::rng())
        .unwrap();
    assert!(!received.new_session);
    received
}

/// Bob with fresh pre-keys and no session, and Alice's first message to him (a key exchange).
struct KeyExchangeFixture {
    bob: OmemoDevice,
    element: [EncryptedElement; 2],
}

fn key_exchange_fixture() -> KeyExchangeFixture {
    let bob = OmemoDevice::new(BOB, BOB_DEVICE);
    let mut alice = OmemoDevice::new(ALICE, ALICE_DEVICE);
    let element = VERSIONS.map(|version| {
        let bundle = bob.bundle(version);
        alice
            .build_session(BOB, BOB_DEVICE, &bundle, &mut rand::rng())
            .unwrap();
        let element = encrypt(
            &mut alice,
            version,
            &[(BOB, BOB_DEVICE)],
            &plaintext(version),
        );
        assert!(element.keys[0].key_exchange);
        element
    });
    KeyExchangeFixture { bob, element }
}

fn decrypt_key_exchange(
    mut bob: OmemoDevice,
    element: &EncryptedElement,
) -> (OmemoDevice, olmo::omemo::ReceivedMessage) {
    let received = bob
        .decrypt_message(ALICE, element, &mut rand::rng())
        .unwrap();
    assert!(received.new_session);
    (bob, received)
}

struct Fixtures {
    build: BuildFixture,
    fan_out: FanOutFixture,
    pair: PairFixture,
    key_exchange: KeyExchangeFixture,
}

impl Fixtures {
    fn new() -> Self {
        Self {
            build: build_fixture(),
            fan_out: fan_out_fixture(FAN_OUT[FAN_OUT.len() - 1]),
            pair: pair_fixture(),
            key_exchange: key_exchange_fixture(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Criterion groups
// ---------------------------------------------------------------------------------------------

fn bench_session_build(c: &mut Criterion, fixture: &BuildFixture) {
    let mut group = c.benchmark_group("omemo session build (bundle verify + X3DH)");
    configure(&mut group);
    for (index, version) in VERSIONS.into_iter().enumerate() {
        let element = &fixture.bundle[index];
        group.bench_function(version_name(version), |b| {
            b.iter_batched(
                || fixture.alice.clone(),
                |mut alice| {
                    build_session(&mut alice, element);
                    alice
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn bench_encrypt(c: &mut Criterion, fixture: &mut FanOutFixture) {
    let mut group = c.benchmark_group("omemo encrypt (established sessions)");
    configure(&mut group);
    for (index, version) in VERSIONS.into_iter().enumerate() {
        for count in FAN_OUT {
            let FanOutFixture {
                alice,
                recipients,
                plaintext,
            } = &mut *fixture;
            let recipients = first(recipients, count);
            let plaintext = &plaintext[index];
            group.bench_function(format!("{} to {count}", version_name(version)), |b| {
                b.iter(|| encrypt(alice, version, &recipients, plaintext));
            });
        }
    }
    group.finish();
}

fn bench_decrypt(c: &mut Criterion, fixture: &mut PairFixture) {
    let mut group = c.benchmark_group("omemo decrypt (next message)");
    configure(&mut group);
    for (index, version) in VERSIONS.into_iter().enumerate() {
        let PairFixture {
            alice,
            bob,
            plaintext,
        } = &mut *fixture;
        group.bench_function(version_name(version), |b| {
            b.iter_batched(
                || encrypt(alice, version, &[(BOB, BOB_DEVICE)], &plaintext[index]),
                |element| decrypt(bob, &element),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn bench_decrypt_key_exchange(c: &mut Criterion, fixture: &KeyExchangeFixture) {
    let mut group = c.benchmark_group("omemo decrypt key exchange (responder X3DH + message)");
    configure(&mut group);
    for (index, version) in VERSIONS.into_iter().enumerate() {
        let element = &fixture.element[index];
        group.bench_function(version_name(version), |b| {
            b.iter_batched(
                || fixture.bob.clone(),
                |bob| decrypt_key_exchange(bob, element),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

/// One version's primitives, sized from real objects of the fixtures.
fn recipes(catalogue: &mut Catalogue, shared: &Shared, fixtures: &mut Fixtures) -> [Recipes; 2] {
    let bob = OmemoDevice::new(BOB, BOB_DEVICE);
    let mut index = 0;
    VERSIONS.map(|version| {
        let message = fixtures.pair.next_message(index);
        decrypt(&mut fixtures.pair.bob, &message);
        let bundle = bob.bundle(version);
        let signed = bundle.to_element().signed_pre_key;
        let signature = match bundle.identity_key() {
            IdentityKey::Ed25519(key) => Signature::Ed25519 {
                key,
                message: signed,
                signature: bundle.signed_pre_key_signature(),
            },
            IdentityKey::Curve25519(key) => Signature::XEdDsa {
                key,
                message: signed,
                signature: bundle.signed_pre_key_signature(),
            },
        };
        let omemo2 = version == Version::Omemo2;
        let inputs = VersionInputs {
            omemo2,
            payload_length: fixtures.pair.plaintext[index].len(),
            message: message.keys[0].data.clone(),
            key_exchange: fixtures.key_exchange.element[index].keys[0].data.clone(),
            mac_prefix_length: bundle.identity_key().wire_bytes().len() * 2,
            signature,
            x3dh_info: if omemo2 {
                b"OMEMO X3DH"
            } else {
                b"WhisperText"
            },
            root_info: if omemo2 {
                b"OMEMO Root Chain"
            } else {
                b"WhisperRatchet"
            },
            message_key_info: if omemo2 {
                b"OMEMO Message Key Material"
            } else {
                b"WhisperMessageKeys"
            },
        };
        index += 1;
        Recipes::new(catalogue, shared, inputs)
    })
}

fn summary_rows(budget: Duration, fixtures: &mut Fixtures) -> (Catalogue, Vec<Row>) {
    let mut catalogue = Catalogue::default();
    let shared = Shared::new(&mut catalogue);
    let recipes = recipes(&mut catalogue, &shared, fixtures);
    let mut rows = Vec::new();

    for (index, version) in VERSIONS.into_iter().enumerate() {
        let name = version_name(version);
        let recipe = &recipes[index];
        let build = &fixtures.build;
        rows.push(catalogue.row(
            format!("session build ({name})"),
            &recipe.session_build(),
            budget,
            batch_runner(
                || build.alice.clone(),
                |mut alice| {
                    build_session(&mut alice, &build.bundle[index]);
                    alice
                },
            ),
        ));

        for count in FAN_OUT {
            let FanOutFixture {
                alice,
                recipients,
                plaintext,
            } = &mut fixtures.fan_out;
            let recipients = first(recipients, count);
            let plaintext = &plaintext[index];
            rows.push(catalogue.row(
                format!(
                    "encrypt to {count} device{} ({name})",
                    if count == 1 { "" } else { "s" }
                ),
                &recipe.encrypt(u32::try_from(count).unwrap()),
                budget,
                batch_runner(|| (), |()| encrypt(alice, version, &recipients, plaintext)),
            ));
        }

        let PairFixture {
            alice,
            bob,
            plaintext,
        } = &mut fixtures.pair;
        rows.push(catalogue.row(
            format!("decrypt ({name})"),
            &recipe.decrypt(),
            budget,
            batch_runner(
                || encrypt(alice, version, &[(BOB, BOB_DEVICE)], &plaintext[index]),
                |element| decrypt(bob, &element),
            ),
        ));

        let key_exchange = &fixtures.key_exchange;
        rows.push(catalogue.row(
            format!("decrypt key exchange ({name})"),
            &recipe.decrypt_key_exchange(),
            budget,
            batch_runner(
                || key_exchange.bob.clone(),
                |bob| decrypt_key_exchange(bob, &key_exchange.element[index]),
            ),
        ));
    }

    (catalogue, rows)
}

fn print_notes(fixtures: &Fixtures) {
    let [omemo2, omemo03] = &fixtures.pair.plaintext;
    println!(
        "(payloads: an SCE envelope of {} B for OMEMO 2, a body of {} B for 0.3; bundles carry \
         100 one-time pre-keys; encrypt rows reuse one sender whose sending chains advance; \
         decrypt rows read the next message of the chain each time; key-exchange rows decrypt \
         on a fresh copy of the responder; operation inputs, copies and drops are outside the \
         timed region)",
        omemo2.len(),
        omemo03.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");

    let mut fixtures = Fixtures::new();
    let mut criterion = Criterion::default().configure_from_args();
    bench_session_build(&mut criterion, &fixtures.build);
    bench_encrypt(&mut criterion, &mut fixtures.fan_out);
    bench_decrypt(&mut criterion, &mut fixtures.pair);
    bench_decrypt_key_exchange(&mut criterion, &fixtures.key_exchange);
    criterion.final_summary();

    if listing || smoke_test() {
        return;
    }
    let (catalogue, rows) = summary_rows(budget(), &mut fixtures);
    catalogue.print_primitives();
    print_table(&rows);
    print_recipes(&rows);
    print_notes(&fixtures);
}
