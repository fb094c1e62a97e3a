//! Hostile input: every error is typed and leaves the device exactly as it was.

use olmo::omemo::{DeviceError, OmemoDevice, SealedKey, SessionError, Version};

use super::{VERSIONS, decrypt, deliver, pair, receive, send};

fn fingerprint(device: &OmemoDevice, version: Version) -> String {
    // The sessions' Debug output and the pools' ids change whenever state changes.
    let ids: Vec<u32> = device.pre_keys(version).pre_key_ids().collect();
    format!(
        "{:?}{:?}{ids:?}",
        device.omemo2_sessions(),
        device.omemo03_sessions()
    )
}

/// Every bit flip of the key exchange `key` (but in its registration id, which nothing covers) is
/// refused and leaves `to` unchanged; then `key` itself opens to `material`.
fn key_exchange_flips_are_refused(
    to: &mut OmemoDevice,
    from: &OmemoDevice,
    version: Version,
    key: &SealedKey,
    material: &[u8],
    what: &str,
) {
    let before = fingerprint(to, version);
    let unauthenticated = registration_id_bytes(version, &key.data);
    for bit in 0..key.data.len() * 8 {
        if unauthenticated.contains(&(bit / 8)) {
            continue;
        }
        let mut flipped = key.clone();
        flipped.data[bit / 8] ^= 1 << (bit % 8);
        if receive(to, from, version, &flipped).is_ok() {
            panic!("{version:?}: bit {bit} of {what} flipped and still decrypted");
        }
        assert_eq!(fingerprint(to, version), before);
    }
    assert_eq!(receive(to, from, version, key).unwrap(), material);
}

#[test]
fn every_bit_flip_of_a_key_exchange_is_refused_without_change() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        let first = send(&mut alice, &bob, version, &[1; 32]);
        key_exchange_flips_are_refused(&mut bob, &alice, version, &first, &[1; 32], "the first");
        // The repeat of a key exchange that made a session: no bit of it may change either.
        let repeat = send(&mut alice, &bob, version, &[2; 32]);
        key_exchange_flips_are_refused(&mut bob, &alice, version, &repeat, &[2; 32], "a repeat");
    }
}

/// OMEMO 0.3's `registrationId` (field 5, written last but one) is informational and covered
/// by nothing, in libsignal as here: its value bytes may change without effect.
fn registration_id_bytes(version: Version, data: &[u8]) -> std::ops::Range<usize> {
    if version == Version::Omemo2 {
        return 0..0;
    }
    // `... 28 <varint> 30 <spk id>`: find the tag, the varint runs up to the next tag.
    let end = data.len() - 2;
    let start = data[..end].iter().rposition(|&b| b == 0x28).unwrap() + 1;
    start..end
}

#[test]
fn every_bit_flip_of_a_message_is_refused_without_change() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[1; 32]);
        deliver(&mut bob, &mut alice, version, &[2; 32]);
        let message = send(&mut alice, &bob, version, &[3; 32]);
        let before = fingerprint(&bob, version);
        for bit in 0..message.data.len() * 8 {
            let mut flipped = message.clone();
            flipped.data[bit / 8] ^= 1 << (bit % 8);
            assert!(
                receive(&mut bob, &alice, version, &flipped).is_err(),
                "bit {bit}"
            );
            assert_eq!(fingerprint(&bob, version), before);
        }
        // Truncations and garbage too.
        for length in 0..message.data.len() {
            let cut = SealedKey {
                data: message.data[..length].to_vec(),
                key_exchange: false,
            };
            assert!(receive(&mut bob, &alice, version, &cut).is_err());
        }
        assert_eq!(fingerprint(&bob, version), before);
        assert_eq!(
            receive(&mut bob, &alice, version, &message).unwrap(),
            [3; 32]
        );
    }
}

#[test]
fn unknown_device_and_wrong_version() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        let first = deliver(&mut alice, &mut bob, version, &[1; 32]);
        deliver(&mut bob, &mut alice, version, &[0; 32]);
        let message = send(&mut alice, &bob, version, &[1; 32]);
        assert!(matches!(
            bob.decrypt_key(version, alice.jid(), 4242, &message, &mut rand::rng()),
            Err(DeviceError::NoSession {
                device_id: 4242,
                ..
            })
        ));
        let other = match version {
            Version::Omemo2 => Version::Omemo03,
            Version::Omemo03 => Version::Omemo2,
        };
        assert!(
            bob.decrypt_key(
                other,
                alice.jid(),
                alice.device_id(),
                &first,
                &mut rand::rng()
            )
            .is_err()
        );
        assert!(matches!(
            alice.encrypt_key(version, "carol@example.org", 1, &[0; 32], &mut rand::rng()),
            Err(DeviceError::NoSession { .. })
        ));
    }
}

