//! Room key export files: the passphrase-encrypted `MEGOLM SESSION DATA` files Matrix clients
//! write and read to move Megolm keys between devices (Matrix client-server spec, "Key exports").
//!
//! ```text
//! -----BEGIN MEGOLM SESSION DATA-----
//! base64( 0x01 ‖ salt[16] ‖ iv[16] ‖ rounds: u32 BE ‖ AES-256-CTR(JSON) ‖ HMAC-SHA-256[32] )
//! -----END MEGOLM SESSION DATA-----
//! ```
//!
//! `K ‖ K' = PBKDF2-HMAC-SHA-512(passphrase, salt, rounds, 64 bytes)`: `K` is the AES-256 key,
//! `K'` the HMAC-SHA-256 key, and the MAC covers every byte before it. The JSON is an array of
//! [`ExportedRoomKey`].
//!
//! Decisions, and where the peers differ:
//!
//! - **Counter.** The spec has writers clear bit 63 of the IV (the top bit of byte 8) because
//!   implementations disagree on the counter: Element (WebCrypto, `length: 64`) increments only the
//!   low 64 bits, matrix-nio (pycryptodome) the whole 128-bit block. With bit 63 clear both give the
//!   same keystream for any file shorter than 2^63 blocks. We write that way and read with the
//!   128-bit counter; only if the low half would wrap inside the ciphertext (a writer that ignored
//!   the rule) and the result is not valid JSON do we try the 64-bit counter, so both kinds of file
//!   open. That retry happens after the MAC verified, so it tells an attacker nothing.
//! - **Order of checks.** Armour, base64, length, version, round count, then the MAC in constant
//!   time, and only then decryption. Nothing is decrypted under an unverified MAC.
//! - **Rounds.** Written files use the caller's count ([`KEY_EXPORT_DEFAULT_ROUNDS`] = 500,000, as
//!   Element; the spec asks for at least 100,000). The count is read before anything is
//!   authenticated, so a file could ask for billions of PBKDF2 rounds: reading refuses 0 and
//!   anything above [`KEY_EXPORT_MAX_ROUNDS`] with [`KeyExportError::Rounds`].
//! - **Armour.** Reading takes the text between the first `BEGIN` line and the next `END` line,
//!   whatever surrounds them, drops all ASCII whitespace (any line width, CRLF, a single line) and
//!   accepts padded or unpadded base64. Writing wraps at 128 characters (96 bytes a line, as
//!   Element), pads, and ends every line with `\n`, the footer included.
//! - **Secrets.** The derived keys and the plaintext JSON live in buffers wiped on drop; the JSON
//!   is serialised into a buffer sized in advance so no copy is left behind by a reallocation.
//!   The JSON is read by hand (`reader`), each string unescaped into a buffer of its final size
//!   that is wiped on drop.

mod armour;
mod json;
mod layout;
mod reader;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use rand_core::CryptoRng;
use thiserror::Error;

use super::ExportedSessionKey;
use armour::{armour, unarmour};
use json::to_json;
use layout::{Counter, Envelope, IV_LENGTH, SALT_LENGTH, seal};
use reader::from_json;

/// The armour line before the base64 body.
pub const KEY_EXPORT_HEADER: &str = "-----BEGIN MEGOLM SESSION DATA-----";
/// The armour line after the base64 body.
pub const KEY_EXPORT_FOOTER: &str = "-----END MEGOLM SESSION DATA-----";
/// PBKDF2 rounds for a new file when the caller has no reason to pick another: Element's value.
pub const KEY_EXPORT_DEFAULT_ROUNDS: u32 = 500_000;
/// The most PBKDF2 rounds a file may ask for (20 times Element's count, several seconds of work);
/// files above it are refused before any key is derived. Writing clamps to it as well.
pub const KEY_EXPORT_MAX_ROUNDS: u32 = 10_000_000;

