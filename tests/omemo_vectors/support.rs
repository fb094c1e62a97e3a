//! Fixtures: the vector files, hex, scripted randomness, and olmo devices built from the
//! recorded private keys.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::PathBuf;

use olmo::crypto::{Curve25519PublicKey, Curve25519SecretKey};
use olmo::megolm::Timestamp;
use olmo::omemo::stanza;
use olmo::omemo::{DeviceIdentity, OmemoDevice, PreKeys, VerifiedBundle, Version};
use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;

pub use crate::common::hex::hex;
use crate::common::hex::unhex;
// splitmix64: randomness no recorded byte depends on (pool refills, unused pre-keys).
pub use crate::common::rng::TestRng;

/// When olmo imports or makes pre-keys (the time only dates the signed pre-key).
pub const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

// ---------------------------------------------------------------------------
// The vector files
// ---------------------------------------------------------------------------

pub fn directory(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "omemo2",
        Version::Omemo03 => "omemo03",
    }
}

pub fn path(version: Version, name: &str) -> PathBuf {
    [
        env!("CARGO_MANIFEST_DIR"),
        "test-vectors",
        directory(version),
        name,
    ]
    .iter()
    .collect()
}

pub fn load(version: Version, name: &str) -> Value {
    let path = path(version, name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

pub fn u32_of(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))).unwrap()
}

pub fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// The bytes of a hex field.
pub fn b(v: &Value) -> Vec<u8> {
    unhex(s(v))
}

/// The bytes of a 32-byte hex field.
pub fn b32(v: &Value) -> [u8; 32] {
    b(v).try_into()
        .unwrap_or_else(|_| panic!("not 32 bytes: {v}"))
}

pub fn public_of(private: &[u8; 32]) -> Curve25519PublicKey {
    Curve25519SecretKey::from_bytes(private).public_key()
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// Hands out the recorded draws, one `fill_bytes` call each, in the order queued: a call whose
/// length differs from the next draw's, or one more than queued, fails the test, and
/// [`ScriptedRng::finish`] checks every draw was taken. Word draws (`next_u32`/`next_u64`) are
/// refused unless allowed: only `VerifiedBundle::choose_pre_key` asks for them (`random_range` over
/// the bundle's pre-keys), and with one pre-key in the bundle every answer picks it, so they
/// answer 0 and are not part of the script.
pub struct ScriptedRng {
    label: String,
    draws: VecDeque<(String, Vec<u8>)>,
    words_allowed: bool,
}

impl ScriptedRng {
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            draws: VecDeque::new(),
            words_allowed: false,
        }
    }

    pub fn push(&mut self, what: impl Into<String>, bytes: Vec<u8>) -> &mut Self {
        self.draws.push_back((what.into(), bytes));
        self
    }

    pub fn allow_words(&mut self) -> &mut Self {
        self.words_allowed = true;
        self
    }

    pub fn finish(&self) {
        assert!(
            self.draws.is_empty(),
            "{}: not drawn: {:?}",
            self.label,
            self.draws.iter().map(|(what, _)| what).collect::<Vec<_>>()
        );
    }

    fn word(&mut self) -> Result<u64, Infallible> {
        assert!(self.words_allowed, "{}: unexpected word draw", self.label);
        Ok(0)
    }
}

impl TryRng for ScriptedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.word().map(|_| 0)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.word()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let (what, bytes) = self.draws.pop_front().unwrap_or_else(|| {
            panic!(
                "{}: {} random bytes drawn, none left in the script",
                self.label,
                dst.len()
            )
        });
        assert_eq!(
            dst.len(),
            bytes.len(),
            "{}: olmo drew {} bytes where the script has {what} ({} bytes)",
            self.label,
            dst.len(),
            bytes.len()
        );
        dst.copy_from_slice(&bytes);
        Ok(())
    }
}

impl TryCryptoRng for ScriptedRng {}

// ---------------------------------------------------------------------------
// Devices from the recorded keys
// ---------------------------------------------------------------------------

