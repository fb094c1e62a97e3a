//! OMEMO for XMPP: OMEMO 2 (`urn:xmpp:omemo:2`) and OMEMO 0.3 (`eu.siacs.conversations.axolotl`,
//! the libsignal protocol) as two profiles of the shared double ratchet.

/// Runs `$body` with the type `$p` bound to the profile of `$version`.
macro_rules! with_profile {
    ($version:expr, $p:ident => $body:expr) => {
        match $version {
            Version::Omemo2 => {
                type $p = Omemo2;
                $body
            }
            Version::Omemo03 => {
                type $p = Omemo03;
                $body
            }
        }
    };
}

pub mod bundle;
mod device;
mod failure;
mod identity;
mod message;
pub mod payload;
pub mod prekeys;
mod profile;
pub mod session;
pub mod stanza;
pub mod store;
pub mod wire;
mod x3dh;

pub use bundle::{BundleError, VerifiedBundle};
pub(crate) use device::parts::{Clocks, HeldSlot, PreKeyPair, SlotAddress};
pub use device::{DecryptedKey, DeviceError, OmemoDevice, VersionState};
pub use failure::FailureReason;
pub(crate) use identity::hex;
pub use identity::{DeviceIdentity, IdentityKey};
pub use message::{MAX_KEY_ATTEMPTS, MessageError, ReceivedMessage};
pub use prekeys::{PreKeyError, PreKeys, SignedPreKey};
pub use profile::{Omemo2, Omemo03, OmemoProfile};
pub use session::{
    DecryptedKeyMaterial, OmemoInboundSession, OmemoSession, SealedKey, SessionError,
};
pub use wire::KeyExchange;

/// The two OMEMO versions in use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Version {
    /// OMEMO 2, XEP-0384 0.8 and later (`urn:xmpp:omemo:2`).
    Omemo2,
    /// OMEMO 0.3, the version Conversations, Dino and most clients deploy
    /// (`eu.siacs.conversations.axolotl`).
    Omemo03,
}

/// "OMEMO 2" or "OMEMO 0.3", for messages (written out, not `Debug`: the `.wasm` package is
/// built with `Debug` formatting compiled out).
impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::Omemo2 => "OMEMO 2",
            Version::Omemo03 => "OMEMO 0.3",
        })
    }
}

impl Version {
    /// The XML namespace of this version's `<encrypted>` element.
    pub const fn namespace(self) -> &'static str {
        match self {
            Version::Omemo2 => "urn:xmpp:omemo:2",
            Version::Omemo03 => "eu.siacs.conversations.axolotl",
        }
    }
}
