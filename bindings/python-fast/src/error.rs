//! The exceptions: `OlmoError` and one subclass per concern, reachable the way the UniFFI wheel
//! spells them (`olmo_fast.OlmoError.Decrypt`, as `olmo.OlmoError.Decrypt`) and by their own
//! names (`olmo_fast.DecryptError`; a malformed key is `InvalidKeyError`, not shadowing the builtin). `str(error)` and `error.reason` are the core error's text,
//! which never holds a key or a plaintext.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    olmo_fast,
    OlmoError,
    PyException,
    "Why an olmo_fast call failed; `reason` says what was wrong. The object the call was made on is unchanged."
);
create_exception!(
    olmo_fast,
    InvalidKeyError,
    OlmoError,
    "A key or argument is malformed (wrong length, bad base64, not a point)."
);
create_exception!(olmo_fast, DecodeError, OlmoError, "A message is malformed.");
create_exception!(
    olmo_fast,
    DecryptError,
    OlmoError,
    "A message did not decrypt (duplicate, too old, bad MAC or signature, unknown index, another session's)."
);
create_exception!(
    olmo_fast,
    EncryptError,
    OlmoError,
    "A message could not be encrypted (too large, session used up or invalidated)."
);
create_exception!(
    olmo_fast,
    SessionCreationError,
    OlmoError,
    "An inbound Olm session could not be created (unknown one-time key, other sender)."
);
create_exception!(
    olmo_fast,
    PersistError,
    OlmoError,
    "A stored blob did not restore (wrong key, altered, another kind, newer version)."
);

/// A failure of the core, kept as its kind and text until it becomes a Python exception.
pub(crate) struct Failure {
    kind: Kind,
    reason: String,
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Key,
    Decode,
    Decrypt,
    Encrypt,
    SessionCreation,
    Persist,
}

impl Failure {
    pub(crate) fn new(kind: Kind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> Self {
        let reason = failure.reason;
        match failure.kind {
            Kind::Key => InvalidKeyError::new_err(reason),
            Kind::Decode => DecodeError::new_err(reason),
            Kind::Decrypt => DecryptError::new_err(reason),
            Kind::Encrypt => EncryptError::new_err(reason),
            Kind::SessionCreation => SessionCreationError::new_err(reason),
            Kind::Persist => PersistError::new_err(reason),
        }
    }
}

macro_rules! from_core {
    ($kind:ident: $($error:ty),+) => {
        $(impl From<$error> for Failure {
            fn from(error: $error) -> Self {
                Failure::new(Kind::$kind, error.to_string())
            }
        })+
    };
}

from_core!(Key: olmo::crypto::KeyError);
from_core!(Decode: olmo::DecodeError);
from_core!(Decrypt: olmo::olm::SessionDecryptError, olmo::megolm::MegolmDecryptError);
from_core!(Encrypt: olmo::ratchet::EncryptError, olmo::megolm::GroupEncryptError);
from_core!(SessionCreation: olmo::olm::SessionCreationError);
from_core!(Persist: olmo::persist::PersistError);

/// `reason`, the property every exception here has: the text it was raised with.
#[pyfunction]
fn reason(error: &Bound<'_, PyAny>) -> PyResult<String> {
    error.getattr("args")?.get_item(0)?.extract()
}

/// Adds the exceptions to the module, each also as an attribute of `OlmoError`.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let base = py.get_type::<OlmoError>();
    let property = py.import("builtins")?.getattr("property")?;
    base.setattr(
        "reason",
        property.call1((wrap_pyfunction!(reason, module)?,))?,
    )?;
    module.add("OlmoError", &base)?;
    let variants = [
        ("Key", "InvalidKeyError", py.get_type::<InvalidKeyError>()),
        ("Decode", "DecodeError", py.get_type::<DecodeError>()),
        ("Decrypt", "DecryptError", py.get_type::<DecryptError>()),
        ("Encrypt", "EncryptError", py.get_type::<EncryptError>()),
        (
            "SessionCreation",
            "SessionCreationError",
            py.get_type::<SessionCreationError>(),
        ),
        ("Persist", "PersistError", py.get_type::<PersistError>()),
    ];
    for (short, name, kind) in variants {
        base.setattr(short, &kind)?;
        module.add(name, kind)?;
    }
    Ok(())
}
