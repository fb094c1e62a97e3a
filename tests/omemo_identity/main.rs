//! OMEMO identity primitives against libxeddsa (PyPI `xeddsa`, what python-omemo, twomemo,
//! oldmemo and x3dh are built on): the Ed25519 ↔ Curve25519 maps, X25519 from an Ed25519 seed,
//! and XEdDSA in both sign-bit conventions, both directions, then hostile inputs.
//!
//! The peer (`tests/peers/xeddsa_peer.py`) needs the venv from `.ci/setup-python.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;
mod support;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use olmo::crypto::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, SignBit, XEdDsaError};
use support::{FixedNonce, Lib, TestRng, identities};

/// The group order q, little-endian.
const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[test]
fn key_forms_and_x25519_agree_with_libxeddsa() {
    let mut lib = Lib::start();
    let ids = identities();
    for id in &ids {
        let (priv_key, ed, curve) = lib.seed_info(&id.seed);
        assert_eq!(priv_key, *id.secret.to_bytes(), "seed → X25519 secret");
        assert_eq!(&ed, id.ed.as_bytes());
        assert_eq!(&curve, id.curve.as_bytes());
        assert_eq!(id.ed.to_curve25519(), Ok(id.curve));
        assert_eq!(
            lib.ed_to_curve(id.ed.as_bytes()).as_ref(),
            Ok(id.curve.as_bytes())
        );
        for sign in [false, true] {
            let ours = id.curve.to_ed25519(sign).unwrap();
            assert_eq!(ours.as_bytes(), &lib.lift(&id.curve, sign));
        }
        assert_eq!(id.curve.to_ed25519(id.sign_bit()), Ok(id.ed));
    }
    // X3DH with Ed25519 identities: ours from the converted seed, theirs from seed_to_priv.
    for pair in ids.windows(2) {
        let (ours, theirs) = (&pair[0], &pair[1]);
        let shared = ours
            .secret
            .diffie_hellman(&theirs.ed.to_curve25519().unwrap())
            .unwrap();
        let their_priv = lib.seed_info(&theirs.seed).0;
        assert_eq!(
            &lib.x25519(&their_priv, &ours.ed.to_curve25519().unwrap()),
            shared.as_bytes()
        );
    }
}

/// With the same Z both sides compute the same `r`, `R`, `h` and `s`. libxeddsa hashes its
/// private key bytes as given, so it gets `a mod q` (negated for the spec when A's sign is 1).
#[test]
fn signatures_match_byte_for_byte_with_a_fixed_nonce() {
    let mut lib = Lib::start();
    let mut rng = TestRng::new(3);
    for id in identities() {
        let (message, z) = (rng.bytes::<40>(), rng.bytes::<64>());
        let priv_key = *id.secret.to_bytes();
        let forced = lib.force_sign_zero(&priv_key);
        let spec_scalar = if forced == priv_key {
            id.reduced_scalar()
        } else {
            forced
        };
        let mut signal: [u8; 64] = lib.priv_sign(&id.reduced_scalar(), &message, Some(&z));
        signal[63] |= id.sign_mask();
        let spec = lib.priv_sign(&spec_scalar, &message, Some(&z));
        for (convention, theirs) in [(SignBit::Zero, spec), (SignBit::InSignature, signal)] {
            let ours = id
                .secret
                .xeddsa_sign_with_rng(&message, convention, &mut FixedNonce(z));
            assert_eq!(ours.as_bytes(), &theirs, "{convention:?}");
            let other = id
                .secret
                .xeddsa_sign_with_rng(&message, convention, &mut TestRng::new(0));
            assert_ne!(other.as_bytes(), &theirs, "Z must matter");
        }
    }
}

