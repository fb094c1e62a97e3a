//! Sealed records open only where they were sealed: same table, key and version, same key.

use olmo::persist::StorageKey;
use olmo::store::{Sealer, StoreError};

use super::sealer;
use crate::common::rng::TestRng;

#[test]
fn a_record_opens_where_it_was_sealed_and_nowhere_else() {
    let sealer = sealer();
    let mut rng = TestRng::new(1);
    let sealed = sealer.seal("sessions", b"key-1", 3, 2, b"ratchet state", &mut rng);
    let (schema, plaintext) = sealer.open("sessions", b"key-1", 3, &sealed).unwrap();
    assert_eq!((schema, &plaintext[..]), (2, &b"ratchet state"[..]));

    let moved_key = sealer.open("sessions", b"key-2", 3, &sealed);
    let moved_table = sealer.open("accounts", b"key-1", 3, &sealed);
    let relabelled = sealer.open("sessions", b"key-1", 4, &sealed);
    let other_key =
        Sealer::new(&StorageKey::from_bytes([8; 32])).open("sessions", b"key-1", 3, &sealed);
    for result in [moved_key, moved_table, relabelled, other_key] {
        assert!(
            matches!(result, Err(StoreError::Corrupt { .. })),
            "{result:?}"
        );
    }
    let err = sealer.open("sessions", b"key-2", 3, &sealed).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record sessions/6b65792d32 does not open (altered or moved)"
    );
}

#[test]
fn every_altered_or_truncated_record_is_corrupt_and_nothing_panics() {
    let sealer = sealer();
    let mut rng = TestRng::new(2);
    let sealed = sealer.seal("t", b"k", 1, 1, b"secret bytes", &mut rng);
    for bit in 0..sealed.len() * 8 {
        let mut flipped = sealed.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(sealer.open("t", b"k", 1, &flipped).is_err(), "bit {bit}");
    }
    for length in 0..sealed.len() {
        assert!(
            sealer.open("t", b"k", 1, &sealed[..length]).is_err(),
            "length {length}"
        );
    }
}

#[test]
fn the_same_record_sealed_twice_differs() {
    let sealer = sealer();
    let mut rng = TestRng::new(3);
    let a = sealer.seal("t", b"k", 1, 1, b"same", &mut rng);
    let b = sealer.seal("t", b"k", 1, 1, b"same", &mut rng);
    assert_ne!(a, b, "a fresh nonce every time");
    assert!(!a.windows(4).any(|w| w == b"same"));
}

#[test]
fn names_are_keyed_stable_and_framed() {
    let sealer = sealer();
    let name = sealer.name("rooms", &[b"!room:example.org"]);
    assert_eq!(name, sealer.name("rooms", &[b"!room:example.org"]));
    assert_eq!(name.len(), 32);
    assert_ne!(name, sealer.name("sessions", &[b"!room:example.org"]));
    assert_ne!(
        sealer.name("t", &[b"ab", b"c"]),
        sealer.name("t", &[b"a", b"bc"])
    );
    let other = Sealer::new(&StorageKey::from_bytes([8; 32]));
    assert_ne!(name, other.name("rooms", &[b"!room:example.org"]));
    assert!(!name.windows(5).any(|w| w == b"!room"));
}

#[test]
fn the_sealer_keeps_its_keys_out_of_debug() {
    assert_eq!(format!("{:?}", sealer()), "Sealer(<secret>)");
}

#[test]
fn a_remembering_sealer_opens_exactly_as_a_plain_one() {
    let remembering = sealer().remembering();
    let plain = sealer();
    let mut rng = TestRng::new(4);
    // Sealed by it (remembered at sealing), and sealed elsewhere (remembered at opening).
    let own = remembering.seal("t", b"k", 1, 3, b"first", &mut rng);
    let other = plain.seal("t", b"k", 1, 3, b"second", &mut rng);
    for _ in 0..2 {
        for sealed in [&own, &other, &own] {
            assert_eq!(
                remembering.open("t", b"k", 1, sealed).unwrap(),
                plain.open("t", b"k", 1, sealed).unwrap()
            );
        }
    }
    // The same bytes under another version, key or table, or altered, still do not open.
    assert!(remembering.open("t", b"k", 2, &own).is_err());
    assert!(remembering.open("t", b"j", 1, &own).is_err());
    assert!(remembering.open("u", b"k", 1, &own).is_err());
    let mut altered = own.clone();
    *altered.last_mut().unwrap() ^= 1;
    assert!(remembering.open("t", b"k", 1, &altered).is_err());
    // Under another storage key the same bytes are another store's: they do not open.
    let stranger = Sealer::new(&StorageKey::from_bytes([8; 32])).remembering();
    assert!(stranger.open("t", b"k", 1, &own).is_err());
    // Many records: what was forgotten to stay within bounds opens again.
    for i in 0u32..5_000 {
        let key = i.to_be_bytes();
        let sealed = remembering.seal("bulk", &key, 1, 1, &[7; 300], &mut rng);
        assert_eq!(
            remembering.open("bulk", &key, 1, &sealed).unwrap().1[..],
            [7; 300]
        );
    }
    assert_eq!(
        &remembering.open("t", b"k", 1, &other).unwrap().1[..],
        b"second"
    );
}
