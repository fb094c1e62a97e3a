//! Decrypting many messages of one session at once: a bot catching up on a room.
//!
//! Decrypting a backlog one message at a time jumps the ratchet from the first known index for
//! every message that arrives out of order, and verifies every signature alone. Here the
//! signatures are verified in batches, then the messages are opened in index order while one
//! ratchet walks forward, so each index costs a hash step or two.

use super::inbound::{DecryptedMessage, InboundGroupSession};
use super::message::{MegolmDecryptError, MegolmMessage};
use crate::crypto::Ed25519PublicKey;

impl InboundGroupSession {
    /// Decrypts `messages` (in any order, duplicates allowed), returning one result per
    /// message in the order given. A bad message fails alone; the others are unaffected.
    /// The session remembers the latest ratchet reached, as for single messages.
    pub fn decrypt_backlog(
        &mut self,
        messages: &[MegolmMessage],
    ) -> Vec<Result<DecryptedMessage, MegolmDecryptError>> {
        let authentic = self.verify_signatures(messages);
        let mut results: Vec<_> = (0..messages.len())
            .map(|_| Err(MegolmDecryptError::Signature))
            .collect();
        let mut order: Vec<usize> = (0..messages.len()).filter(|i| authentic[*i]).collect();
        order.sort_by_key(|i| messages[*i].message_index());

        let first_known = self.first_known_index();
        let session_id = self.session_id();
        let mut ratchet = self.initial.clone();
        let mut newest_opened = None;
        for i in order {
            let index = messages[i].message_index();
            // Sorted, so from the first known index on the walk only moves forward.
            if index < first_known || ratchet.advance_to(index).is_err() {
                results[i] = Err(MegolmDecryptError::UnknownIndex {
                    message: index,
                    first_known,
                });
                continue;
            }
            results[i] = messages[i].open(&ratchet).map(|plaintext| {
                newest_opened = Some(index);
                DecryptedMessage::new(plaintext, index, session_id.clone())
            });
        }
        if newest_opened == Some(ratchet.index()) {
            self.remember_latest(ratchet);
        }
        results
    }

    /// Whether each message is signed by this session's key, verified in batches: one result
    /// per message, in order. A bad signature fails alone.
    pub(crate) fn verify_signatures<'m>(
        &self,
        messages: impl IntoIterator<Item = &'m MegolmMessage>,
    ) -> Vec<bool> {
        let messages: Vec<&MegolmMessage> = messages.into_iter().collect();
        let signatures: Vec<_> = messages.iter().map(|m| m.signature()).collect();
        let items: Vec<_> = messages
            .iter()
            .zip(&signatures)
            .map(|(message, signature)| (&self.signing_key, message.signed_bytes(), signature))
            .collect();
        // The batch proves every R free of torsion, so it accepts exactly what single
        // verification accepts.
        Ed25519PublicKey::verify_many(&items)
    }

    /// As [`InboundGroupSession::decrypt`], for a message whose signature was found good by
    /// [`InboundGroupSession::verify_signatures`] on this session (the batch verification a
    /// caller grouping many sessions' messages does first): checks the MAC and decrypts.
    pub(crate) fn decrypt_verified(
        &mut self,
        message: &MegolmMessage,
    ) -> Result<DecryptedMessage, MegolmDecryptError> {
        let ratchet = self.ratchet_at(message.message_index())?;
        let plaintext = message.open(&ratchet)?;
        self.remember_latest(ratchet);
        Ok(DecryptedMessage::new(
            plaintext,
            message.message_index(),
            self.session_id(),
        ))
    }
}
