//! Olm: the account's session creation and the session's encrypt and decrypt.

use olmo::crypto::Curve25519PublicKey;
use olmo::olm::{Account, OlmMessage, Session};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::error::{Failure, Kind};
use crate::stored_class;

fn curve_key(text: &str) -> Result<Curve25519PublicKey, Failure> {
    Ok(Curve25519PublicKey::from_base64(text)?)
}

stored_class! {
    /// An Olm account, for creating sessions only: make it, publish its keys and save it with
    /// `olmo.OlmAccount`, and convert it with `from_olmo` or `restore`.
    OlmAccount(Account) as "OlmAccount",
    from_olmo(account),
    save: "The account sealed under a 32-byte key; `olmo.OlmAccount.restore` reads it too.";

    /// The Curve25519 identity key, base64.
    fn curve25519_key(&self) -> String {
        self.0.curve25519_key().to_base64()
    }

    /// Starts a session with a device from its identity key and a one-time key it published.
    fn create_outbound_session(
        &self,
        identity_key: &str,
        one_time_key: &str,
    ) -> Result<OlmSession, Failure> {
        let session = self
            .0
            .create_outbound_session(curve_key(identity_key)?, curve_key(one_time_key)?)?;
        Ok(OlmSession(session))
    }

    /// Creates the session a pre-key message (type 0) from `identity_key` starts and decrypts
    /// that message: `(session, plaintext)`. The one-time key it used is removed: save the
    /// account.
    fn create_inbound_session<'py>(
        &mut self,
        py: Python<'py>,
        identity_key: &str,
        ciphertext: &[u8],
    ) -> Result<(OlmSession, Bound<'py, PyBytes>), Failure> {
        let OlmMessage::PreKey(pre_key) = OlmMessage::from_parts(0, ciphertext)? else {
            return Err(Failure::new(
                Kind::SessionCreation,
                "only a pre-key message (type 0) starts a session",
            ));
        };
        let created = self
            .0
            .create_inbound_session(curve_key(identity_key)?, &pre_key)?;
        Ok((
            OlmSession(created.session),
            PyBytes::new(py, &created.plaintext),
        ))
    }

    fn __repr__(&self) -> String {
        format!("OlmAccount(curve25519_key={:?})", self.curve25519_key())
    }
}

stored_class! {
    /// A pairwise Olm session.
    OlmSession(Session) as "OlmSession",
    from_olmo(session),
    save: "The session sealed under a 32-byte key. Save after every encrypt and decrypt.";

    /// The session id (base64).
    fn session_id(&self) -> String {
        self.0.session_id()
    }

    /// The type of the messages `encrypt` gives now: 0 (pre-key) until a message from the
    /// other side was decrypted, then 1 (normal).
    fn message_type(&self) -> u8 {
        u8::from(self.0.has_received_message())
    }

    /// Encrypts; the message's bytes (its type is `message_type()`). The session has advanced:
    /// save it before sending.
    fn encrypt<'py>(
        &mut self,
        py: Python<'py>,
        plaintext: &[u8],
    ) -> Result<Bound<'py, PyBytes>, Failure> {
        let message = self.0.encrypt(plaintext)?;
        Ok(PyBytes::new(py, message.as_bytes()))
    }

    /// Decrypts a message of this session from its type (0 pre-key, 1 normal) and bytes; on any
    /// error the session is unchanged.
    fn decrypt<'py>(
        &mut self,
        py: Python<'py>,
        message_type: u8,
        ciphertext: &[u8],
    ) -> Result<Bound<'py, PyBytes>, Failure> {
        let message = OlmMessage::from_parts(message_type, ciphertext)?;
        let plaintext = self.0.decrypt(&message)?;
        Ok(PyBytes::new(py, &plaintext))
    }

    fn __repr__(&self) -> String {
        format!("OlmSession(session_id={:?})", self.0.session_id())
    }
}
