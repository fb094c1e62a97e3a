//! The primitives OMEMO operations are made of, each timed alone on inputs of the sizes the
//! operations use: olmo's public crypto API (`olmo::crypto`) for the curve, signature, HMAC,
//! HKDF and AES-CBC work; the `aes-gcm` crate, configured as olmo's payload code uses it, for
//! OMEMO 0.3's payload cipher; olmo's own protobuf codec through the OMEMO profiles.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, Nonce, Tag};
use olmo::crypto::hazmat::{hkdf_sha256, hmac_sha256};
use olmo::crypto::{
    CipherKeys, Curve25519KeyPair, Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, SignBit,
};
use olmo::omemo::{Omemo2, Omemo03, OmemoProfile};
use olmo::ratchet::SendingHeader;
use rand::Rng as _;

use crate::measure::{Catalogue, PrimitiveId, Terms};
use crate::summary::batch_runner;

// ---------------------------------------------------------------------------------------------
// Asymmetric primitives
// ---------------------------------------------------------------------------------------------

/// An X25519 key pair from the thread's CSPRNG: 32 random bytes and a base-point multiplication.
pub fn key_generation(catalogue: &mut Catalogue) -> PrimitiveId {
    let mut rng = rand::rng();
    catalogue.add(
        "X25519 key generation",
        batch_runner(|| (), move |()| Curve25519KeyPair::generate(&mut rng)),
    )
}

/// One X25519 exchange with an honestly generated public key.
pub fn diffie_hellman(catalogue: &mut Catalogue) -> PrimitiveId {
    let mut rng = rand::rng();
    let ours = Curve25519KeyPair::generate(&mut rng);
    let theirs = Curve25519KeyPair::generate(&mut rng).public_key();
    catalogue.add(
        "X25519 DH",
        batch_runner(|| (), move |()| ours.diffie_hellman(&theirs).unwrap()),
    )
}

/// Strict Ed25519 verification of an OMEMO 2 signed pre-key signature.
pub fn ed25519_verify(
    catalogue: &mut Catalogue,
    key: Ed25519PublicKey,
    message: Vec<u8>,
    signature: Ed25519Signature,
) -> PrimitiveId {
    key.verify(&message, &signature).unwrap();
    catalogue.add(
        format!("Ed25519 verify ({} B)", message.len()),
        batch_runner(|| (), move |()| key.verify(&message, &signature).unwrap()),
    )
}

/// An OMEMO 2 identity's X25519 form (decompression, prime-order check, birational map).
pub fn ed25519_to_curve25519(catalogue: &mut Catalogue, key: Ed25519PublicKey) -> PrimitiveId {
    catalogue.add(
        "Ed25519 → X25519 key (to_curve25519)",
        batch_runner(|| (), move |()| key.to_curve25519().unwrap()),
    )
}

