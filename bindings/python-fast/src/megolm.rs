//! Megolm: a room's outbound encrypt and an inbound session's decrypt.

use olmo::megolm::{GroupSession, InboundGroupSession as CoreInbound, MegolmMessage};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::error::Failure;
use crate::stored_class;

/// The message index written in a Megolm message (readable before decrypting, for replay
/// checks keyed on it).
#[pyfunction]
pub(crate) fn megolm_message_index(message: &[u8]) -> Result<u32, Failure> {
    Ok(MegolmMessage::decode(message)?.message_index())
}

stored_class! {
    /// A room's outbound Megolm session, for encrypting: make it, and share its key, with
    /// `olmo.OutboundGroupSession`, and convert it with `from_olmo` or `restore`.
    OutboundGroupSession(GroupSession) as "OutboundGroupSession",
    from_olmo(session),
    save: "The session sealed under a 32-byte key. Save after every encrypt.";

    /// The session id (the base64 signing key).
    fn session_id(&self) -> String {
        self.0.session_id()
    }

    /// The index the next message will have.
    fn message_index(&self) -> u32 {
        self.0.message_index()
    }

    /// Encrypts one room event; the ratchet has advanced when this returns.
    fn encrypt<'py>(
        &mut self,
        py: Python<'py>,
        plaintext: &[u8],
    ) -> Result<Bound<'py, PyBytes>, Failure> {
        let message = self.0.encrypt(plaintext)?;
        Ok(PyBytes::new(py, message.as_bytes()))
    }

    fn __repr__(&self) -> String {
        format!(
            "OutboundGroupSession(session_id={:?}, message_index={})",
            self.0.session_id(),
            self.0.message_index()
        )
    }
}

stored_class! {
    /// An inbound Megolm session, for decrypting: make it from a shared key with
    /// `olmo.InboundGroupSession`, and convert it with `from_olmo` or `restore`.
    InboundGroupSession(CoreInbound) as "InboundGroupSession",
    from_olmo(session),
    save: "The session sealed under a 32-byte key.";

    /// The session id (the sender's base64 signing key).
    fn session_id(&self) -> String {
        self.0.session_id()
    }

    /// The first message index this session can decrypt.
    fn first_known_index(&self) -> u32 {
        self.0.first_known_index()
    }

    /// Verifies the signature and MAC, then decrypts; the plaintext. The message's index is
    /// `megolm_message_index`; on any error the session is unchanged.
    fn decrypt<'py>(
        &mut self,
        py: Python<'py>,
        message: &[u8],
    ) -> Result<Bound<'py, PyBytes>, Failure> {
        let message = MegolmMessage::decode(message)?;
        let decrypted = self.0.decrypt(&message)?;
        Ok(PyBytes::new(py, &decrypted.plaintext))
    }

    fn __repr__(&self) -> String {
        format!(
            "InboundGroupSession(session_id={:?}, first_known_index={})",
            self.0.session_id(),
            self.0.first_known_index()
        )
    }
}
