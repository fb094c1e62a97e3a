//! Sealing records before they reach a backend, and naming them without revealing identifiers.
//!
//! A sealed record is `format (1) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`: XChaCha20-Poly1305
//! under a key derived from the application's [`StorageKey`], with a fresh random nonce, and the
//! format byte, table, key and version as associated data. So a backend (or anyone who can
//! write to it) can delete a record or put back an older copy under its old version, but cannot
//! read one, move it to another key or table, or relabel its version: each of those fails to
//! open. Inside, the plaintext starts with the record's schema (u16, big-endian).
//!
//! Record keys that would reveal an identifier (a user, room, session or sender key) are
//! HMAC-SHA-256 of it under a second derived key, separated per table.
//!
//! A sealer made [`Sealer::remembering`] keeps the records it last opened or sealed: opening
//! is a pure function of (table, key, version, sealed bytes), so a record read again with the
//! same version and the same sealed bytes gives what it gave before, and a comparison replaces
//! the decryption. Any other bytes (another writer's, a database restored under a running
//! machine) are opened as always.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chacha20poly1305::Tag;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::backend::{Hex, StoreError};
use crate::crypto::hkdf_sha256;
use crate::persist::StorageKey;

const FORMAT: u8 = 1;
/// The format byte of a record framed but not encrypted ([`Sealer::passing_through`]).
const PLAIN_FORMAT: u8 = 0;
const NONCE_LENGTH: usize = 24;
const TAG_LENGTH: usize = 16;
/// The length of a record name ([`Sealer::name`]): an HMAC-SHA256.
pub(crate) const NAME_LEN: usize = 32;
const SCHEMA_LENGTH: usize = 2;

/// The keys that seal and name a store's records, derived from one [`StorageKey`]. Wiped on
/// drop.
#[derive(Clone, ZeroizeOnDrop)]
pub struct Sealer {
    cipher: Zeroizing<[u8; 32]>,
    /// HMAC-SHA-256 keyed with the naming key, its two padded key blocks already hashed: each
    /// name clones it (two compressions fewer per name). It wipes itself on drop (hmac's
    /// `zeroize` feature), so the derive skips it.
    #[zeroize(skip)]
    names: Hmac<Sha256>,
    /// The records last opened or sealed ([`Sealer::remembering`]); clones share them.
    #[zeroize(skip)]
    recent: Option<Arc<Mutex<Recent>>>,
    /// Tables whose records, once sealed, are not remembered ([`Sealer::not_remembering`]).
    #[zeroize(skip)]
    unremembered: &'static [&'static str],
    /// Records framed, not encrypted ([`Sealer::passing_through`]).
    #[zeroize(skip)]
    plain: bool,
}

/// Bytes (sealed and opened) the records remembered may hold; past this, they start again.
const RECENT_BYTES: usize = 1 << 20;

/// Records by table and key, each as sealed and as opened. Keyed by table names and record
/// names (keyed hashes nobody without the storage key chooses): a randomly seeded
/// folded-multiply hash, a fraction of SipHash's cost at every read.
#[derive(Default)]
struct Recent {
    tables: HashMap<String, HashMap<Vec<u8>, RecentRecord, Fast>, Fast>,
    bytes: usize,
    /// The naming HMAC with a name's first block of framed parts already hashed, by that
    /// block: names of one table and one leading identifier (a contact's processed stanzas)
    /// share it, so each such name costs one compression fewer. At most [`MAX_PREFIXES`].
    prefixes: HashMap<[u8; BLOCK], Hmac<Sha256>, Fast>,
}

/// SHA-256's block length.
const BLOCK: usize = 64;
/// First blocks of names remembered; past this, they start again.
const MAX_PREFIXES: usize = 64;
/// Framed name parts up to this long are built on the stack (and may use a first block
/// remembered).
const NAME_ON_STACK: usize = 256;

struct RecentRecord {
    version: u64,
    sealed: Vec<u8>,
    opened: (u16, Zeroizing<Vec<u8>>),
}

impl Recent {
    fn get(&self, table: &str, key: &[u8], version: u64, sealed: &[u8]) -> Option<Opened> {
        self.record(table, key, version, sealed)
            .map(|record| record.opened.clone())
    }