/// The `algorithm` of a Megolm room key.
const MEGOLM_ALGORITHM: &str = "m.megolm.v1.aes-sha2";

/// Why a key export file could not be read. No variant carries passphrase, key or plaintext data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyExportError {
    /// No `BEGIN MEGOLM SESSION DATA` line followed by an `END` line.
    #[error("no MEGOLM SESSION DATA armour found")]
    NoArmour,
    /// The text between the armour lines is not base64.
    #[error("the key export body is not valid base64")]
    Base64,
    /// Fewer bytes than a version, salt, IV, round count and MAC.
    #[error("the key export is too short")]
    TooShort,
    /// A format version other than 1.
    #[error("unsupported key export version {0}")]
    UnsupportedVersion(u8),
    /// A PBKDF2 round count of 0 or above [`KEY_EXPORT_MAX_ROUNDS`].
    #[error("PBKDF2 round count {0} is outside 1..=10000000")]
    Rounds(u32),
    /// The MAC does not match: the passphrase is wrong or the file was altered.
    #[error("wrong passphrase, or the key export was altered")]
    Mac,
    /// The decrypted content is not a JSON array of room keys (including a malformed
    /// `session_key`). Only the position is kept: the text would be secret.
    #[error(
        "the decrypted key export is not a valid list of room keys (line {line}, column {column})"
    )]
    Json {
        /// 1-based line of the decrypted JSON where parsing stopped.
        line: usize,
        /// 1-based column where parsing stopped.
        column: usize,
    },
}

/// One Megolm session in a key export (the spec's `SessionData`).
///
/// `Debug` prints the session key only as its index and public key, never the ratchet.
/// With the `serde` feature (on by default) it has serde's `Serialize` and `Deserialize`, giving
/// the same JSON as [`room_keys_to_json`] and [`room_keys_from_json`] (which need no feature).
#[derive(Clone)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub struct ExportedRoomKey {
    /// The session's algorithm, `m.megolm.v1.aes-sha2` for every key this crate can use.
    pub algorithm: String,
    /// The room the session belongs to.
    pub room_id: String,
    /// The Curve25519 identity key of the device that created the session (unpadded base64).
    pub sender_key: String,
    /// The session id: unpadded base64 of the session's Ed25519 key. See
    /// [`ExportedRoomKey::session_id_matches`].
    pub session_id: String,
    /// The ratchet at the first index the exporter knew, as unpadded base64 in the JSON.
    #[cfg_attr(any(test, feature = "serde"), serde(with = "json::session_key_base64"))]
    pub session_key: ExportedSessionKey,
    /// Keys the sending device claimed, by algorithm (`ed25519`). Empty if the file omits them.
    #[cfg_attr(any(test, feature = "serde"), serde(default))]
    pub sender_claimed_keys: BTreeMap<String, String>,
    /// Curve25519 keys of the devices that forwarded the key, oldest first. Empty if omitted.
    #[cfg_attr(any(test, feature = "serde"), serde(default))]
    pub forwarding_curve25519_key_chain: Vec<String>,
    /// `m.shared_history` (MSC3061): the sender allowed sharing the key with later room members.
    #[cfg_attr(
        any(test, feature = "serde"),
        serde(rename = "m.shared_history", default)
    )]
    pub shared_history: bool,
}

impl ExportedRoomKey {
    /// A Megolm key for `room_id` from the device with Curve25519 key `sender_key`; the session id
    /// comes from the key, the claimed keys and forwarding chain start empty.
    pub fn new(
        room_id: impl Into<String>,
        sender_key: impl Into<String>,
        session_key: ExportedSessionKey,
    ) -> Self {
        Self {
            algorithm: MEGOLM_ALGORITHM.to_owned(),
            room_id: room_id.into(),
            sender_key: sender_key.into(),
            session_id: session_key.signing_key().to_base64(),
            session_key,
            sender_claimed_keys: BTreeMap::new(),
            forwarding_curve25519_key_chain: Vec::new(),
            shared_history: false,
        }
    }

