//! Olm sessions with other devices, kept per peer Curve25519 key (newest use first), and
//! encrypting a to-device event to one device.

use rand_core::CryptoRng;
use serde_json::Value;
use zeroize::Zeroizing;

use super::devices::Device;
use super::error::MachineError;
use super::machine::{Machine, OLM_V1};
use super::records::{self, table};
use crate::codec::json::{Fields, ObjectWriter};
use crate::codec::json_value::{self, object};
use crate::olm::{Account, Session};
use crate::store::{Backend, Txn};

/// Sessions kept per peer key; the least recently used go first.
pub(crate) const MAX_SESSIONS_PER_PEER: usize = 10;

#[derive(Debug, Clone, Default)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
struct SessionsMeta {
    /// The peer's Curve25519 key (unpadded base64).
    peer: String,
    /// How many sessions the record holds (one blob each, most recently used first).
    count: usize,
}

/// The Olm sessions with one peer key, most recently used first.
pub(crate) struct PeerSessions {
    pub peer: String,
    pub sessions: Vec<Session>,
}

impl PeerSessions {
    /// Moves the session at `index` to the front (it was just used).
    pub fn touch(&mut self, index: usize) {
        if index < self.sessions.len() {
            let session = self.sessions.remove(index);
            self.sessions.insert(0, session);
        }
    }

    /// Adds a new session in front, dropping the least recently used beyond the bound.
    pub fn add(&mut self, session: Session) {
        self.sessions.insert(0, session);
        self.sessions.truncate(MAX_SESSIONS_PER_PEER);
    }
}

impl<B: Backend> Machine<B> {
    pub(crate) async fn load_sessions(
        &self,
        txn: &mut Txn<'_, B>,
        peer: &str,
    ) -> Result<PeerSessions, MachineError> {
        let name = self.name(table::OLM_SESSIONS, &[peer.as_bytes()]);
        let mut sessions = Vec::new();
        if let Some((meta, blobs)) =
            records::load::<B, SessionsMeta>(txn, table::OLM_SESSIONS, &name).await?
        {
            if meta.count != blobs.len() || meta.peer != peer {
                return Err(MachineError::Corrupt("olm sessions"));
            }
            for blob in blobs {
                sessions.push(
                    Session::from_record(&blob)
                        .map_err(|_| MachineError::Corrupt("olm session"))?,
                );
            }
        }
        Ok(PeerSessions {
            peer: peer.to_owned(),
            sessions,
        })
    }

    pub(crate) async fn store_sessions(
        &self,
        txn: &mut Txn<'_, B>,
        sessions: &PeerSessions,
    ) -> Result<(), MachineError> {
        let name = self.name(table::OLM_SESSIONS, &[sessions.peer.as_bytes()]);
        let blobs: Vec<Zeroizing<Vec<u8>>> =
            sessions.sessions.iter().map(Session::to_record).collect();
        let blob_refs: Vec<&[u8]> = blobs.iter().map(|b| b.as_slice()).collect();
        let meta = SessionsMeta {
            peer: sessions.peer.clone(),
            count: blobs.len(),
        };
        Ok(records::store(txn, table::OLM_SESSIONS, &name, &meta, &blob_refs).await?)
    }

    /// Whether we have an Olm session with the peer key.
    pub(crate) async fn has_session(
        &self,
        txn: &mut Txn<'_, B>,
        peer: &str,
    ) -> Result<bool, MachineError> {
        let name = self.name(table::OLM_SESSIONS, &[peer.as_bytes()]);
        Ok(txn.get(table::OLM_SESSIONS, &name).await?.is_some())
    }

    /// Encrypts a to-device event for `device` on our most recently used session with it (the
    /// session advances in the transaction). `None` when there is no session.
    pub(crate) async fn encrypt_to_device(
        &self,
        txn: &mut Txn<'_, B>,
        account: &Account,
        device: &Device,
        event_type: &str,
        content: Value,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<Value>, MachineError> {
        let mut sessions = self.load_sessions(txn, &device.curve25519).await?;
        let Some(session) = sessions.sessions.first_mut() else {
            return Ok(None);
        };
        let payload = object! {
            "type" => event_type,
            "content" => content,
            "sender" => self.user_id.as_str(),
            "sender_device" => self.device_id.as_str(),
            "keys" => object! { "ed25519" => account.ed25519_key().to_base64() },
            "recipient" => device.user_id.as_str(),
            "recipient_keys" => object! { "ed25519" => device.ed25519.as_str() },
        };
        let plaintext = Zeroizing::new(json_value::to_vec(&payload));
        let message = session
            .encrypt_with_rng(&plaintext, rng)
            .map_err(|_| MachineError::Encrypt("olm"))?;
        let (message_type, body) = message.to_parts();
        self.store_sessions(txn, &sessions).await?;
        Ok(Some(object! {
            "algorithm" => OLM_V1,
            "sender_key" => account.curve25519_key().to_base64(),
            "ciphertext" => object! {
                device.curve25519.as_str() => object! { "type" => message_type, "body" => body },
            },
        }))
    }
}

impl records::Meta for SessionsMeta {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("peer", &self.peer)
            .u64("count", self.count as u64);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            peer: fields.str("peer")?,
            count: usize::try_from(fields.u64("count")?).ok()?,
        })
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    #[test]
    fn the_sessions_record_is_written_as_serde_wrote_it() {
        crate::codec::json::same_as_serde(&SessionsMeta {
            peer: "key".into(),
            count: 3,
        });
    }
}