/// XEdDSA verification of an OMEMO 0.3 signed pre-key signature, with the Montgomery →
/// Edwards lift of the identity key.
pub fn xeddsa_verify(
    catalogue: &mut Catalogue,
    key: Curve25519PublicKey,
    message: Vec<u8>,
    signature: Ed25519Signature,
) -> PrimitiveId {
    key.xeddsa_verify(&message, &signature, SignBit::InSignature)
        .unwrap();
    catalogue.add(
        format!("XEdDSA verify ({} B, with lift)", message.len()),
        batch_runner(
            || (),
            move |()| {
                key.xeddsa_verify(&message, &signature, SignBit::InSignature)
                    .unwrap()
            },
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Symmetric primitives
// ---------------------------------------------------------------------------------------------

/// HMAC-SHA-256 under a 32-byte key over `length` bytes.
pub fn hmac(catalogue: &mut Catalogue, label: &str, length: usize) -> PrimitiveId {
    let key = [0x11u8; 32];
    let message = vec![0x22u8; length];
    catalogue.add(
        format!("HMAC-SHA-256 {label}({length} B)"),
        batch_runner(|| (), move |()| hmac_sha256(&key, &[&message])),
    )
}

/// HKDF-SHA-256 with a 32-byte salt, `input` bytes of key material, `info`, `output` bytes out.
pub fn hkdf(
    catalogue: &mut Catalogue,
    label: &str,
    info: &'static [u8],
    input: usize,
    output: usize,
) -> PrimitiveId {
    const MAX_OUTPUT: usize = 80;
    assert!(output <= MAX_OUTPUT);
    let salt = [0u8; 32];
    let ikm = vec![0x33u8; input];
    catalogue.add(
        format!("HKDF-SHA-256 {label} ({input} B → {output} B)"),
        batch_runner(
            || (),
            move |()| {
                let mut okm = [0u8; MAX_OUTPUT];
                hkdf_sha256(&salt, &ikm, info, &mut okm[..output]);
                okm
            },
        ),
    )
}

fn cipher_keys() -> CipherKeys {
    CipherKeys::derive(&[0x44; 32], b"olmo bench")
}

/// AES-256-CBC with PKCS#7 of `length` bytes (olmo's message cipher, keys already expanded).
pub fn aes_cbc_encrypt(catalogue: &mut Catalogue, label: &str, length: usize) -> PrimitiveId {
    let keys = cipher_keys();
    let plaintext = vec![0x55u8; length];
    catalogue.add(
        format!("AES-256-CBC encrypt {label}({length} B)"),
        batch_runner(|| (), move |()| keys.encrypt(&plaintext)),
    )
}

/// AES-256-CBC decryption of the ciphertext of `length` plaintext bytes.
pub fn aes_cbc_decrypt(catalogue: &mut Catalogue, label: &str, length: usize) -> PrimitiveId {
    let keys = cipher_keys();
    let ciphertext = keys.encrypt(&vec![0x55u8; length]);
    catalogue.add(
        format!("AES-256-CBC decrypt {label}({} B)", ciphertext.len()),
        batch_runner(|| (), move |()| keys.decrypt(&ciphertext).unwrap()),
    )
}

/// AES-128-GCM of `length` bytes with a 12-byte IV, key set-up included (OMEMO 0.3's payload,
/// as olmo's payload code calls the `aes-gcm` crate).
pub fn aes_gcm_encrypt(catalogue: &mut Catalogue, length: usize) -> PrimitiveId {
    let key = [0x66u8; 16];
    let iv = [0x77u8; 12];
    let plaintext = vec![0x88u8; length];
    catalogue.add(
        format!("AES-128-GCM encrypt ({length} B) [aes-gcm]"),
        batch_runner(
            || (),
            move |()| {
                let cipher = AesGcm::<Aes128, U12>::new(&key.into());
                let mut ciphertext = plaintext.clone();
                let tag = cipher
                    .encrypt_inout_detached(
                        &Nonce::<U12>::from(iv),
                        &[],
                        ciphertext.as_mut_slice().into(),
                    )
                    .unwrap();
                (ciphertext, tag)
            },
        ),
    )
}

/// AES-128-GCM decryption and tag check of `length` bytes.
pub fn aes_gcm_decrypt(catalogue: &mut Catalogue, length: usize) -> PrimitiveId {
    let key = [0x66u8; 16];
    let iv = [0x77u8; 12];
    let mut ciphertext = vec![0x88u8; length];
    let tag: Tag<U16> = AesGcm::<Aes128, U12>::new(&key.into())
        .encrypt_inout_detached(
            &Nonce::<U12>::from(iv),
            &[],
            ciphertext.as_mut_slice().into(),
        )
        .unwrap();
    catalogue.add(
        format!("AES-128-GCM decrypt ({length} B) [aes-gcm]"),
        batch_runner(
            || (),
            move |()| {
                let cipher = AesGcm::<Aes128, U12>::new(&key.into());
                let mut plaintext = ciphertext.clone();
                cipher
                    .decrypt_inout_detached(
                        &Nonce::<U12>::from(iv),
                        &[],
                        plaintext.as_mut_slice().into(),
                        &tag,
                    )
                    .unwrap();
                plaintext
            },
        ),
    )
}

/// Random bytes from the thread's CSPRNG, drawn in pieces of the given lengths.
pub fn random(catalogue: &mut Catalogue, lengths: &'static [usize]) -> PrimitiveId {
    let mut rng = rand::rng();
    let label = lengths
        .iter()
        .map(|length| format!("{length} B"))
        .collect::<Vec<_>>()
        .join(" + ");
    catalogue.add(
        format!("CSPRNG ({label}) [rand]"),
        batch_runner(
            || (),
            move |()| {
                let mut bytes = [0u8; 64];
                let mut start = 0;
                for &length in lengths {
                    rng.fill_bytes(&mut bytes[start..start + length]);
                    start += length;
                }
                bytes
            },
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Protobuf: olmo's own codecs (decoding includes the canonical-form check)
// ---------------------------------------------------------------------------------------------

/// Encodes and seals one ratchet message with the profile's codec.
fn encode<P: OmemoProfile>(ratchet_key: &[u8; 32], ciphertext: &[u8], mac: &[u8]) -> Vec<u8> {
    let header = SendingHeader {
        ratchet_key: Curve25519PublicKey::from_bytes(*ratchet_key),
        index: 5,
        previous_chain_length: 3,
    };
    P::seal(
        P::encode_message(&header, ciphertext),
        mac[..P::MAC_LENGTH].to_vec(),
    )
}

/// The length of the bytes the MAC covers after its prefix (the encoded message).
pub fn authenticated_length(omemo2: bool, key_data: &[u8]) -> usize {
    if omemo2 {
        Omemo2::open(key_data).unwrap().authenticated().len()
    } else {
        Omemo03::open(key_data).unwrap().authenticated().len()
    }
}

/// Encoding one ratchet message (and, for OMEMO 2, its authenticated wrapper).
pub fn protobuf_encode(catalogue: &mut Catalogue, omemo2: bool, ciphertext: usize) -> PrimitiveId {
    let key = [0x99u8; 32];
    let ciphertext = vec![0xaau8; ciphertext];
    let mac = [0xbbu8; 32];
    if omemo2 {
        catalogue.add(
            "protobuf encode OMEMOAuthenticatedMessage [olmo]",
            batch_runner(|| (), move |()| encode::<Omemo2>(&key, &ciphertext, &mac)),
        )
    } else {
        catalogue.add(
            "protobuf encode SignalMessage [olmo]",
            batch_runner(|| (), move |()| encode::<Omemo03>(&key, &ciphertext, &mac)),
        )
    }
}

/// Decoding one received ratchet message (a key element's bytes).
pub fn protobuf_decode(catalogue: &mut Catalogue, omemo2: bool, key_data: Vec<u8>) -> PrimitiveId {
    if omemo2 {
        catalogue.add(
            "protobuf decode OMEMOAuthenticatedMessage [olmo]",
            batch_runner(|| (), move |()| Omemo2::open(&key_data).unwrap()),
        )
    } else {
        catalogue.add(
            "protobuf decode SignalMessage [olmo]",
            batch_runner(|| (), move |()| Omemo03::open(&key_data).unwrap()),
        )
    }
}

/// Decoding one received key exchange and the message inside it.
pub fn protobuf_decode_key_exchange(
    catalogue: &mut Catalogue,
    omemo2: bool,
    key_data: Vec<u8>,
) -> PrimitiveId {
    if omemo2 {
        catalogue.add(
            "protobuf decode OMEMOKeyExchange [olmo]",
            batch_runner(
                || (),
                move |()| Omemo2::open_key_exchange(&key_data).unwrap(),
            ),
        )
    } else {
        catalogue.add(
            "protobuf decode PreKeySignalMessage [olmo]",
            batch_runner(
                || (),
                move |()| Omemo03::open_key_exchange(&key_data).unwrap(),
            ),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Per-version recipes
// ---------------------------------------------------------------------------------------------

/// The inputs that fix one version's primitive sizes, taken from real objects of the run.
pub struct VersionInputs {
    pub omemo2: bool,
    /// The payload plaintext (OMEMO 2: the SCE envelope; 0.3: the body).
    pub payload_length: usize,
    /// The bytes of a ratchet message (a non-key-exchange key element).
    pub message: Vec<u8>,
    /// The bytes of a key exchange key element.
    pub key_exchange: Vec<u8>,
    /// The identity-key prefix the MAC covers first (both identity keys).
    pub mac_prefix_length: usize,
    /// The signed pre-key signature check of a bundle.
    pub signature: Signature,
    pub x3dh_info: &'static [u8],
    pub root_info: &'static [u8],
    pub message_key_info: &'static [u8],
}

/// What a bundle's signature is checked with.
pub enum Signature {
    Ed25519 {
        key: Ed25519PublicKey,
        message: Vec<u8>,
        signature: Ed25519Signature,
    },
    XEdDsa {
        key: Curve25519PublicKey,
        message: Vec<u8>,
        signature: Ed25519Signature,
    },
}

/// The primitives shared by both versions.
pub struct Shared {
    pub key_generation: PrimitiveId,
    pub diffie_hellman: PrimitiveId,
    pub chain_step: PrimitiveId,
}

impl Shared {
    pub fn new(catalogue: &mut Catalogue) -> Self {
        Self {
            key_generation: key_generation(catalogue),
            diffie_hellman: diffie_hellman(catalogue),
            chain_step: hmac(catalogue, "chain step ", 1),
        }
    }
}

/// One version's primitives, and the recipes of its operations.
pub struct Recipes {
    shared_key_generation: PrimitiveId,
    shared_diffie_hellman: PrimitiveId,
    chain_step: PrimitiveId,
    verify: PrimitiveId,
    identity_conversion: Option<PrimitiveId>,
    x3dh: PrimitiveId,
    root_step: PrimitiveId,
    message_keys: PrimitiveId,
    key_encrypt: PrimitiveId,
    key_decrypt: PrimitiveId,
    mac: PrimitiveId,
    encode: PrimitiveId,
    decode: PrimitiveId,
    decode_key_exchange: PrimitiveId,
    payload_encrypt: Terms,
    payload_decrypt: Terms,
}

impl Recipes {
    pub fn new(catalogue: &mut Catalogue, shared: &Shared, inputs: VersionInputs) -> Self {
        let tag = if inputs.omemo2 { "[2]" } else { "[0.3]" };
        let key_material = if inputs.omemo2 { 48 } else { 32 };
        let (verify, identity_conversion) = match inputs.signature {
            Signature::Ed25519 {
                key,
                message,
                signature,
            } => (
                ed25519_verify(catalogue, key, message, signature),
                Some(ed25519_to_curve25519(catalogue, key)),
            ),
            Signature::XEdDsa {
                key,
                message,
                signature,
            } => (xeddsa_verify(catalogue, key, message, signature), None),
        };
        let mac_length =
            inputs.mac_prefix_length + authenticated_length(inputs.omemo2, &inputs.message);
        let payload = inputs.payload_length;
        let (payload_encrypt, payload_decrypt) = if inputs.omemo2 {
            let padded = (payload / 16 + 1) * 16;
            let keys = hkdf(catalogue, "payload keys", b"OMEMO Payload", 32, 80);
            let mac = hmac(catalogue, "payload ", padded);
            (
                vec![
                    (1, random(catalogue, &[32])),
                    (1, keys),
                    (1, aes_cbc_encrypt(catalogue, "payload ", payload)),
                    (1, mac),
                ],
                vec![
                    (1, keys),
                    (1, mac),
                    (1, aes_cbc_decrypt(catalogue, "payload ", payload)),
                ],
            )
        } else {
            (
                vec![
                    (1, random(catalogue, &[16, 12])),
                    (1, aes_gcm_encrypt(catalogue, payload)),
                ],
                vec![(1, aes_gcm_decrypt(catalogue, payload))],
            )
        };
        Self {
            shared_key_generation: shared.key_generation,
            shared_diffie_hellman: shared.diffie_hellman,
            chain_step: shared.chain_step,
            verify,
            identity_conversion,
            x3dh: hkdf(
                catalogue,
                &format!("X3DH {tag}"),
                inputs.x3dh_info,
                5 * 32,
                32,
            ),
            root_step: hkdf(
                catalogue,
                &format!("root step {tag}"),
                inputs.root_info,
                32,
                64,
            ),
            message_keys: hkdf(
                catalogue,
                &format!("message keys {tag}"),
                inputs.message_key_info,
                32,
                80,
            ),
            key_encrypt: aes_cbc_encrypt(catalogue, "key ", key_material),
            key_decrypt: aes_cbc_decrypt(catalogue, "key ", key_material),
            mac: hmac(catalogue, &format!("MAC {tag} "), mac_length),
            encode: protobuf_encode(catalogue, inputs.omemo2, (key_material / 16 + 1) * 16),
            decode: protobuf_decode(catalogue, inputs.omemo2, inputs.message),
            decode_key_exchange: protobuf_decode_key_exchange(
                catalogue,
                inputs.omemo2,
                inputs.key_exchange,
            ),
            payload_encrypt,
            payload_decrypt,
        }
    }

    /// Verifying a bundle and starting a session from it: the signature check (and, for
    /// OMEMO 2, the identity's X25519 form), base key and ratchet key, X3DH with a one-time
    /// pre-key (4 DH, 1 HKDF) and the first ratchet step (1 DH, 1 HKDF).
    pub fn session_build(&self) -> Terms {
        let mut terms = vec![(1, self.verify)];
        terms.extend(self.identity_conversion.map(|id| (1, id)));
        terms.extend([
            (2, self.shared_key_generation),
            (5, self.shared_diffie_hellman),
            (1, self.x3dh),
            (1, self.root_step),
        ]);
        terms
    }

    /// The payload once, then per device a chain step (2 HMACs), the message keys, the key
    /// material's encryption, the MAC and the protobuf encoding.
    pub fn encrypt(&self, devices: u32) -> Terms {
        let mut terms = self.payload_encrypt.clone();
        terms.extend([
            (2 * devices, self.chain_step),
            (devices, self.message_keys),
            (devices, self.key_encrypt),
            (devices, self.mac),
            (devices, self.encode),
        ]);
        terms
    }

    /// The ratchet's half of a received message: a chain step, the message keys, the MAC and
    /// the key material's decryption.
    fn ratchet_decrypt(&self) -> Terms {
        vec![
            (2, self.chain_step),
            (1, self.message_keys),
            (1, self.mac),
            (1, self.key_decrypt),
        ]
    }

    /// Decoding, the ratchet's half and the payload.
    pub fn decrypt(&self) -> Terms {
        let mut terms = vec![(1, self.decode)];
        terms.extend(self.ratchet_decrypt());
        terms.extend(self.payload_decrypt.iter().copied());
        terms
    }

    /// Decoding the key exchange, the responder's X3DH (the initiator identity's X25519 form for
    /// OMEMO 2; 4 DH, 1 HKDF), the first receiving chain (1 DH, 1 HKDF), the message as in
    /// [`Self::decrypt`], and the one-time pre-key that replaces the used one (1 key generation).
    pub fn decrypt_key_exchange(&self) -> Terms {
        let mut terms = vec![(1, self.decode_key_exchange)];
        terms.extend(self.identity_conversion.map(|id| (1, id)));
        terms.extend([
            (5, self.shared_diffie_hellman),
            (1, self.x3dh),
            (1, self.root_step),
        ]);
        terms.extend(self.ratchet_decrypt());
        terms.extend(self.payload_decrypt.iter().copied());
        terms.push((1, self.shared_key_generation));
        terms
    }
}