pub fn jid(device: &Value) -> &str {
    s(&device["jid"])
}

pub fn device_id(device: &Value) -> u32 {
    u32_of(&device["device_id"])
}

pub fn identity(device: &Value) -> DeviceIdentity {
    DeviceIdentity::from_seed(&b32(&device["identity_seed"]))
}

/// The recorded signed pre-key and pre-keys, imported into olmo. Import signs the signed
/// pre-key afresh: `rng` gives the XEdDSA nonce (OMEMO 0.3; OMEMO 2 signs deterministically).
pub fn import_pre_keys(device: &Value, version: Version, rng: &mut ScriptedRng) -> PreKeys {
    let spk = &device["signed_pre_key"];
    let pre_keys: Vec<(u32, [u8; 32])> = arr(&device["pre_keys"])
        .iter()
        .map(|key| (u32_of(&key["id"]), b32(&key["private"])))
        .collect();
    PreKeys::import(
        &identity(device),
        version,
        (u32_of(&spk["id"]), &b32(&spk["private"])),
        &pre_keys,
        NOW,
        rng,
    )
}

/// The signature nonce olmo's import draws: XEdDSA's Z for OMEMO 0.3, none for OMEMO 2.
pub fn import_rng(device: &Value, version: Version) -> ScriptedRng {
    let mut rng = ScriptedRng::new(format!("{} import", jid(device)));
    if version == Version::Omemo03 {
        rng.push(
            "signed pre-key signature nonce",
            b(&device["signed_pre_key"]["signature_nonce"]),
        );
    }
    rng
}

/// An olmo device with the recorded identity and, for `version`, the recorded pre-keys (fresh
/// ones for the other version).
pub fn device(device: &Value, version: Version) -> OmemoDevice {
    let identity = identity(device);
    let recorded = import_pre_keys(device, version, &mut import_rng(device, version));
    let other = match version {
        Version::Omemo2 => Version::Omemo03,
        Version::Omemo03 => Version::Omemo2,
    };
    let fresh = PreKeys::generate(&identity, other, NOW, &mut TestRng::new(7));
    let (omemo2, omemo03) = match version {
        Version::Omemo2 => (recorded, fresh),
        Version::Omemo03 => (fresh, recorded),
    };
    OmemoDevice::from_parts(jid(device), device_id(device), identity, omemo2, omemo03)
}

/// python-omemo's bundle of a device, parsed and verified by olmo.
pub fn python_bundle(device: &Value) -> VerifiedBundle {
    let element = stanza::BundleElement::parse(s(&device["bundle_xml"])).unwrap();
    VerifiedBundle::from_element(&element).unwrap()
}

/// The responder's bundle as the initiator sees it, cut down to the one pre-key python-omemo
/// picked (x3dh's `secrets.choice` was scripted; olmo's `random_range` over one key picks it).
pub fn bundle_with_chosen_pre_key(vectors: &Value) -> VerifiedBundle {
    let mut bundle = python_bundle(&vectors["devices"]["bob"]);
    let chosen = u32_of(&vectors["session"]["pre_key_id"]);
    bundle.retain_pre_keys(|(id, _)| *id == chosen);
    assert_eq!(bundle.pre_keys().len(), 1);
    bundle
}

// ---------------------------------------------------------------------------
// Which files, and who made them
// ---------------------------------------------------------------------------

/// Who made a conversation file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maker {
    /// python-omemo (`conversation.json`, by the generators in `test-vectors/`).
    Python,
    /// olmo itself (`olmo_conversation.json`, by `write_olmo_vectors`).
    Olmo,
}

impl Maker {
    pub fn file(self) -> &'static str {
        match self {
            Maker::Python => "conversation.json",
            Maker::Olmo => "olmo_conversation.json",
        }
    }
}