    /// Whether `session_id` names the session key's Ed25519 key. An importer should drop a key
    /// for which this is false: the file says one session and holds another.
    pub fn session_id_matches(&self) -> bool {
        self.session_key.signing_key().to_base64() == self.session_id
    }
}

impl fmt::Debug for ExportedRoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedRoomKey")
            .field("algorithm", &self.algorithm)
            .field("room_id", &self.room_id)
            .field("sender_key", &self.sender_key)
            .field("session_id", &self.session_id)
            .field("session_key", &self.session_key)
            .field("sender_claimed_keys", &self.sender_claimed_keys)
            .field(
                "forwarding_curve25519_key_chain",
                &self.forwarding_curve25519_key_chain,
            )
            .field("shared_history", &self.shared_history)
            .finish()
    }
}

/// The JSON array a key export file holds, for `keys`, in a buffer wiped on drop (bindings
/// hand it to their language's JSON parser; no other copy of the session keys is made).
pub fn room_keys_to_json(keys: &[ExportedRoomKey]) -> zeroize::Zeroizing<Vec<u8>> {
    to_json(keys)
}

/// Reads a JSON array of room keys as a key export file holds it (the parser of
/// [`decrypt_key_export`]; errors keep only the position, never the text).
pub fn room_keys_from_json(json: &[u8]) -> Result<Vec<ExportedRoomKey>, KeyExportError> {
    from_json(json)
}

/// Encrypts `keys` into an armoured key export file under `passphrase` with `rounds` of PBKDF2,
/// drawing the salt and IV from the operating system.
///
/// `rounds` is clamped to `1..=`[`KEY_EXPORT_MAX_ROUNDS`] so the file can always be read back;
/// use [`KEY_EXPORT_DEFAULT_ROUNDS`] unless there is a reason not to. Deriving the key takes time
/// in proportion to `rounds`: about a third of a second at the default in a release build
/// (0.33 s measured on one core of this project's CI machine), some 50 times that unoptimised.
pub fn encrypt_key_export(keys: &[ExportedRoomKey], passphrase: &str, rounds: u32) -> String {
    encrypt_key_export_with_rng(keys, passphrase, rounds, &mut rand::rng())
}

/// As [`encrypt_key_export`], with the salt and IV drawn from `rng` (deterministic in tests).
pub fn encrypt_key_export_with_rng(
    keys: &[ExportedRoomKey],
    passphrase: &str,
    rounds: u32,
    rng: &mut impl CryptoRng,
) -> String {
    let rounds = rounds.clamp(1, KEY_EXPORT_MAX_ROUNDS);
    let mut salt = [0; SALT_LENGTH];
    rng.fill_bytes(&mut salt);
    let mut iv = [0; IV_LENGTH];
    rng.fill_bytes(&mut iv);
    // Bit 63 clear: no 64-bit counter half can overflow, so every reader agrees.
    iv[8] &= 0x7f;
    armour(&seal(&to_json(keys), passphrase, rounds, &salt, &iv))
}

/// Reads an armoured key export file with `passphrase`.
///
/// Returns the keys as the file holds them; an importer should still check
/// [`ExportedRoomKey::session_id_matches`] and the algorithm of each. Never panics, whatever the
/// input; a wrong passphrase and an altered file both give [`KeyExportError::Mac`].
pub fn decrypt_key_export(
    text: &str,
    passphrase: &str,
) -> Result<Vec<ExportedRoomKey>, KeyExportError> {
    let bytes = unarmour(text)?;
    let envelope = Envelope::parse(&bytes)?;
    let keys = envelope.authenticate(passphrase)?;
    let plaintext = keys.decrypt(&envelope, Counter::Full128);
    match from_json(&plaintext) {
        Err(_) if envelope.counters_disagree() => {
            let plaintext = keys.decrypt(&envelope, Counter::Low64);
            from_json(&plaintext)
        }
        result => result,
    }
}
