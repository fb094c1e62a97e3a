//! The Matrix machine: one device's end-to-end encryption, sans I/O, over a
//! [store](crate::store). It takes and gives the JSON bodies of the Client-Server API, so any
//! HTTP stack, binding or bot framework can drive it:
//!
//! 1. [`Machine::open`] the device's store (its account is created on first use);
//! 2. send what [`Machine::outgoing_requests`] gives, and hand each response to
//!    [`Machine::mark_request_as_sent`] (key uploads, device queries, to-device messages);
//! 3. give every `/sync` to [`Machine::receive_sync_changes`] (to-device events, device-list
//!    changes, key counts), with your sync token as an [`AppRecord`] so both commit together;
//! 4. before sending in a room: [`Machine::update_tracked_users`] with its members, claim
//!    sessions with [`Machine::missing_sessions`], then [`Machine::share_room_key`] and
//!    [`Machine::encrypt_room_event`];
//! 5. [`Machine::decrypt_room_event`] (or a batch, of one room or of several) for the timeline;
//! 6. [`Machine::export_room_keys`] and [`Machine::import_room_keys`] for key files.
//!
//! Every operation is one commit, and nothing it returns (a ciphertext, a plaintext, a
//! request) exists before that commit succeeded.

mod canonical;
mod devices;
mod error;
mod export;
mod keys;
mod machine;
mod olm_sessions;
mod records;
mod requests;
mod room;
mod room_batches;
mod room_records;
mod to_device;

/// JSON text to and from `serde_json::Value` as serde_json reads and writes it, without
/// serde's machinery (for bindings where code size counts).
pub use crate::codec::json_value::{parse as parse_json, to_vec as json_to_vec};
pub use canonical::{encode as canonical_json, signing_bytes};
pub use devices::{Device, Trust};
pub use error::{MachineError, ToDeviceError, UnableToDecrypt};
pub use export::{ImportResult, RoomKeyStats};
pub use machine::{AppRecord, MEGOLM_V1, Machine, OLM_V1};
pub use requests::{OutgoingRequest, RequestKind};
pub use room::{DecryptedRoomEvent, RoomKeyShare, RoomSettings};
pub use room_batches::{EncryptedEventFields, RoomResults, SignatureVerifier};
pub use to_device::{SyncChanges, ToDeviceEvent, ToDeviceOutcome};