    /// The record remembered for exactly this (table, key, version, sealed bytes).
    fn record(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        sealed: &[u8],
    ) -> Option<&RecentRecord> {
        let record = self.tables.get(table)?.get(key)?;
        (record.version == version && record.sealed == sealed).then_some(record)
    }

    fn put(&mut self, table: &str, key: &[u8], version: u64, sealed: &[u8], opened: Opened) {
        let size = sealed.len() + opened.1.len();
        if size > RECENT_BYTES {
            return;
        }
        if self.bytes + size > RECENT_BYTES {
            self.tables.clear();
            self.bytes = 0;
        }
        let records = match self.tables.get_mut(table) {
            Some(records) => records,
            None => self.tables.entry(table.to_owned()).or_default(),
        };
        // A record put again (every write of a record read at every operation) takes its
        // old place: no key copied, and the sealed bytes (no secret) in the old buffer.
        match records.get_mut(key) {
            Some(old) => {
                self.bytes -= old.sealed.len() + old.opened.1.len();
                old.version = version;
                old.sealed.clear();
                old.sealed.extend_from_slice(sealed);
                old.opened = opened;
            }
            None => {
                let record = RecentRecord {
                    version,
                    sealed: sealed.to_vec(),
                    opened,
                };
                records.insert(key.to_vec(), record);
            }
        }
        self.bytes += size;
    }
}

type Opened = (u16, Zeroizing<Vec<u8>>);

type Fast = foldhash::fast::RandomState;

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<secret>)")
    }
}

