//! OMEMO stanza elements as typed values: `<encrypted>`, `<bundle>`, the device list, and the
//! XEP-0420 SCE `<envelope>` that OMEMO 2 encrypts, each for both OMEMO versions where it
//! applies, parsed from and serialized to XML text.
//!
//! This is a syntax layer and nothing more: binary values are decoded from base64 into raw
//! bytes, but no key length, prefix, signature, JID or timestamp is checked here; the protocol
//! layer does that. What this layer does guarantee is that untrusted input costs bounded time
//! and memory and never panics: input size, depth and element counts are capped ([`Limit`]),
//! DTDs are refused, and every failure is a [`StanzaError`].
//!
//! Parsing is namespace-aware (an element is its namespace plus local name, whether declared
//! on the element, inherited, or via a prefix); the namespace decides the [`Version`]. Unknown
//! elements and attributes are ignored, for forward compatibility; a known element that may
//! occur once but occurs twice is an error. Output uses default namespace declarations and
//! single-quoted attributes, without whitespace.
//!
//! Device ids (`sid`, `rid`, `<device id>`) must be in `1..=`[`MAX_DEVICE_ID`] (XEP-0384: a
//! random integer between 1 and 2³¹−1), so 0 is rejected; pre-key and signed pre-key ids are
//! any `u32`, 0 included.
//!
//! [`Version`]: crate::omemo::Version

mod bundle;
mod device_list;
mod encrypted;
mod envelope;
mod error;
mod xml;

pub use bundle::BundleElement;
pub use device_list::{DeviceListElement, ListedDevice};
pub use encrypted::{EncryptedElement, KeyElement};
pub use envelope::Envelope;
pub use error::{Limit, StanzaError};

/// The largest device id XEP-0384 allows, 2³¹−1.
pub const MAX_DEVICE_ID: u32 = 0x7FFF_FFFF;

/// The namespace of XEP-0420 Stanza Content Encryption, version 1.
pub const SCE_NAMESPACE: &str = "urn:xmpp:sce:1";

/// The namespace of message bodies in content (`<body xmlns='jabber:client'>`).
pub const CLIENT_NAMESPACE: &str = "jabber:client";
