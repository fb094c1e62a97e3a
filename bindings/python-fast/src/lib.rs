//! olmo's per-message hot paths for Python through pyo3: Olm session encrypt and decrypt,
//! session creation (outbound, and inbound from a pre-key message), Megolm outbound encrypt and
//! inbound decrypt, over the same core objects as the UniFFI wheel (`olmo`). UniFFI's
//! generated Python layer costs about 10 µs per bytes-in/bytes-out call; a pyo3 method costs
//! well under 1 µs, which is the whole of an Olm decrypt.
//!
//! Everything else (making accounts and keys, one-time keys, libolm pickles, the machines)
//! stays in the UniFFI wheel: each object here converts to and from its UniFFI twin through
//! their common stored form (`from_olmo` / `to_olmo`, or `save` / `restore` under the app's
//! 32-byte key). The two objects are then independent copies: keep using one of them.

mod error;
mod megolm;
mod olm;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use crate::error::{Failure, Kind};

/// The caller's 32-byte storage key, or `OlmoError.Key`.
fn storage_key(bytes: &[u8]) -> Result<olmo::persist::StorageKey, Failure> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        Failure::new(
            Kind::Key,
            format!("a storage key has 32 bytes, not {}", bytes.len()),
        )
    })?;
    Ok(olmo::persist::StorageKey::from_bytes(bytes))
}

/// A UniFFI object's stored form under a fresh random key, and that key: the hand-over of
/// `from_olmo`. (The key's Python copy is not wiped; it seals only this one blob.)
fn saved_by_olmo(object: &Bound<'_, PyAny>) -> PyResult<(Vec<u8>, olmo::persist::StorageKey)> {
    let key = Zeroizing::new(rand::random::<[u8; 32]>());
    let blob = object
        .call_method1("save", (PyBytes::new(object.py(), &key[..]),))?
        .extract::<Vec<u8>>()?;
    Ok((blob, olmo::persist::StorageKey::from_bytes(*key)))
}

/// `olmo.<class>.restore(blob, key)` in the UniFFI wheel, where `save` seals the object under
/// a fresh random key: the hand-over of `to_olmo`.
fn restored_in_olmo<'py>(
    py: Python<'py>,
    class: &str,
    save: impl FnOnce(&olmo::persist::StorageKey) -> Vec<u8>,
) -> PyResult<Bound<'py, PyAny>> {
    let key = Zeroizing::new(rand::random::<[u8; 32]>());
    let blob = save(&olmo::persist::StorageKey::from_bytes(*key));
    py.import("olmo")?.getattr(class)?.call_method1(
        "restore",
        (PyBytes::new(py, &blob), PyBytes::new(py, &key[..])),
    )
}

/// A pyclass wrapping a core object, with the methods every class here shares, written once:
/// `restore`, `from_olmo`, `to_olmo` (through the stored form both wheels read) and `save`.
/// `$olmo` names the UniFFI twin (`olmo.<$olmo>`); `from_olmo($param)` keeps each class's
/// argument name; `save: "..."` is the class's `save` docstring; the class's own methods follow.
macro_rules! stored_class {
    (
        $(#[$class_doc:meta])*
        $class:ident($core:ty) as $olmo:literal,
        from_olmo($param:ident),
        save: $save_doc:literal;
        $($methods:tt)*
    ) => {
        $(#[$class_doc])*
        #[pyclass(module = "olmo_fast")]
        pub(crate) struct $class($core);

        #[pymethods]
        impl $class {
            #[doc = concat!("Restores it from `save`'s (or `olmo.", $olmo, ".save`'s) blob and the same key.")]
            #[classmethod]
            fn restore(
                _class: &Bound<'_, PyType>,
                blob: &[u8],
                key: &[u8],
            ) -> Result<Self, $crate::error::Failure> {
                Ok(Self(<$core>::restore(blob, &$crate::storage_key(key)?)?))
            }

            #[doc = concat!("A copy of an `olmo.", $olmo, "`.")]
            #[classmethod]
            fn from_olmo(_class: &Bound<'_, PyType>, $param: &Bound<'_, PyAny>) -> PyResult<Self> {
                let (blob, key) = $crate::saved_by_olmo($param)?;
                let core = <$core>::restore(&blob, &key).map_err($crate::error::Failure::from)?;
                Ok(Self(core))
            }

            #[doc = concat!("A copy of this object as an `olmo.", $olmo, "`.")]
            fn to_olmo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $crate::restored_in_olmo(py, $olmo, |key| self.0.save(key))
            }

            #[doc = $save_doc]
            fn save<'py>(
                &self,
                py: Python<'py>,
                key: &[u8],
            ) -> Result<Bound<'py, PyBytes>, $crate::error::Failure> {
                Ok(PyBytes::new(py, &self.0.save(&$crate::storage_key(key)?)))
            }

            $($methods)*
        }
    };
}
pub(crate) use stored_class;

/// The `olmo_fast` module.
#[pymodule]
fn olmo_fast(module: &Bound<'_, PyModule>) -> PyResult<()> {
    error::register(module)?;
    module.add_class::<olm::OlmAccount>()?;
    module.add_class::<olm::OlmSession>()?;
    module.add_class::<megolm::OutboundGroupSession>()?;
    module.add_class::<megolm::InboundGroupSession>()?;
    module.add_function(wrap_pyfunction!(megolm::megolm_message_index, module)?)?;
    Ok(())
}