impl Sealer {
    /// The sealing and naming keys of `key`. Different purposes get independent keys, so the
    /// same storage key may also seal [`persist`](crate::persist) blobs.
    pub fn new(key: &StorageKey) -> Self {
        let mut cipher = Zeroizing::new([0u8; 32]);
        let mut names = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&[], key.as_bytes(), b"olmo store: seal", cipher.as_mut());
        hkdf_sha256(&[], key.as_bytes(), b"olmo store: names", names.as_mut());
        // HMAC accepts keys of any length, so this cannot fail.
        let names = <Hmac<Sha256> as KeyInit>::new_from_slice(names.as_ref())
            .unwrap_or_else(|_| unreachable!());
        Self {
            cipher,
            names,
            recent: None,
            unremembered: &[],
            plain: false,
        }
    }

    /// This sealer, for an ephemeral backend ([`Backend::is_ephemeral`]): each record is
    /// `0 ‖ schema ‖ plaintext`, neither encrypted nor authenticated, for a store that lives
    /// and dies in this process's memory has nothing at rest to protect. It opens only such
    /// records, and a sealing sealer opens none of them (format 0 is not
    /// [`FORMAT`]), so plaintext put into a persistent store is refused as corrupt, never
    /// read. Names stay the keyed hashes. Nothing is remembered: opening is a copy.
    ///
    /// [`Backend::is_ephemeral`]: super::Backend::is_ephemeral
    pub fn passing_through(mut self) -> Self {
        self.plain = true;
        self.recent = None;
        self
    }

    /// This sealer, keeping the records it last opened or sealed (up to 1 MiB, plaintexts
    /// wiped when dropped) so that a record read again unchanged (same version, same sealed
    /// bytes) is not decrypted again: for a machine that reads the same records at every
    /// operation.
    pub fn remembering(mut self) -> Self {
        if !self.plain {
            self.recent = Some(Arc::default());
        }
        self
    }

    /// This sealer, not remembering the records of `tables` it seals: for records written once
    /// and rarely read again (a replay record per message), which would only push out the
    /// records read at every operation.
    pub fn not_remembering(mut self, tables: &'static [&'static str]) -> Self {
        self.unremembered = tables;
        self
    }

    fn recent(&self) -> Option<std::sync::MutexGuard<'_, Recent>> {
        let recent = self.recent.as_ref()?;
        Some(recent.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The record key for an identifier made of `parts` in `table`: a keyed hash, so the same
    /// parts give the same key and a backend learns nothing from it. Parts are length-prefixed,
    /// so (`"ab"`, `"c"`) and (`"a"`, `"bc"`) differ.
    pub fn name(&self, table: &str, parts: &[&[u8]]) -> Vec<u8> {
        self.name_bytes(table, parts).to_vec()
    }

    /// As [`Sealer::name`], as the array it is (for a caller that keeps names without
    /// allocating each).
    pub fn name_bytes(&self, table: &str, parts: &[&[u8]]) -> [u8; NAME_LEN] {
        let len = 8 + table.len() + parts.iter().map(|part| 8 + part.len()).sum::<usize>();
        if (BLOCK..=NAME_ON_STACK).contains(&len)
            && let Some(mut recent) = self.recent()
        {
            let mut framed = [0u8; NAME_ON_STACK];
            let mut at = 0;
            for part in std::iter::once(&table.as_bytes()).chain(parts) {
                framed[at..at + 8].copy_from_slice(&(part.len() as u64).to_be_bytes());
                framed[at + 8..at + 8 + part.len()].copy_from_slice(part);
                at += 8 + part.len();
            }
            let (first, rest) = framed[..len].split_at(BLOCK);
            let mut first_block = [0u8; BLOCK];
            first_block.copy_from_slice(first);
            let mut mac = match recent.prefixes.get(&first_block) {
                Some(mac) => mac.clone(),
                None => {
                    let mut mac = self.names.clone();
                    mac.update(first);
                    if recent.prefixes.len() >= MAX_PREFIXES {
                        recent.prefixes.clear();
                    }
                    recent.prefixes.insert(first_block, mac.clone());
                    mac
                }
            };
            drop(recent);
            mac.update(rest);
            return mac.finalize().into_bytes().into();
        }
        let mut mac = self.names.clone();
        for part in std::iter::once(&table.as_bytes()).chain(parts) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // The key is 32 bytes by construction.
        XChaCha20Poly1305::new_from_slice(self.cipher.as_ref()).unwrap_or_else(|_| unreachable!())
    }

    /// Seals `plaintext` (schema first) as the value of (table, key) at `version`.
    pub fn seal(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        schema: u16,
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        let sealed = self.seal_only(table, key, version, schema, plaintext, rng);
        self.remember(table, key, version, &sealed, || {
            (schema, Zeroizing::new(plaintext.to_vec()))
        });
        sealed
    }

    /// As [`Sealer::seal`], the plaintext given away: a sealer that remembers keeps it as it
    /// is instead of a copy.
    pub(super) fn seal_owned(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        opened: Opened,
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        let sealed = self.seal_only(table, key, version, opened.0, &opened.1, rng);
        self.remember(table, key, version, &sealed, || opened);
        sealed
    }

    /// Seals as [`Sealer::seal_owned`] but remembers nothing: for a record whose contents the
    /// caller keeps itself (a [`Known`](super::Known) record).
    pub(super) fn seal_forgetting(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        opened: &Opened,
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        self.seal_only(table, key, version, opened.0, &opened.1, rng)
    }

    /// Whether records of `table` are remembered once sealed ([`Sealer::not_remembering`]):
    /// those are not worth keeping either.
    pub(super) fn keeps(&self, table: &str) -> bool {
        !self.unremembered.contains(&table)
    }

    /// Remembers what opening `sealed` would give, whether or not it reaches the store.
    fn remember(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        sealed: &[u8],
        opened: impl FnOnce() -> Opened,
    ) {
        if !self.unremembered.contains(&table)
            && let Some(mut recent) = self.recent()
        {
            recent.put(table, key, version, sealed, opened());
        }
    }

    fn seal_only(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        schema: u16,
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        if self.plain {
            let mut out = Vec::with_capacity(1 + SCHEMA_LENGTH + plaintext.len());
            out.push(PLAIN_FORMAT);
            out.extend_from_slice(&schema.to_be_bytes());
            out.extend_from_slice(plaintext);
            return out;
        }
        let mut nonce = [0u8; NONCE_LENGTH];
        rng.fill_bytes(&mut nonce);
        // One buffer, encrypted in place: the plaintext is never copied elsewhere, and the
        // capacity is exact, so it never moves (a move would leave a copy behind).
        let mut out =
            Vec::with_capacity(1 + NONCE_LENGTH + SCHEMA_LENGTH + plaintext.len() + TAG_LENGTH);
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&schema.to_be_bytes());
        out.extend_from_slice(plaintext);
        let tag = with_associated_data(table, key, version, |aad| {
            self.cipher().encrypt_inout_detached(
                (&nonce).into(),
                aad,
                (&mut out[1 + NONCE_LENGTH..]).into(),
            )
        });
        // Encryption fails only beyond 256 GiB of plaintext.
        let tag = tag.unwrap_or_else(|_| unreachable!());
        out.extend_from_slice(&tag);
        out
    }

    /// Opens a record sealed by [`Sealer::seal`] for exactly this (table, key, version), giving
    /// its schema and plaintext.
    pub fn open(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        sealed: &[u8],
    ) -> Result<(u16, Zeroizing<Vec<u8>>), StoreError> {
        if let Some(recent) = self.recent()
            && let Some(opened) = recent.get(table, key, version, sealed)
        {
            return Ok(opened);
        }
        let opened = self.open_sealed(table, key, version, sealed)?;
        if let Some(mut recent) = self.recent() {
            recent.put(table, key, version, sealed, opened.clone());
        }
        Ok(opened)
    }

    /// As [`Sealer::open`], giving what `read` takes from the schema and plaintext instead of
    /// a copy of them (a record remembered is read where it is kept).
    pub fn open_with<R>(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        sealed: &[u8],
        read: impl FnOnce(u16, &[u8]) -> R,
    ) -> Result<R, StoreError> {
        if let Some(recent) = self.recent()
            && let Some(record) = recent.record(table, key, version, sealed)
        {
            return Ok(read(record.opened.0, &record.opened.1));
        }
        let opened = self.open_sealed(table, key, version, sealed)?;
        let value = read(opened.0, &opened.1);
        if let Some(mut recent) = self.recent() {
            recent.put(table, key, version, sealed, opened);
        }
        Ok(value)
    }

    fn open_sealed(
        &self,
        table: &str,
        key: &[u8],
        version: u64,
        sealed: &[u8],
    ) -> Result<Opened, StoreError> {
        let corrupt = || StoreError::Corrupt {
            table: table.to_owned(),
            key: Hex(key).to_string(),
        };
        if self.plain {
            return match sealed {
                [PLAIN_FORMAT, high, low, plaintext @ ..] => Ok((
                    u16::from_be_bytes([*high, *low]),
                    Zeroizing::new(plaintext.to_vec()),
                )),
                _ => Err(corrupt()),
            };
        }
        let Some((&FORMAT, rest)) = sealed.split_first() else {
            return Err(corrupt());
        };
        if rest.len() < NONCE_LENGTH + TAG_LENGTH + SCHEMA_LENGTH {
            return Err(corrupt());
        }
        let (nonce, rest) = rest.split_at(NONCE_LENGTH);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LENGTH);
        let nonce: &[u8; NONCE_LENGTH] = nonce.try_into().map_err(|_| corrupt())?;
        let tag = Tag::try_from(tag).map_err(|_| corrupt())?;
        // Decrypted in place, in the buffer handed out: one allocation, wiped on drop.
        let mut message = Zeroizing::new(ciphertext.to_vec());
        with_associated_data(table, key, version, |aad| {
            self.cipher().decrypt_inout_detached(
                nonce.into(),
                aad,
                message.as_mut_slice().into(),
                &tag,
            )
        })
        .map_err(|_| corrupt())?;
        let schema = u16::from_be_bytes([message[0], message[1]]);
        message.drain(..SCHEMA_LENGTH);
        Ok((schema, message))
    }
}