/// Every conversation file: both versions, both makers.
pub const CONVERSATIONS: [(Version, Maker); 4] = [
    (Version::Omemo2, Maker::Python),
    (Version::Omemo03, Maker::Python),
    (Version::Omemo2, Maker::Olmo),
    (Version::Omemo03, Maker::Olmo),
];

// ---------------------------------------------------------------------------
// Protobuf, read field by field
// ---------------------------------------------------------------------------

/// A protobuf field: a varint or a length-delimited value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Varint(u64),
    Bytes(Vec<u8>),
}

impl Field {
    pub fn varint(&self) -> u64 {
        match self {
            Field::Varint(value) => *value,
            Field::Bytes(_) => panic!("not a varint"),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Field::Bytes(bytes) => bytes,
            Field::Varint(_) => panic!("not bytes"),
        }
    }
}

fn varint(data: &[u8], position: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = data[*position];
        *position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("varint too long")
}

/// The fields of a flat protobuf message, by number (each at most once).
pub fn protobuf_fields(data: &[u8]) -> std::collections::BTreeMap<u32, Field> {
    let mut fields = std::collections::BTreeMap::new();
    let mut position = 0;
    while position < data.len() {
        let tag = varint(data, &mut position);
        let number = u32::try_from(tag >> 3).unwrap();
        let field = match tag & 7 {
            0 => Field::Varint(varint(data, &mut position)),
            2 => {
                let length = usize::try_from(varint(data, &mut position)).unwrap();
                let value = data[position..position + length].to_vec();
                position += length;
                Field::Bytes(value)
            }
            wire => panic!("wire type {wire}"),
        };
        assert!(
            fields.insert(number, field).is_none(),
            "field {number} twice"
        );
    }
    fields
}

// ---------------------------------------------------------------------------
// X3DH from the recorded keys, with olmo's primitives
// ---------------------------------------------------------------------------

/// The X3DH shared secret and associated data of a conversation, computed from its recorded
/// private keys: `HKDF-SHA-256(salt 0³², 0xFF³² ‖ DH(IK_A, SPK_B) ‖ DH(EK_A, IK_B) ‖
/// DH(EK_A, SPK_B) ‖ DH(EK_A, OPK_B), info)`, and `IK_A ‖ IK_B` in the version's wire form.
pub fn x3dh(version: Version, vectors: &Value) -> ([u8; 32], Vec<u8>) {
    use olmo::omemo::{Omemo2, Omemo03, OmemoProfile};
    let session = &vectors["session"];
    let (alice, bob) = (&vectors["devices"]["alice"], &vectors["devices"]["bob"]);
    let base = Curve25519SecretKey::from_bytes(&b32(&session["base_key_private"]));
    let alice_identity = identity(alice);
    let bob_identity = identity(bob);
    let chosen = u32_of(&session["pre_key_id"]);
    let pre_key = arr(&bob["pre_keys"])
        .iter()
        .find(|key| u32_of(&key["id"]) == chosen)
        .unwrap();
    let spk = public_of(&b32(&bob["signed_pre_key"]["private"]));
    let dh = |secret: &Curve25519SecretKey, public: &Curve25519PublicKey| {
        secret.diffie_hellman(public).unwrap().as_bytes().to_vec()
    };
    let mut input = vec![0xff; 32];
    input.extend(dh(alice_identity.curve25519_secret(), &spk));
    input.extend(dh(&base, &bob_identity.curve25519_key()));
    input.extend(dh(&base, &spk));
    input.extend(dh(&base, &public_of(&b32(&pre_key["private"]))));
    let info = match version {
        Version::Omemo2 => Omemo2::X3DH_INFO,
        Version::Omemo03 => Omemo03::X3DH_INFO,
    };
    let mut shared = [0u8; 32];
    olmo::crypto::hazmat::hkdf_sha256(&[0; 32], &input, info, &mut shared);
    let mut associated = alice_identity.identity_key(version).wire_bytes();
    associated.extend(bob_identity.identity_key(version).wire_bytes());
    (shared, associated)
}