#[test]
fn our_signatures_verify_in_libxeddsa() {
    let mut lib = Lib::start();
    let message = b"\x05 signed pre-key";
    for id in identities() {
        let spec = *id.secret.xeddsa_sign(message, SignBit::Zero).as_bytes();
        assert_eq!(spec[63] & 0x80, 0);
        let sign_zero_lift = lib.lift(&id.curve, false);
        assert!(lib.verify(&sign_zero_lift, message, &spec), "x3dh's check");
        assert!(lib.oldmemo_verify(&id.curve, message, &spec));

        // Keeping the sign bit makes oldmemo recover the Ed25519 identity that twomemo sees.
        let signal = *id
            .secret
            .xeddsa_sign(message, SignBit::InSignature)
            .as_bytes();
        assert_eq!(signal[63] & 0x80, id.sign_mask());
        assert!(lib.oldmemo_verify(&id.curve, message, &signal));
        assert_eq!(
            &lib.lift(&id.curve, signal[63] & 0x80 != 0),
            id.ed.as_bytes()
        );
        let x3dh = lib.verify(&sign_zero_lift, message, &signal);
        assert_eq!(
            x3dh,
            !id.sign_bit(),
            "x3dh's sign-0 check takes only sign-0 keys"
        );
    }
}

#[test]
fn libxeddsa_signatures_verify_in_ours() {
    let mut lib = Lib::start();
    let message = b"hello OMEMO";
    for id in identities() {
        let priv_key = *id.secret.to_bytes();
        // x3dh with Curve25519 identities: negate to sign bit 0, then sign.
        let forced = lib.force_sign_zero(&priv_key);
        let spec = Ed25519Signature::from_bytes(lib.priv_sign(&forced, message, None));
        let zero_lift = id.curve.to_ed25519(false);
        assert_eq!(
            id.curve.xeddsa_verify(message, &spec, SignBit::Zero),
            zero_lift
        );
        assert_eq!(
            id.curve.xeddsa_verify(message, &spec, SignBit::InSignature),
            zero_lift
        );

        // oldmemo: sign with the key as it is, then put A's sign bit into byte 63.
        let mut raw = lib.priv_sign(&priv_key, message, None);
        raw[63] |= id.sign_mask();
        let signal = Ed25519Signature::from_bytes(raw);
        assert_eq!(
            id.curve
                .xeddsa_verify(message, &signal, SignBit::InSignature),
            Ok(id.ed)
        );
        let spec_only = id.curve.xeddsa_verify(message, &signal, SignBit::Zero);
        assert_eq!(spec_only.is_ok(), !id.sign_bit());

        // twomemo: plain Ed25519 by the seed; with the bit added it is an OMEMO 0.3 signature too.
        let mut plain = lib.seed_sign(&id.seed, message);
        id.ed
            .verify(message, &Ed25519Signature::from_bytes(plain))
            .unwrap();
        plain[63] |= id.sign_mask();
        let plain = Ed25519Signature::from_bytes(plain);
        assert_eq!(
            id.curve
                .xeddsa_verify(message, &plain, SignBit::InSignature),
            Ok(id.ed)
        );
    }
}

#[test]
fn tampered_signatures_fail_on_both_sides() {
    let mut lib = Lib::start();
    let ids = identities();
    let zero = ids.iter().find(|id| !id.sign_bit()).unwrap();
    let one = ids.iter().find(|id| id.sign_bit()).unwrap();
    let message = b"tamper with me";
    for (id, other) in [(zero, one), (one, zero)] {
        let good = *id
            .secret
            .xeddsa_sign(message, SignBit::InSignature)
            .as_bytes();
        let ours = |sig: [u8; 64], key: &Curve25519PublicKey, msg: &[u8]| {
            key.xeddsa_verify(
                msg,
                &Ed25519Signature::from_bytes(sig),
                SignBit::InSignature,
            )
        };
        let refused = Err(XEdDsaError::InvalidSignature);
        // One bit of every byte (a different position each time) and the carried sign bit: all
        // 512 take ~20 s in a debug build.
        for bit in (0..64).map(|byte| byte * 8 + byte % 8).chain([511]) {
            let mut bad = good;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(ours(bad, &id.curve, message), refused, "bit {bit}");
            assert!(!lib.oldmemo_verify(&id.curve, message, &bad), "bit {bit}");
        }
        assert_eq!(ours(good, &id.curve, b"other"), refused);
        assert_eq!(ours(good, &other.curve, message), refused);
        assert!(!lib.oldmemo_verify(&other.curve, message, &good));

        // s + q is the same signature to a lax verifier; both sides insist on s < q.
        let mut malleated = good;
        let (sign, mut carry) = (good[63] & 0x80, 0u16);
        malleated[63] &= 0x7f;
        for (byte, q) in malleated[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*byte) + u16::from(q) + carry;
            (*byte, carry) = (sum as u8, sum >> 8);
        }
        malleated[63] |= sign;
        assert_eq!(ours(malleated, &id.curve, message), refused);
        assert!(!lib.oldmemo_verify(&id.curve, message, &malleated));

        // A small-order R (the identity) with s = 0.
        let mut weak_r = [0u8; 64];
        weak_r[0] = 1;
        assert_eq!(ours(weak_r, &id.curve, message), refused);
    }
}