/// Associated data up to this long is built on the stack.
const AAD_ON_STACK: usize = 128;

/// Calls `f` with `format ‖ len(table) ‖ table ‖ len(key) ‖ key ‖ version`, lengths and version
/// big-endian, built without allocating when it is short (every record the machines write).
fn with_associated_data<R>(table: &str, key: &[u8], version: u64, f: impl FnOnce(&[u8]) -> R) -> R {
    let len = 1 + 16 + table.len() + key.len() + 8;
    if len > AAD_ON_STACK {
        return f(&associated_data(table, key, version));
    }
    let mut aad = [0u8; AAD_ON_STACK];
    let mut at = 0;
    for part in [
        &[FORMAT][..],
        &(table.len() as u64).to_be_bytes(),
        table.as_bytes(),
        &(key.len() as u64).to_be_bytes(),
        key,
        &version.to_be_bytes(),
    ] {
        aad[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    f(&aad[..len])
}

/// `format ‖ len(table) ‖ table ‖ len(key) ‖ key ‖ version`, lengths and version big-endian.
fn associated_data(table: &str, key: &[u8], version: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + 16 + table.len() + key.len() + 8);
    aad.push(FORMAT);
    aad.extend_from_slice(&(table.len() as u64).to_be_bytes());
    aad.extend_from_slice(table.as_bytes());
    aad.extend_from_slice(&(key.len() as u64).to_be_bytes());
    aad.extend_from_slice(key);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hmac_sha256;

    /// A passing-through sealer frames records in the clear and opens only those; a sealing
    /// one refuses them, so plaintext put into a persistent store is never read.
    #[test]
    fn passing_through_frames_and_is_never_mixed_with_sealing() {
        let storage = StorageKey::from_bytes([9; 32]);
        let sealing = Sealer::new(&storage);
        let plain = Sealer::new(&storage).passing_through().remembering();
        let mut rng = rand::rng();
        let framed = plain.seal("t", b"k", 1, 7, b"secret", &mut rng);
        assert_eq!(framed, [&[0u8, 0, 7][..], b"secret"].concat());
        let (schema, opened) = plain.open("t", b"k", 1, &framed).unwrap();
        assert_eq!((schema, opened.as_slice()), (7, &b"secret"[..]));
        assert!(matches!(
            sealing.open("t", b"k", 1, &framed),
            Err(StoreError::Corrupt { .. })
        ));
        let sealed = sealing.seal("t", b"k", 1, 7, b"secret", &mut rng);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert!(matches!(
            plain.open("t", b"k", 1, &sealed),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            plain.open("t", b"k", 1, &[0, 0]),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(plain.name("t", &[b"x"]), sealing.name("t", &[b"x"]));
    }

    /// Names are record keys already in stores: the pre-keyed HMAC gives what hashing the
    /// framed parts under the naming key gave.
    #[test]
    fn names_are_the_keyed_hash_of_the_framed_parts() {
        let storage = StorageKey::from_bytes([9; 32]);
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&[], storage.as_bytes(), b"olmo store: names", key.as_mut());
        let sealer = Sealer::new(&storage);
        let remembering = Sealer::new(&storage).remembering();
        for (table, parts) in [
            (
                "xmpp.processed",
                vec![&b"alice@example.org"[..], b"archive-1"],
            ),
            ("t", vec![]),
            ("ab", vec![&b""[..], &[0u8; 200][..]]),
            // Past one block, sharing their first with each other and with the one above.
            ("ab", vec![&b""[..], &[0u8; 200][..], b"x"]),
            ("ab", vec![&b""[..], &[0u8; 60][..]]),
            // Exactly one block, and longer than the stack buffer.
            ("ab", vec![&[7u8; 38][..]]),
            ("ab", vec![&[7u8; 300][..]]),
        ] {
            let mut framed = Vec::new();
            for part in std::iter::once(&table.as_bytes()).chain(&parts) {
                framed.extend_from_slice(&(part.len() as u64).to_be_bytes());
                framed.extend_from_slice(part);
            }
            let expected = hmac_sha256(key.as_ref(), &[&framed]).to_vec();
            assert_eq!(sealer.name(table, &parts), expected);
            assert_eq!(sealer.clone().name(table, &parts), expected);
            // A remembering sealer, its first block computed then remembered.
            assert_eq!(remembering.name(table, &parts), expected);
            assert_eq!(remembering.name(table, &parts), expected);
        }
    }
}
