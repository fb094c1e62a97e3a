//! When an outbound session must be replaced.

use std::time::Duration;

use olmo::megolm::{GroupEncryptError, GroupSession, RotationPolicy, RotationReason, Timestamp};

use super::NOON;

const HOUR: Duration = Duration::from_secs(3600);

fn later(duration: Duration) -> Timestamp {
    Timestamp::from_millis(NOON.as_millis() + duration.as_millis() as u64)
}

#[test]
fn default_policy_is_a_hundred_messages_or_a_week() {
    let policy = RotationPolicy::default();
    assert_eq!(policy.max_messages(), 100);
    assert_eq!(policy.max_age(), Duration::from_secs(7 * 24 * 3600));
    let mut session = GroupSession::new(NOON);
    for _ in 0..99 {
        session.encrypt(b"x").unwrap();
    }
    assert_eq!(session.rotation_due(&policy, NOON), None);
    session.encrypt(b"x").unwrap();
    assert_eq!(
        session.rotation_due(&policy, NOON),
        Some(RotationReason::MessageCount)
    );

    let fresh = GroupSession::new(NOON);
    assert_eq!(fresh.rotation_due(&policy, later(167 * HOUR)), None);
    assert_eq!(
        fresh.rotation_due(&policy, later(168 * HOUR)),
        Some(RotationReason::Age)
    );
}

#[test]
fn room_settings_are_clamped_like_clients_do() {
    let tiny = RotationPolicy::from_room_settings(Some(0), Some(1));
    assert_eq!(tiny.max_messages(), 1);
    assert_eq!(tiny.max_age(), HOUR);
    let huge = RotationPolicy::from_room_settings(Some(u64::MAX), Some(u64::MAX));
    assert_eq!(huge.max_messages(), 10_000);
    assert_eq!(huge.max_age(), Duration::from_millis(u64::MAX));
    let unset = RotationPolicy::from_room_settings(None, None);
    assert_eq!(unset, RotationPolicy::default());
    let room = RotationPolicy::from_room_settings(Some(500), Some(2 * 3_600_000));
    assert_eq!((room.max_messages(), room.max_age()), (500, 2 * HOUR));
}

#[test]
fn a_clock_set_back_does_not_count_as_age() {
    let session = GroupSession::new(NOON);
    let before = Timestamp::from_millis(NOON.as_millis() - 1_000);
    assert_eq!(
        session.rotation_due(&RotationPolicy::default(), before),
        None
    );
}

#[test]
fn invalidation_forces_rotation_and_stops_encryption() {
    let mut session = GroupSession::new(NOON);
    session.encrypt(b"before the member left").unwrap();
    session.invalidate();
    assert!(session.is_invalidated());
    assert_eq!(
        session.rotation_due(&RotationPolicy::default(), NOON),
        Some(RotationReason::Invalidated)
    );
    assert_eq!(
        session.encrypt(b"after").unwrap_err(),
        GroupEncryptError::Invalidated
    );
    assert_eq!(session.message_index(), 1);
}