#[test]
fn weak_and_malformed_keys_are_typed_errors() {
    let mut lib = Lib::start();
    let real = &identities()[0];
    let sig = real.secret.xeddsa_sign(b"m", SignBit::Zero);
    // Both lifts and verification give the same typed error for a bad u.
    let curve_err = |u: [u8; 32]| {
        let key = Curve25519PublicKey::from_bytes(u);
        let lifted = key.to_ed25519(false).err();
        assert_eq!(lifted, key.to_ed25519(true).err());
        assert_eq!(
            lifted,
            key.xeddsa_verify(b"m", &sig, SignBit::InSignature).err()
        );
        lifted
    };
    // libsodium's conversion (in libxeddsa) refuses every Edwards key we refuse.
    let ed_err = |lib: &mut Lib, bytes: [u8; 32]| {
        assert!(
            lib.ed_to_curve(&bytes)
                .unwrap_err()
                .starts_with("XEdDSAException")
        );
        Ed25519PublicKey::from_bytes(&bytes)
            .unwrap()
            .to_curve25519()
            .err()
    };

    let point = CompressedEdwardsY(*real.ed.as_bytes())
        .decompress()
        .unwrap();
    for torsion in EIGHT_TORSION {
        assert_eq!(
            curve_err(torsion.to_montgomery().to_bytes()),
            Some(XEdDsaError::SmallOrder)
        );
        assert_eq!(
            ed_err(&mut lib, torsion.compress().to_bytes()),
            Some(XEdDsaError::SmallOrder)
        );
        let mixed = point + torsion;
        if !mixed.is_torsion_free() {
            let mixed_order = Some(XEdDsaError::MixedOrder);
            assert_eq!(curve_err(mixed.to_montgomery().to_bytes()), mixed_order);
            assert_eq!(ed_err(&mut lib, mixed.compress().to_bytes()), mixed_order);
        }
    }
    // y = p + 1 encodes the identity non-canonically.
    let mut p_plus_one = [0xff; 32];
    (p_plus_one[0], p_plus_one[31]) = (0xee, 0x7f);
    assert_eq!(
        ed_err(&mut lib, p_plus_one),
        Some(XEdDsaError::NonCanonical)
    );

    // u ≥ p: libxeddsa masks the top bit (the spec's convert_mont); we refuse the encoding.
    let mut top_bit = *real.curve.as_bytes();
    top_bit[31] |= 0x80;
    assert_eq!(curve_err(top_bit), Some(XEdDsaError::NonCanonical));
    let masked = lib.lift(&Curve25519PublicKey::from_bytes(top_bit), false);
    assert_eq!(
        Ok(&masked),
        real.curve
            .to_ed25519(false)
            .as_ref()
            .map(Ed25519PublicKey::as_bytes)
    );
    let mut minus_one = [0xff; 32];
    (minus_one[0], minus_one[31]) = (0xec, 0x7f);
    assert_eq!(curve_err(minus_one), Some(XEdDsaError::NotOnCurve));
    let twist = (2u8..)
        .map(|u| {
            let mut bytes = [0u8; 32];
            bytes[0] = u;
            bytes
        })
        .find(|u| MontgomeryPoint(*u).to_edwards(0).is_none())
        .unwrap();
    assert_eq!(curve_err(twist), Some(XEdDsaError::NotOnCurve));
}