#[test]
fn bad_bundle_signature_and_reused_pre_key() {
    use olmo::omemo::{BundleError, VerifiedBundle};

    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        // A bad signature is refused where the bundle is typed: no session can be built from it.
        let mut element = bob.bundle(version).to_element();
        element.signed_pre_key_signature[0] ^= 1;
        assert_eq!(
            VerifiedBundle::from_element(&element),
            Err(BundleError::BadSignature)
        );

        // Two initiators pick the same pre-key: the second exchange finds it used.
        let mut bundle = bob.bundle(version);
        let first = bundle.pre_keys()[0].0;
        bundle.retain_pre_keys(|(id, _)| *id == first);
        let mut carol = OmemoDevice::new("carol@example.org", 3003);
        alice
            .build_session(bob.jid(), bob.device_id(), &bundle, &mut rand::rng())
            .unwrap();
        carol
            .build_session(bob.jid(), bob.device_id(), &bundle, &mut rand::rng())
            .unwrap();
        let from_alice = send(&mut alice, &bob, version, &[1; 32]);
        let from_carol = send(&mut carol, &bob, version, &[2; 32]);
        receive(&mut bob, &alice, version, &from_alice).unwrap();
        assert!(matches!(
            receive(&mut bob, &carol, version, &from_carol),
            Err(DeviceError::Session(SessionError::PreKey(
                olmo::omemo::PreKeyError::PreKeyUsed(_)
            )))
        ));
    }
}

#[test]
fn malformed_bundles_are_refused_with_the_field_named() {
    use olmo::omemo::{BundleError, VerifiedBundle};

    for version in VERSIONS {
        let device = OmemoDevice::new("bob@example.org", 7);
        let good = device.bundle(version).to_element();
        assert_eq!(
            VerifiedBundle::from_element(&good).unwrap(),
            device.bundle(version)
        );

        let mut short = good.clone();
        short.signed_pre_key.pop();
        assert_eq!(
            VerifiedBundle::from_element(&short),
            Err(BundleError::Malformed("signed pre-key"))
        );
        let mut identity = good.clone();
        identity.identity_key.push(0);
        assert_eq!(
            VerifiedBundle::from_element(&identity),
            Err(BundleError::Malformed("identity key"))
        );
        let mut signature = good.clone();
        signature.signed_pre_key_signature.truncate(63);
        assert_eq!(
            VerifiedBundle::from_element(&signature),
            Err(BundleError::Malformed("signature"))
        );
        let mut forged = good.clone();
        forged.signed_pre_key_signature[10] ^= 1;
        assert_eq!(
            VerifiedBundle::from_element(&forged),
            Err(BundleError::BadSignature)
        );
        // A key of another device under this identity's signature.
        let mut swapped = good.clone();
        swapped.signed_pre_key = good.pre_keys[0].1.clone();
        assert_eq!(
            VerifiedBundle::from_element(&swapped),
            Err(BundleError::BadSignature)
        );
        // Non-canonical encoding (bit 255 set).
        let mut high = good.clone();
        let last = high.pre_keys[0].1.len() - 1;
        high.pre_keys[0].1[last] |= 0x80;
        assert_eq!(
            VerifiedBundle::from_element(&high),
            Err(BundleError::Malformed("pre-key"))
        );

        if version == Version::Omemo03 {
            // libsignal keys need their 0x05 type byte.
            let mut bare = good.clone();
            bare.pre_keys[0].1.remove(0);
            assert_eq!(
                VerifiedBundle::from_element(&bare),
                Err(BundleError::Malformed("pre-key"))
            );
            let mut typed = good.clone();
            typed.signed_pre_key[0] = 0x06;
            assert_eq!(
                VerifiedBundle::from_element(&typed),
                Err(BundleError::Malformed("signed pre-key"))
            );
        }
        // A bundle of the other version's form.
        let mut other = good.clone();
        other.version = match version {
            Version::Omemo2 => Version::Omemo03,
            Version::Omemo03 => Version::Omemo2,
        };
        assert!(VerifiedBundle::from_element(&other).is_err());
    }
}

#[test]
fn omemo2_needs_a_one_time_pre_key() {
    use olmo::omemo::BundleError;

    let (mut alice, bob) = pair(Version::Omemo2);
    let mut bundle = bob.bundle(Version::Omemo2);
    bundle.retain_pre_keys(|_| false);
    assert_eq!(
        alice.build_session(bob.jid(), bob.device_id(), &bundle, &mut rand::rng()),
        Err(DeviceError::Session(SessionError::Bundle(
            BundleError::NoPreKeys
        )))
    );
    // OMEMO 0.3 makes do without one (three Diffie-Hellmans), as libsignal does.
    let (mut alice, mut bob) = pair(Version::Omemo03);
    let mut bundle = bob.bundle(Version::Omemo03);
    bundle.retain_pre_keys(|_| false);
    alice
        .build_session(bob.jid(), bob.device_id(), &bundle, &mut rand::rng())
        .unwrap();
    let first = send(&mut alice, &bob, Version::Omemo03, &[5; 32]);
    let opened = decrypt(&mut bob, &alice, Version::Omemo03, &first).unwrap();
    assert_eq!(opened.pre_key_used, None);
    assert_eq!(&opened.decrypted.key_material[..], [5; 32]);
}
