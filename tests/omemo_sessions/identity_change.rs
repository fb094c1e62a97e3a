//! A key exchange or bundle under another identity key, for a device we know, changes nothing
//! until the application accepts the new identity; the known session keeps working.

use olmo::omemo::{DeviceError, FailureReason, OmemoDevice, SealedKey, Version};

use super::messages::{KEY, snapshot};
use super::{VERSIONS, deliver, pair, receive, send};

fn fingerprint(device: &OmemoDevice, version: Version) -> String {
    device
        .identity()
        .identity_key(version)
        .fingerprint()
        .unwrap()
}

/// Mallory, under another identity, sends Bob a key exchange as Alice's device.
fn impostor_key_exchange(
    mallory: &mut OmemoDevice,
    bob: &OmemoDevice,
    version: Version,
) -> SealedKey {
    mallory
        .build_session(
            bob.jid(),
            bob.device_id(),
            &bob.bundle(version),
            &mut rand::rng(),
        )
        .unwrap();
    send(mallory, bob, version, &[9; 32])
}

fn as_alice(
    bob: &mut OmemoDevice,
    alice: &OmemoDevice,
    version: Version,
    key: &SealedKey,
) -> Result<Vec<u8>, DeviceError> {
    bob.decrypt_key(
        version,
        alice.jid(),
        alice.device_id(),
        key,
        &mut rand::rng(),
    )
    .map(|d| d.decrypted.key_material.to_vec())
}

#[test]
fn another_identity_changes_nothing_until_accepted() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[1; 32]);
        deliver(&mut bob, &mut alice, version, &[2; 32]);
        let mut mallory = OmemoDevice::new(alice.jid(), alice.device_id());
        let before = snapshot(&bob);
        // More key exchanges than there are previous states: none gets in, none evicts.
        for _ in 0..7 {
            let kex = impostor_key_exchange(&mut mallory, &bob, version);
            let error = as_alice(&mut bob, &alice, version, &kex).unwrap_err();
            assert_eq!(
                error,
                DeviceError::IdentityChanged {
                    version,
                    jid: alice.jid().to_owned(),
                    device_id: alice.device_id(),
                    known: fingerprint(&alice, version),
                    offered: fingerprint(&mallory, version),
                }
            );
            assert_eq!(error.reason(), FailureReason::IdentityChanged);
            assert_eq!(snapshot(&bob), before, "{version:?}: state changed");
        }
        // The real session works both ways: Bob's next message is for Alice only.
        deliver(&mut bob, &mut alice, version, &[3; 32]);
        deliver(&mut alice, &mut bob, version, &[4; 32]);
    }
}

#[test]
fn an_accepted_identity_replaces_the_device_sessions() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[1; 32]);
        let delayed = send(&mut alice, &bob, version, &[2; 32]);
        let mut mallory = OmemoDevice::new(alice.jid(), alice.device_id());
        let kex = impostor_key_exchange(&mut mallory, &bob, version);
        let Err(DeviceError::IdentityChanged { offered, .. }) =
            as_alice(&mut bob, &alice, version, &kex)
        else {
            panic!("not reported");
        };
        assert_eq!(
            bob.accept_identity(version, alice.jid(), alice.device_id(), "not hex"),
            Err(DeviceError::InvalidFingerprint)
        );
        bob.accept_identity(version, alice.jid(), alice.device_id(), &offered)
            .unwrap();
        // The choice is stored with the device.
        let restored = OmemoDevice::restore(&bob.save(&KEY), &KEY).unwrap();
        assert_eq!(snapshot(&restored), snapshot(&bob));
        let mut bob = restored;
        // Until the new identity's key exchange arrives, the old session still works.
        assert_eq!(
            as_alice(&mut bob, &alice, version, &delayed).unwrap(),
            [2; 32]
        );
        // The same element again now makes the session, replacing the old identity's.
        assert_eq!(as_alice(&mut bob, &alice, version, &kex).unwrap(), [9; 32]);
        let sessions = match version {
            Version::Omemo2 => bob
                .omemo2_sessions()
                .get(alice.jid(), alice.device_id())
                .map(|s| s.previous().count()),
            Version::Omemo03 => bob
                .omemo03_sessions()
                .get(alice.jid(), alice.device_id())
                .map(|s| s.previous().count()),
        };
        assert_eq!(sessions, Some(0));
        let to_new = send(&mut bob, &mallory, version, &[5; 32]);
        assert_eq!(
            mallory
                .decrypt_key(
                    version,
                    bob.jid(),
                    bob.device_id(),
                    &to_new,
                    &mut rand::rng()
                )
                .unwrap()
                .decrypted
                .key_material
                .to_vec(),
            [5; 32]
        );
        // The old identity's sessions are gone.
        let old = send(&mut alice, &bob, version, &[6; 32]);
        assert!(as_alice(&mut bob, &alice, version, &old).is_err());
    }
}

#[test]
fn a_bundle_under_another_identity_needs_acceptance_too() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[1; 32]);
        deliver(&mut bob, &mut alice, version, &[2; 32]);
        // A bundle of the known identity still just replaces the session.
        alice
            .build_session(
                bob.jid(),
                bob.device_id(),
                &bob.bundle(version),
                &mut rand::rng(),
            )
            .unwrap();
        let fresh = send(&mut alice, &bob, version, &[7; 32]);
        assert!(receive(&mut bob, &alice, version, &fresh).unwrap().len() == 32);
        // Bob's device id now publishes another identity's bundle.
        let reinstalled = OmemoDevice::new(bob.jid(), bob.device_id());
        let before = snapshot(&alice);
        let error = alice
            .build_session(
                bob.jid(),
                bob.device_id(),
                &reinstalled.bundle(version),
                &mut rand::rng(),
            )
            .unwrap_err();
        let DeviceError::IdentityChanged { offered, .. } = error else {
            panic!("{error:?}");
        };
        assert_eq!(offered, fingerprint(&reinstalled, version));
        assert_eq!(snapshot(&alice), before);
        alice
            .accept_identity(version, bob.jid(), bob.device_id(), &offered)
            .unwrap();
        alice
            .build_session(
                bob.jid(),
                bob.device_id(),
                &reinstalled.bundle(version),
                &mut rand::rng(),
            )
            .unwrap();
        let mut reinstalled = reinstalled;
        deliver(&mut alice, &mut reinstalled, version, &[3; 32]);
    }
}
