//! Megolm: a room's outbound encrypt and an inbound session's decrypt.

use olmo::megolm::{GroupSession, InboundGroupSession as CoreInbound, MegolmMessage};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::error::Failure;
use crate::{restored_in_olmo, saved_by_olmo, storage_key};

/// The message index written in a Megolm message (readable before decrypting, for replay
/// checks keyed on it).
#[pyfunction]
pub(crate) fn megolm_message_index(message: &[u8]) -> Result<u32, Failure> {
    Ok(MegolmMessage::decode(message)?.message_index())
}

/// A room's outbound Megolm session, for encrypting: make it, and share its key, with
/// `olmo.OutboundGroupSession`, and convert it with `from_olmo` or `restore`.
#[pyclass(module = "olmo_fast")]
pub(crate) struct OutboundGroupSession(GroupSession);

#[pymethods]
impl OutboundGroupSession {
    /// Restores a session from `save`'s (or `olmo.OutboundGroupSession.save`'s) blob and the
    /// same key.
    #[classmethod]
    fn restore(_class: &Bound<'_, PyType>, blob: &[u8], key: &[u8]) -> Result<Self, Failure> {
        Ok(Self(GroupSession::restore(blob, &storage_key(key)?)?))
    }

    /// A copy of an `olmo.OutboundGroupSession`.
    #[classmethod]
    fn from_olmo(_class: &Bound<'_, PyType>, session: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (blob, key) = saved_by_olmo(session)?;
        Ok(Self(
            GroupSession::restore(&blob, &key).map_err(Failure::from)?,
        ))
    }

    /// A copy of this session as an `olmo.OutboundGroupSession`.
    fn to_olmo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        restored_in_olmo(py, "OutboundGroupSession", |key| self.0.save(key))
    }

    /// The session sealed under a 32-byte key. Save after every encrypt.
    fn save<'py>(&self, py: Python<'py>, key: &[u8]) -> Result<Bound<'py, PyBytes>, Failure> {
        Ok(PyBytes::new(py, &self.0.save(&storage_key(key)?)))
    }

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
        Ok(PyBytes::new(py, &message.to_bytes()))
    }

    fn __repr__(&self) -> String {
        format!(
            "OutboundGroupSession(session_id={:?}, message_index={})",
            self.0.session_id(),
            self.0.message_index()
        )
    }
}

/// An inbound Megolm session, for decrypting: make it from a shared key with
/// `olmo.InboundGroupSession`, and convert it with `from_olmo` or `restore`.
#[pyclass(module = "olmo_fast")]
pub(crate) struct InboundGroupSession(CoreInbound);

#[pymethods]
impl InboundGroupSession {
    /// Restores a session from `save`'s (or `olmo.InboundGroupSession.save`'s) blob and the
    /// same key.
    #[classmethod]
    fn restore(_class: &Bound<'_, PyType>, blob: &[u8], key: &[u8]) -> Result<Self, Failure> {
        Ok(Self(CoreInbound::restore(blob, &storage_key(key)?)?))
    }

    /// A copy of an `olmo.InboundGroupSession`.
    #[classmethod]
    fn from_olmo(_class: &Bound<'_, PyType>, session: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (blob, key) = saved_by_olmo(session)?;
        Ok(Self(
            CoreInbound::restore(&blob, &key).map_err(Failure::from)?,
        ))
    }

    /// A copy of this session as an `olmo.InboundGroupSession`.
    fn to_olmo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        restored_in_olmo(py, "InboundGroupSession", |key| self.0.save(key))
    }

    /// The session sealed under a 32-byte key.
    fn save<'py>(&self, py: Python<'py>, key: &[u8]) -> Result<Bound<'py, PyBytes>, Failure> {
        Ok(PyBytes::new(py, &self.0.save(&storage_key(key)?)))
    }

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
