//! The machine's tables in the store, each record named by a keyed hash of the identifiers it
//! stands for; record contents as [`crate::store::records`] lays them out.

pub(crate) use crate::store::records::{
    Meta, SCHEMA, load_meta as load, remove, store_meta as store,
};

/// The keys of a scanned page, its records wiped: on an ephemeral store they are plaintext
/// ([`Backend::is_ephemeral`](crate::store::Backend::is_ephemeral)), and the machine reads
/// them again, in a transaction, by key.
pub(crate) fn keys_of(page: Vec<(Vec<u8>, crate::store::Record)>) -> Vec<Vec<u8>> {
    use zeroize::Zeroize as _;
    page.into_iter()
        .map(|(key, mut record)| {
            record.value.zeroize();
            key
        })
        .collect()
}

/// Table names. Every record a table holds is named by [`Sealer::name`](crate::store::Sealer)
/// over the parts given beside it.
pub(crate) mod table {
    /// The account: one record.
    pub const ACCOUNT: &str = "matrix.account";
    /// Olm sessions, by the peer's Curve25519 key.
    pub const OLM_SESSIONS: &str = "matrix.olm_sessions";
    /// A user's devices, by user id.
    pub const DEVICES: &str = "matrix.devices";
    /// Users whose devices we track, by user id.
    pub const TRACKED: &str = "matrix.tracked_users";
    /// Tracked users whose device list must be queried again, by user id.
    pub const OUTDATED: &str = "matrix.outdated_users";
    /// Devices whose Olm session is wedged and must be replaced, by Curve25519 key.
    pub const WEDGED: &str = "matrix.wedged_devices";
    /// Inbound Megolm sessions, by (room id, session id).
    pub const INBOUND: &str = "matrix.inbound_group_sessions";
    /// Withheld notices, by (room id, session id).
    pub const WITHHELD: &str = "matrix.withheld";
    /// The outbound Megolm session of a room, by room id.
    pub const OUTBOUND: &str = "matrix.outbound_group_sessions";
    /// The replay record, by (session id, message index).
    pub const REPLAY: &str = "matrix.replay";
    /// To-device ciphertexts already decrypted, by (sender key, ciphertext hash).
    pub const SEEN: &str = "matrix.seen_to_device";
    /// Requests handed out and not yet marked sent, by request id.
    pub const OUTGOING: &str = "matrix.outgoing_requests";
    /// The prefix of the application's own tables.
    pub const APP_PREFIX: &str = "app.";
}
