//! Far indices both ways and the u32 edge, with olmo's and vodozemac's senders put at any index
//! through libolm outbound pickles (see `support::Sender`).
//!
//! As asserted here:
//!
//! - vodozemac's receiver, like olmo's, uses plain u32 order: from index 0 it decrypts 2^31,
//!   2^31 + 1 and `u32::MAX` (libolm refuses anything 2^31 or more ahead; see
//!   `tests/megolm_libolm/far.rs`).
//! - At `u32::MAX` olmo's sender refuses to encrypt (`GroupEncryptError::Exhausted`).
//!   vodozemac 0.11.1's `GroupSession::encrypt` there overflows its u32 counter after writing
//!   the message: a panic with overflow checks (debug builds, caught here with `catch_unwind`),
//!   a wrap to index 0 without them (like libolm).

use std::panic::{AssertUnwindSafe, catch_unwind};

use olmo::megolm::{GroupEncryptError, MegolmMessage};
use vodozemac::megolm::{DecryptionError, InboundGroupSession as VInbound, SessionConfig};

use crate::support::{Sender, our_expect, our_import, to_ours, to_v, v_expect, v_import};

const HALF: u32 = 1 << 31;

#[test]
fn far_indices_both_ways() {
    for (seed, far) in [(1, (1 << 24) + 3), (2, 0x0102_0304), (3, HALF - 1)] {
        let sender = Sender::new(seed);
        // olmo's sender (olmo's jump) → vodozemac's receiver from 0 (vodozemac's jump).
        let mut ours = sender.ours_at(far);
        let mut theirs_in = VInbound::new(&sender.v_session_key(), SessionConfig::version_1());
        for offset in 0..3 {
            let message = ours.encrypt(b"far").unwrap();
            assert_eq!(message.message_index(), far + offset);
            v_expect(&mut theirs_in, &message, "far");
        }
        // vodozemac's sender (vodozemac's jump) → olmo's receiver from 0 (olmo's jump).
        let mut v_source = VInbound::new(&sender.v_session_key(), SessionConfig::version_1());
        let mut theirs = sender.theirs_from(&v_source.export_at(far).unwrap());
        assert_eq!(theirs.message_index(), far);
        let mut ours_in = olmo::megolm::InboundGroupSession::new(&sender.session_key());
        for _ in 0..3 {
            our_expect(&mut ours_in, &theirs.encrypt("far"), "far");
        }
    }
}

#[test]
fn vodozemac_uses_plain_u32_order_past_2_pow_31() {
    let sender = Sender::new(4);
    let mut ours = sender.ours_at(HALF);
    let sent: Vec<_> = (0..2).map(|_| ours.encrypt(b"over").unwrap()).collect();
    let mut top = sender.ratchet.clone();
    top.advance_to(u32::MAX).unwrap();
    let at_max = MegolmMessage::encrypt(&top, &sender.signing, b"top").unwrap();

    let mut theirs = VInbound::new(&sender.v_session_key(), SessionConfig::version_1());
    let mut ours_in = olmo::megolm::InboundGroupSession::new(&sender.session_key());
    for message in &sent {
        v_expect(&mut theirs, message, "over");
        our_expect(&mut ours_in, &to_v(message), "over");
    }
    v_expect(&mut theirs, &at_max, "top");
    our_expect(&mut ours_in, &to_v(&at_max), "top");

    // Exports at u32::MAX on both sides, and the message at u32::MAX from there.
    let v_export = theirs.export_at(u32::MAX).unwrap();
    let export = ours_in.export_at(u32::MAX).unwrap();
    assert_eq!(*export.to_bytes(), v_export.to_bytes());
    let mut from_top = our_import(&v_export);
    our_expect(&mut from_top, &to_v(&at_max), "top");
    let mut v_top = v_import(&export);
    v_expect(&mut v_top, &at_max, "top");
    // ...and nothing before it.
    assert!(matches!(
        v_top.decrypt(&to_v(&sent[1])),
        Err(DecryptionError::UnknownMessageIndex(u32::MAX, i)) if i == HALF + 1
    ));
}

#[test]
fn u32_max_olmo_refuses_vodozemac_overflows() {
    let sender = Sender::new(5);
    let mut ours = sender.ours_at(u32::MAX - 1);
    let last = ours.encrypt(b"last").unwrap();
    assert_eq!(last.message_index(), u32::MAX - 1);
    assert_eq!(ours.encrypt(b"more"), Err(GroupEncryptError::Exhausted));
    assert_eq!(ours.message_index(), u32::MAX);

    // vodozemac's sender at u32::MAX − 1, from olmo's pickle of the same state.
    let mut theirs_source = VInbound::new(&sender.v_session_key(), SessionConfig::version_1());
    let mut theirs = sender.theirs_from(&theirs_source.export_at(u32::MAX - 1).unwrap());
    let v_last = theirs.encrypt("last");
    assert_eq!(
        v_last.to_bytes(),
        last.to_bytes(),
        "deterministic: the same message"
    );
    assert_eq!(theirs.message_index(), u32::MAX);
    let result = catch_unwind(AssertUnwindSafe(|| theirs.encrypt("at the top")));
    if cfg!(debug_assertions) {
        assert!(
            result.is_err(),
            "vodozemac's counter overflow panics in debug builds"
        );
    } else {
        // Without overflow checks: the message at u32::MAX is written, the counter wraps.
        let at_max = result.unwrap();
        assert_eq!(to_ours(&at_max).message_index(), u32::MAX);
        assert_eq!(theirs.message_index(), 0);
    }
}
