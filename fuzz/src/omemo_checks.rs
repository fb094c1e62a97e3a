//! The OMEMO fuzz checks: the ratchet-message and key-exchange codecs of both versions, the
//! stanza elements, bundles and device decryption. Part of `checks.rs`, shared with
//! `tests/fuzz_corpus.rs`.
//!
//! - `omemo_message_decode`: the input through all four wire decoders (OMEMO 2
//!   `OMEMOAuthenticatedMessage` and `OMEMOKeyExchange`, OMEMO 0.3 `SignalMessage` and
//!   `PreKeySignalMessage`), reached through [`OmemoProfile::open`] and
//!   [`OmemoProfile::open_key_exchange`].
//! - `omemo_stanza_parse`: the input (lossy UTF-8) through the four stanza parsers; what parses
//!   serializes and parses back to the same value.
//! - `omemo_bundle`: [`VerifiedBundle::from_element`] on parsed, structured or mutated bundle elements.
//! - `omemo_decrypt`: a fixed device's [`OmemoDevice::decrypt_key`] and [`OmemoDevice::decrypt_message`];
//!   a refusal leaves the device unchanged and working.

use std::sync::OnceLock;

use olmo::DecodeError;
use olmo::megolm::Timestamp;
use olmo::omemo::stanza::{self, DeviceListElement, EncryptedElement, Envelope};
use olmo::omemo::wire::MAX_MESSAGE_LENGTH;
use olmo::omemo::{
    BundleError, IdentityKey, Omemo2, Omemo03, OmemoDevice, OmemoProfile, OmemoSession, SealedKey,
    SessionError, VerifiedBundle, Version,
};

use super::{DeterministicRng, push_varint};

/// Runs OMEMO target `target` (listed in `TARGETS`); `false` if there is no such target.
pub fn run_omemo(target: &str, data: &[u8]) -> bool {
    match target {
        "omemo_message_decode" => check_omemo_message_decode(data),
        "omemo_stanza_parse" => check_omemo_stanza_parse(data),
        "omemo_bundle" => check_omemo_bundle(data),
        "omemo_decrypt" => check_omemo_decrypt(data),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Wire format

/// `omemo_message_decode`: the input through the four decoders. None may panic; what decodes
/// is at most [`MAX_MESSAGE_LENGTH`] bytes, and its unauthenticated wrappers are exactly the
/// canonical encoding of the decoded fields (re-encoded through the profile's own encoders).
pub fn check_omemo_message_decode(data: &[u8]) {
    check_omemo2_message(data);
    check_omemo2_key_exchange(data);
    check_omemo03_message(data);
    check_omemo03_key_exchange(data);
}

/// An unknown length-delimited field (number 15) big enough to take any message past
/// [`MAX_MESSAGE_LENGTH`]; protobuf readers skip unknown fields.
fn oversized_unknown_field() -> Vec<u8> {
    let mut field = Vec::new();
    push_varint(&mut field, (15 << 3) | 2);
    push_varint(&mut field, MAX_MESSAGE_LENGTH as u64);
    field.resize(field.len() + MAX_MESSAGE_LENGTH, 0x41);
    field
}

fn check_omemo2_message(data: &[u8]) {
    let Ok(message) = Omemo2::open(data) else {
        return;
    };
    assert!(data.len() <= MAX_MESSAGE_LENGTH, "{} bytes", data.len());
    // OMEMOAuthenticatedMessage is not under the MAC: only `mac` (1) and `message` (2), in
    // order, each once.
    let fields = scan_protobuf(data).expect("an accepted OMEMOAuthenticatedMessage is protobuf");
    let [(1, Field::Bytes(mac)), (2, Field::Bytes(inner))] = fields.as_slice() else {
        panic!("OMEMOAuthenticatedMessage accepted with fields {fields:?}");
    };
    assert_eq!(mac.len(), 16);
    assert_eq!(Omemo2::seal(inner.to_vec(), mac.to_vec()), data);
    // The MAC-covered OMEMOMessage grown past the limit is refused before it is read.
    let grown = Omemo2::seal([*inner, &oversized_unknown_field()].concat(), mac.to_vec());
    assert_eq!(Omemo2::open(&grown), Err(DecodeError::OutOfRange));
    // A different MAC is carried, not checked, by the decoder.
    let mut other_mac = mac.to_vec();
    other_mac[0] ^= 1;
    let remac = Omemo2::open(&Omemo2::seal(inner.to_vec(), other_mac))
        .expect("the MAC's value does not matter to the decoder");
    assert_ne!(remac, message);
}

fn check_omemo2_key_exchange(data: &[u8]) {
    let Ok((exchange, message)) = Omemo2::open_key_exchange(data) else {
        return;
    };
    assert!(data.len() <= MAX_MESSAGE_LENGTH, "{} bytes", data.len());
    let fields = scan_protobuf(data).expect("an accepted OMEMOKeyExchange is protobuf");
    let [
        (1, Field::Varint(pk_id)),
        (2, Field::Varint(spk_id)),
        (3, Field::Bytes(ik)),
        (4, Field::Bytes(ek)),
        (5, Field::Bytes(inner)),
    ] = fields.as_slice()
    else {
        panic!("OMEMOKeyExchange accepted with fields {fields:?}");
    };
    assert_eq!(exchange.pre_key_id.map(u64::from), Some(*pk_id));
    assert_eq!(u64::from(exchange.signed_pre_key_id), *spk_id);
    assert!(matches!(exchange.identity_key, IdentityKey::Ed25519(_)));
    assert_eq!(exchange.identity_key.wire_bytes(), *ik);
    assert_eq!(exchange.base_key.as_bytes(), ek);
    assert!(exchange.base_key.is_canonical());
    assert_eq!(exchange.registration_id, None);
    assert_eq!(Omemo2::encode_key_exchange(&exchange, inner.to_vec()), data);
    assert_eq!(Omemo2::open(inner), Ok(message));
}

fn check_omemo03_message(data: &[u8]) {
    let Ok(message) = Omemo03::open(data) else {
        return;
    };
    assert!(data.len() <= MAX_MESSAGE_LENGTH, "{} bytes", data.len());
    assert!(data.len() > 8, "no room for a version byte and the MAC");
    assert!(matches!(data[0], 0x33 | 0x34), "version {:#04x}", data[0]);
    let (authenticated, mac) = data.split_at(data.len() - 8);
    // The SignalMessage is under the MAC (not checked here): grown past the limit, it is
    // refused before it is read.
    let grown = [authenticated, &oversized_unknown_field(), mac].concat();
    assert_eq!(Omemo03::open(&grown), Err(DecodeError::OutOfRange));
    // The last 8 bytes are the MAC, carried as they are.
    let mut other = data.to_vec();
    if let Some(last) = other.last_mut() {
        *last ^= 1;
    }
    let remac = Omemo03::open(&other).expect("the MAC's value does not matter to the decoder");
    assert_ne!(remac, message);
    // Both version bytes peers write are read, and the byte is part of what the MAC covers.
    other[0] ^= 0x33 ^ 0x34;
    let reversioned = Omemo03::open(&other).expect("0x33 and 0x34 are both read");
    assert_ne!(reversioned, remac);
}

fn check_omemo03_key_exchange(data: &[u8]) {
    let Ok((exchange, message)) = Omemo03::open_key_exchange(data) else {
        return;
    };
    assert!(data.len() <= MAX_MESSAGE_LENGTH, "{} bytes", data.len());
    assert!(matches!(data[0], 0x33 | 0x34), "version {:#04x}", data[0]);
    let fields = scan_protobuf(&data[1..]).expect("an accepted PreKeySignalMessage is protobuf");
    let numbers: Vec<u32> = fields.iter().map(|(number, _)| *number).collect();
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "PreKeySignalMessage fields out of order or repeated: {numbers:?}"
    );
    let varint = |wanted: u32| {
        fields.iter().find_map(|(number, field)| match field {
            Field::Varint(value) if *number == wanted => Some(*value),
            _ => None,
        })
    };
    let bytes = |wanted: u32| {
        fields.iter().find_map(|(number, field)| match field {
            Field::Bytes(value) if *number == wanted => Some(*value),
            _ => None,
        })
    };
    assert_eq!(exchange.pre_key_id.map(u64::from), varint(1));
    let mut base_key = vec![0x05];
    base_key.extend_from_slice(exchange.base_key.as_bytes());
    assert_eq!(Some(base_key.as_slice()), bytes(2));
    assert!(exchange.base_key.is_canonical());
    assert!(matches!(exchange.identity_key, IdentityKey::Curve25519(key) if key.is_canonical()));
    assert_eq!(
        Some(exchange.identity_key.wire_bytes().as_slice()),
        bytes(3)
    );
    assert_eq!(exchange.registration_id.map(u64::from), varint(5));
    assert_eq!(Some(u64::from(exchange.signed_pre_key_id)), varint(6));
    let inner = bytes(4).expect("the message field");
    let mut expected = vec![0x33];
    expected.extend_from_slice(&data[1..]);
    assert_eq!(
        Omemo03::encode_key_exchange(&exchange, inner.to_vec()),
        expected
    );
    assert_eq!(Omemo03::open(inner), Ok(message));
}

/// A protobuf field as [`scan_protobuf`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
}

/// The fields of a protobuf message of varint and length-delimited fields only, in order; `None`
/// for anything else. Independent of olmo's decoders, to check what they accept.
pub fn scan_protobuf(mut bytes: &[u8]) -> Option<Vec<(u32, Field<'_>)>> {
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).ok()?;
        let field = match key & 7 {
            0 => Field::Varint(read_varint(&mut bytes)?),
            2 => {
                let length = usize::try_from(read_varint(&mut bytes)?).ok()?;
                if length > bytes.len() {
                    return None;
                }
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                Field::Bytes(value)
            }
            _ => return None,
        };
        fields.push((number, field));
    }
    Some(fields)
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Stanzas

/// `omemo_stanza_parse`: the input as (lossy) UTF-8 through [`EncryptedElement`], [`stanza::BundleElement`],
/// [`DeviceListElement`] and [`Envelope`] parsing. None may panic; what parses serializes to XML that
/// parses back to the same value (for `<encrypted>`: with OMEMO 2 keys grouped by JID, as
/// documented) and serializes to the same text again.
///
/// An input `0, shape, a, b, tail…` (a leading NUL is never XML, so no ordinary input is lost)
/// is instead the [`hostile_stanza`] those bytes choose, up to the input size limit, so the
/// fuzzer explores the shapes that once took quadratic time (libFuzzer's timeout catches a
/// slow one).
pub fn check_omemo_stanza_parse(data: &[u8]) {
    if let [0, shape, a, b, tail @ ..] = data {
        let xml = hostile_stanza(*shape, *a, *b, &String::from_utf8_lossy(tail));
        return check_stanza_text(&xml, xml.as_bytes());
    }
    check_stanza_text(&String::from_utf8_lossy(data), data);
}

fn check_stanza_text(text: &str, raw: &[u8]) {
    check_encrypted_round_trip(text);
    check_bundle_round_trip(text);
    check_device_list_round_trip(text);
    check_envelope_round_trip(text, raw);
}

/// An OMEMO 2 `<encrypted>` of one of the shapes whose parsing cost grows with a product of
/// counts; `a` and `b` scale the counts (255 fills the input size limit), `tail` is appended
/// to the root's content. Elements are added while they fit under [`stanza::Limit::InputBytes`].
/// `shape % 6`:
/// - 0: the root declares `32·a` prefixes, `32·b` children declare one more each;
/// - 1: the same, the children redeclaring the default namespace;
/// - 2: `a % 64` nested levels declaring `b` prefixes each, then leaves declaring one more;
/// - 3: the root carries `a·b` attributes;
/// - 4: `a·b` tiny elements, comments and processing instructions;
/// - 5: the root carries three attributes of `a·b` bytes each.
pub fn hostile_stanza(shape: u8, a: u8, b: u8, tail: &str) -> String {
    let (a, b) = (usize::from(a), usize::from(b));
    let parts = match shape % 6 {
        0 => HostileParts {
            attributes: prefixes("p", 32 * a),
            repeated: vec!["<c xmlns:q='u'/>".into(); 32 * b],
            ..HostileParts::default()
        },
        1 => HostileParts {
            attributes: prefixes("p", 32 * a),
            repeated: vec!["<c xmlns='u'/>".into(); 32 * b],
            ..HostileParts::default()
        },
        2 => {
            let levels = a % 64;
            HostileParts {
                open: (0..levels)
                    .map(|level| format!("<d{}>", prefixes(&format!("l{level}x"), b).concat()))
                    .collect(),
                repeated: vec!["<c xmlns:q='u'/>".into(); 32_768],
                close: "</d>".repeat(levels),
                ..HostileParts::default()
            }
        }
        3 => HostileParts {
            attributes: (0..a * b).map(|i| format!(" a{i}=''")).collect(),
            ..HostileParts::default()
        },
        4 => HostileParts {
            repeated: ["<a/>", "<!---->", "<?a?>", "x"]
                .iter()
                .cycle()
                .take(a * b)
                .map(|node| (*node).to_owned())
                .collect(),
            ..HostileParts::default()
        },
        _ => HostileParts {
            attributes: ["a", "b", "c"]
                .iter()
                .map(|name| format!(" {name}='{}'", "v".repeat(a * b)))
                .collect(),
            ..HostileParts::default()
        },
    };
    parts.assemble(tail)
}

/// ` xmlns:{name}0='u' xmlns:{name}1='u' …`, `n` declarations.
fn prefixes(name: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!(" xmlns:{name}{i}='u'")).collect()
}

/// A [`hostile_stanza`] in parts: root attributes and repeated elements are added while they
/// fit, between fixed opening and closing runs of elements.
#[derive(Default)]
struct HostileParts {
    attributes: Vec<String>,
    open: String,
    repeated: Vec<String>,
    close: String,
}

impl HostileParts {
    fn assemble(&self, tail: &str) -> String {
        let end = format!("{tail}{}</encrypted>", self.close);
        let mut xml = String::from("<encrypted xmlns='urn:xmpp:omemo:2'");
        push_while_it_fits(&mut xml, &self.attributes, 1 + self.open.len() + end.len());
        xml.push('>');
        xml.push_str(&self.open);
        push_while_it_fits(&mut xml, &self.repeated, end.len());
        xml.push_str(&end);
        xml
    }
}

/// Appends `parts` while `xml` stays `reserve` bytes under the input size limit.
fn push_while_it_fits(xml: &mut String, parts: &[String], reserve: usize) {
    for part in parts {
        if xml.len() + part.len() + reserve > stanza::Limit::InputBytes.max() {
            break;
        }
        xml.push_str(part);
    }
}

fn check_encrypted_round_trip(xml: &str) {
    let Ok(parsed) = EncryptedElement::parse(xml) else {
        return;
    };
    assert_eq!(
        EncryptedElement::parse_version(xml, parsed.version).as_ref(),
        Ok(&parsed),
        "parse_version disagrees with parse"
    );
    match parsed.version {
        Version::Omemo2 => {
            assert!(parsed.iv.is_none());
            assert!(parsed.keys.iter().all(|key| key.jid.is_some()));
        }
        Version::Omemo03 => {
            assert!(parsed.iv.is_some());
            assert!(parsed.keys.iter().all(|key| key.jid.is_none()));
        }
    }
    let written = parsed.serialize();
    let reparsed = EncryptedElement::parse(&written).unwrap_or_else(|error| {
        panic!("serialized <encrypted> does not parse: {error}\n{written}")
    });
    assert_eq!(reparsed, grouped_by_jid(&parsed), "{written}");
    assert_eq!(reparsed.serialize(), written);
}

/// `element` with its keys in the order serialization writes them: grouped by JID, groups in
/// the order their JID first appears, document order within a group.
pub fn grouped_by_jid(element: &EncryptedElement) -> EncryptedElement {
    let mut jids: Vec<Option<&str>> = Vec::new();
    for key in &element.keys {
        if !jids.contains(&key.jid.as_deref()) {
            jids.push(key.jid.as_deref());
        }
    }
    let mut grouped = element.clone();
    grouped.keys = jids
        .iter()
        .flat_map(|jid| {
            element
                .keys
                .iter()
                .filter(move |key| key.jid.as_deref() == *jid)
                .cloned()
        })
        .collect();
    grouped
}

fn check_bundle_round_trip(xml: &str) {
    let Ok(parsed) = stanza::BundleElement::parse(xml) else {
        return;
    };
    let written = parsed.serialize();
    let reparsed = stanza::BundleElement::parse(&written)
        .unwrap_or_else(|error| panic!("serialized <bundle> does not parse: {error}\n{written}"));
    assert_eq!(reparsed, parsed, "{written}");
    assert_eq!(reparsed.serialize(), written);
    // Typing it may fail, never panic.
    let _ = VerifiedBundle::from_element(&parsed);
}

fn check_device_list_round_trip(xml: &str) {
    let Ok(parsed) = DeviceListElement::parse(xml) else {
        return;
    };
    let written = parsed.serialize();
    let reparsed = DeviceListElement::parse(&written).unwrap_or_else(|error| {
        panic!("serialized device list does not parse: {error}\n{written}")
    });
    assert_eq!(reparsed, parsed, "{written}");
    assert_eq!(reparsed.serialize(), written);
    for device in &parsed.devices {
        assert!(parsed.contains(device.id));
    }
}

fn check_envelope_round_trip(xml: &str, raw: &[u8]) {
    let parsed = Envelope::parse(xml);
    match std::str::from_utf8(raw) {
        Ok(_) => assert_eq!(Envelope::parse_bytes(raw), parsed, "parse_bytes disagrees"),
        Err(_) => assert!(matches!(
            Envelope::parse_bytes(raw),
            Err(stanza::StanzaError::Malformed(_))
        )),
    }
    let Ok(parsed) = parsed else {
        return;
    };
    let written = parsed.serialize();
    let reparsed = Envelope::parse(&written)
        .unwrap_or_else(|error| panic!("serialized <envelope> does not parse: {error}\n{written}"));
    assert_eq!(reparsed, parsed, "{written}");
    assert_eq!(reparsed.serialize(), written);
    assert_eq!(reparsed.body(), parsed.body());
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// `omemo_bundle`: the first byte picks what the rest is (mod 4):
///
/// - 0: bundle XML, parsed with [`stanza::BundleElement::parse`];
/// - 1, 2: an OMEMO 2 (1) or 0.3 (2) element's fields, see [`structured_bundle`];
/// - 3: edits to the fixture device's real bundle, see [`mutated_bundle`].
///
/// [`VerifiedBundle::from_element`] may refuse, never panic. A bundle it accepts verifies, is exactly
/// the element it came from, survives XML, and starts a session that encrypts (unless a key is
/// of small order, which X3DH refuses). A well-formed bundle with a valid signature is accepted.
pub fn check_omemo_bundle(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(element) = stanza::BundleElement::parse(&String::from_utf8_lossy(rest)) {
                check_bundle_element(&element, false);
            }
        }
        1 => check_bundle_element(&structured_bundle(Version::Omemo2, rest), false),
        2 => check_bundle_element(&structured_bundle(Version::Omemo03, rest), false),
        _ => {
            let (element, must_accept) = mutated_bundle(rest);
            check_bundle_element(&element, must_accept);
        }
    }
}

/// Reads fields off the front of a fuzz input; missing bytes read as zero or empty.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&byte, rest)) => {
                self.0 = rest;
                byte
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A length byte, then up to that many bytes.
    fn field(&mut self) -> Vec<u8> {
        let length = usize::from(self.byte()).min(self.0.len());
        let (field, rest) = self.0.split_at(length);
        self.0 = rest;
        field.to_vec()
    }
}

/// A bundle element from fields: signed pre-key id (4 bytes, little-endian), then signed
/// pre-key, signature and identity key, each a length byte and its bytes, then pre-keys (id,
/// key) until the input ends. [`encode_structured_bundle`] is the inverse.
pub fn structured_bundle(version: Version, data: &[u8]) -> stanza::BundleElement {
    let mut reader = Reader(data);
    let signed_pre_key_id = reader.u32();
    let signed_pre_key = reader.field();
    let signed_pre_key_signature = reader.field();
    let identity_key = reader.field();
    let mut pre_keys = Vec::new();
    while !reader.0.is_empty() {
        let id = reader.u32();
        pre_keys.push((id, reader.field()));
    }
    stanza::BundleElement {
        version,
        signed_pre_key_id,
        signed_pre_key,
        signed_pre_key_signature,
        identity_key,
        pre_keys,
    }
}

/// The input of [`structured_bundle`] that gives `element` (fields of at most 255 bytes).
pub fn encode_structured_bundle(element: &stanza::BundleElement) -> Vec<u8> {
    let mut out = element.signed_pre_key_id.to_le_bytes().to_vec();
    let field = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.push(u8::try_from(bytes.len()).expect("a short field"));
        out.extend_from_slice(bytes);
    };
    field(&mut out, &element.signed_pre_key);
    field(&mut out, &element.signed_pre_key_signature);
    field(&mut out, &element.identity_key);
    for (id, key) in &element.pre_keys {
        out.extend_from_slice(&id.to_le_bytes());
        field(&mut out, key);
    }
    out
}

/// The fixture device's bundle of `version`, cut to three pre-keys: the base of mode 3.
pub fn base_bundle(version: Version) -> stanza::BundleElement {
    let mut element = omemo_fixture().bob.bundle(version).to_element();
    element.pre_keys.truncate(3);
    element
}

/// Mode 3 of `omemo_bundle`: a flags byte (bit 0: OMEMO 0.3, bit 1: sign the signed pre-key
/// again with the fixture identity after the edits), then edits of 4 bytes `[what, index, at,
/// value]` to [`base_bundle`]. Returns the element and whether it must be accepted: re-signed,
/// identity key untouched, every key well formed.
pub fn mutated_bundle(data: &[u8]) -> (stanza::BundleElement, bool) {
    let mut reader = Reader(data);
    let flags = reader.byte();
    let version = if flags & 1 == 0 {
        Version::Omemo2
    } else {
        Version::Omemo03
    };
    let resign = flags & 2 != 0;
    let mut element = base_bundle(version);
    while !reader.0.is_empty() {
        let [what, index, at, value] = [reader.byte(), reader.byte(), reader.byte(), reader.byte()];
        let pre_key_count = element.pre_keys.len();
        let field = match index % 4 {
            0 => Some(&mut element.signed_pre_key),
            1 => Some(&mut element.signed_pre_key_signature),
            2 => Some(&mut element.identity_key),
            _ if pre_key_count > 0 => {
                Some(&mut element.pre_keys[usize::from(at) % pre_key_count].1)
            }
            _ => None,
        };
        match what % 8 {
            // Flip bits of a byte.
            0..=2 => {
                if let Some(field) = field.filter(|field| !field.is_empty()) {
                    let position = usize::from(at) % field.len();
                    field[position] ^= value.max(1);
                }
            }
            // Set a byte (a key's top or bottom byte is where canonicity is decided).
            3 => {
                if let Some(field) = field.filter(|field| !field.is_empty()) {
                    let position = if at & 1 == 0 { 0 } else { field.len() - 1 };
                    field[position] = value;
                }
            }
            4 => {
                if let Some(field) = field {
                    field.truncate(usize::from(value));
                }
            }
            5 => {
                if let Some(field) = field {
                    field.push(value);
                }
            }
            6 => element.signed_pre_key_id = u32::from_le_bytes([index, at, value, what]),
            _ => {
                if pre_key_count > 0 {
                    let position = usize::from(at) % pre_key_count;
                    if value & 1 == 0 {
                        element.pre_keys.remove(position);
                    } else {
                        element.pre_keys[position].0 = u32::from(value >> 1);
                    }
                }
            }
        }
    }
    if resign {
        let signature = omemo_fixture().bob.identity().sign_with_rng(
            version,
            &element.signed_pre_key,
            &mut DeterministicRng::new(31),
        );
        element.signed_pre_key_signature = signature.as_bytes().to_vec();
    }
    let must_accept = resign
        && element.identity_key == base_bundle(version).identity_key
        && well_formed_key(version, &element.signed_pre_key)
        && element
            .pre_keys
            .iter()
            .all(|(_, key)| well_formed_key(version, key));
    (element, must_accept)
}

/// Whether `bytes` is a public key as `version` writes it (32 raw bytes, or `0x05 ‖ 32`) whose
/// value is below p = 2^255 − 19.
fn well_formed_key(version: Version, bytes: &[u8]) -> bool {
    let raw = match (version, bytes) {
        (Version::Omemo2, raw) => raw,
        (Version::Omemo03, [0x05, raw @ ..]) => raw,
        (Version::Omemo03, _) => return false,
    };
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    // Little-endian comparison, from the most significant byte.
    raw.len() == 32 && raw.iter().rev().lt(p.iter().rev())
}

fn check_bundle_element(element: &stanza::BundleElement, must_accept: bool) {
    let result = VerifiedBundle::from_element(element);
    if must_accept {
        assert!(
            result.is_ok(),
            "a well-formed, validly signed bundle was refused: {result:?}"
        );
    }
    let Ok(bundle) = result else {
        return;
    };
    assert_eq!(bundle.version(), element.version);
    let verified = bundle.identity_ed25519();
    // The identity is a point of the prime-order group in both its forms (no small-order key
    // under which a forged signature verifies).
    match bundle.identity_key() {
        IdentityKey::Ed25519(key) => {
            assert_eq!(bundle.version(), Version::Omemo2);
            assert_eq!(verified, key);
            key.to_curve25519()
                .expect("an accepted identity has a Curve25519 form");
        }
        IdentityKey::Curve25519(key) => {
            assert_eq!(bundle.version(), Version::Omemo03);
            key.to_ed25519(false)
                .expect("an accepted identity has an Ed25519 form");
        }
    }
    assert_eq!(
        &bundle.to_element(),
        element,
        "accepted in a non-canonical form"
    );
    assert_eq!(
        VerifiedBundle::from_element(&bundle.to_element()).as_ref(),
        Ok(&bundle)
    );
    let mut ids: Vec<u32> = element.pre_keys.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() == element.pre_keys.len() && ids.len() <= stanza::Limit::PreKeys.max() {
        assert_eq!(
            stanza::BundleElement::parse(&element.serialize()).as_ref(),
            Ok(element)
        );
    }
    let identity = omemo_fixture().alice.identity();
    let mut rng = DeterministicRng::new(32);
    match bundle.version() {
        Version::Omemo2 => {
            let session = OmemoSession::<Omemo2>::initiate(identity, &bundle, None, &mut rng);
            if bundle.pre_keys().is_empty() {
                assert!(matches!(
                    session,
                    Err(SessionError::Bundle(BundleError::NoPreKeys))
                ));
            }
            if let Ok(mut session) = session {
                session
                    .encrypt_with_rng(&[0; 32], &mut rng)
                    .expect("a new session encrypts");
            }
        }
        Version::Omemo03 => {
            let session = OmemoSession::<Omemo03>::initiate(identity, &bundle, Some(7), &mut rng);
            if let Ok(mut session) = session {
                session
                    .encrypt_with_rng(&[0; 16], &mut rng)
                    .expect("a new session encrypts");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Device decryption

/// The sender's bare JID in the fixture.
pub const ALICE_JID: &str = "alice@example.org";
/// The sender's device id.
pub const ALICE_DEVICE: u32 = 1001;
/// The receiver's bare JID; every input is decrypted by a copy of this device.
pub const BOB_JID: &str = "bob@example.org";
/// The receiver's device id.
pub const BOB_DEVICE: u32 = 2002;

/// The key material of [`OmemoVersionFixture::skipped`].
pub const SKIPPED_MATERIAL: [u8; 32] = [3; 32];
/// The key material of [`OmemoVersionFixture::future`].
pub const FUTURE_MATERIAL: [u8; 32] = [4; 32];

/// The fixture: Alice's and Bob's devices after an exchange in both versions.
pub struct OmemoFixture {
    /// The sender, after the exchange.
    pub alice: OmemoDevice,
    /// The receiver, after the exchange.
    pub bob: OmemoDevice,
    /// [`device_fingerprint`] of `bob`.
    pub bob_fingerprint: String,
    /// OMEMO 2, then OMEMO 0.3.
    pub versions: Vec<OmemoVersionFixture>,
}

/// One version's exchange, Alice to Bob:
///
/// `e1` (key exchange, decrypted), key `k_repeat` (the key exchange again), Bob's empty `r1`,
/// `e2` (decrypted), key `skipped`, `e3` (decrypted, so `skipped` is a skipped key), key
/// `future`, `e4`, `e5` (empty), Bob's `r2`, `e6` (a new chain), and `e7` from a second
/// session of Alice's (a new key exchange).
pub struct OmemoVersionFixture {
    /// The version.
    pub version: Version,
    /// A message Bob skipped, with key material [`SKIPPED_MATERIAL`].
    pub skipped: SealedKey,
    /// A message of the current chain Bob has not reached, with [`FUTURE_MATERIAL`].
    pub future: SealedKey,
    /// What Bob encrypts for Alice after decrypting `skipped` and `future`, with
    /// `DeterministicRng::new(PROBE_SEED)`.
    pub probe: Vec<u8>,
    /// Key elements Bob has not decrypted: `k_repeat`, `skipped`, `future`, and the keys of
    /// `e4` to `e7`.
    pub fresh_keys: Vec<SealedKey>,
    /// Elements Bob has not decrypted: `e4` to `e7`.
    pub fresh_elements: Vec<EncryptedElement>,
    /// Key elements Bob decrypted (`e1` to `e3`) or sent (`r1`, `r2`, addressed to Alice).
    pub stale_keys: Vec<SealedKey>,
    /// The elements of `stale_keys`.
    pub stale_elements: Vec<EncryptedElement>,
}

const PROBE_SEED: u64 = 0x0e0e;

/// The fixture, built on first use.
pub fn omemo_fixture() -> &'static OmemoFixture {
    static FIXTURE: OnceLock<OmemoFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_omemo_fixture)
}

fn build_omemo_fixture() -> OmemoFixture {
    let mut rng = DeterministicRng::new(0x6f6d_656d_6f66_757a);
    let now = Timestamp::from_millis(1_700_000_000_000);
    let mut alice = OmemoDevice::generate(ALICE_JID, ALICE_DEVICE, now, &mut rng);
    let mut bob = OmemoDevice::generate(BOB_JID, BOB_DEVICE, now, &mut rng);
    let versions = [Version::Omemo2, Version::Omemo03]
        .into_iter()
        .map(|version| build_version_fixture(version, &mut alice, &mut bob, &mut rng))
        .collect();
    OmemoFixture {
        bob_fingerprint: device_fingerprint(&bob),
        alice,
        bob,
        versions,
    }
}

fn build_version_fixture(
    version: Version,
    alice: &mut OmemoDevice,
    bob: &mut OmemoDevice,
    rng: &mut DeterministicRng,
) -> OmemoVersionFixture {
    let to_bob = [(BOB_JID, BOB_DEVICE)];
    let to_alice = [(ALICE_JID, ALICE_DEVICE)];
    let payload = |text: &str, rng: &mut DeterministicRng| match version {
        Version::Omemo2 => Envelope::for_body(text, ALICE_JID, BOB_JID, None, rng)
            .serialize()
            .into_bytes(),
        Version::Omemo03 => text.as_bytes().to_vec(),
    };
    let key_for = |element: &EncryptedElement, jid: &str, device: u32| {
        let our_jid = (version == Version::Omemo2).then_some(jid);
        let key = element
            .keys_for(our_jid, device)
            .next()
            .expect("fixture: a key for the recipient");
        SealedKey {
            data: key.data.clone(),
            key_exchange: key.key_exchange,
        }
    };

    alice
        .build_session(BOB_JID, BOB_DEVICE, &bob.bundle(version), rng)
        .expect("fixture: session");
    let message = |alice: &mut OmemoDevice, text: &str, rng: &mut DeterministicRng| {
        let plaintext = payload(text, rng);
        alice
            .encrypt_message(version, &to_bob, &plaintext, rng)
            .expect("fixture: encrypt")
    };
    let send_key = |alice: &mut OmemoDevice, material: &[u8], rng: &mut DeterministicRng| {
        alice
            .encrypt_key(version, BOB_JID, BOB_DEVICE, material, rng)
            .expect("fixture: encrypt key")
    };
    let receive = |to: &mut OmemoDevice,
                   from: &str,
                   element: &EncryptedElement,
                   rng: &mut DeterministicRng| {
        to.decrypt_message(from, element, rng)
            .expect("fixture: decrypt")
    };

    let e1 = message(alice, "one", rng);
    let k_repeat = send_key(alice, &[2; 32], rng);
    assert!(k_repeat.key_exchange);
    assert!(receive(bob, ALICE_JID, &e1, rng).new_session);
    let r1 = bob
        .encrypt_empty(version, &to_alice, rng)
        .expect("fixture: empty reply");
    receive(alice, BOB_JID, &r1, rng);
    let e2 = message(alice, "two", rng);
    receive(bob, ALICE_JID, &e2, rng);
    let skipped = send_key(alice, &SKIPPED_MATERIAL, rng);
    let e3 = message(alice, "three", rng);
    receive(bob, ALICE_JID, &e3, rng);
    let future = send_key(alice, &FUTURE_MATERIAL, rng);
    let e4 = message(alice, "four", rng);
    let e5 = alice
        .encrypt_empty(version, &to_bob, rng)
        .expect("fixture: empty message");
    let reply = payload("reply", rng);
    let r2 = bob
        .encrypt_message(version, &to_alice, &reply, rng)
        .expect("fixture: reply");
    receive(alice, BOB_JID, &r2, rng);
    let e6 = message(alice, "six, new chain", rng);
    let mut second = alice.clone();
    second
        .build_session(BOB_JID, BOB_DEVICE, &bob.bundle(version), rng)
        .expect("fixture: second session");
    let e7 = message(&mut second, "seven, new session", rng);
    assert!(!skipped.key_exchange && !future.key_exchange);

    let fresh_elements = vec![e4, e5, e6, e7];
    let mut fresh_keys = vec![k_repeat, skipped.clone(), future.clone()];
    fresh_keys.extend(
        fresh_elements
            .iter()
            .map(|element| key_for(element, BOB_JID, BOB_DEVICE)),
    );
    let mut stale_keys: Vec<SealedKey> = [&e1, &e2, &e3]
        .into_iter()
        .map(|element| key_for(element, BOB_JID, BOB_DEVICE))
        .collect();
    stale_keys.extend(
        [&r1, &r2]
            .into_iter()
            .map(|element| key_for(element, ALICE_JID, ALICE_DEVICE)),
    );
    let mut fixture = OmemoVersionFixture {
        version,
        skipped,
        future,
        probe: Vec::new(),
        fresh_keys,
        fresh_elements,
        stale_keys,
        stale_elements: vec![e1, e2, e3, r1, r2],
    };
    fixture.probe = probe(&fixture, &mut bob.clone());
    fixture
}

/// Decrypts the skipped and the future message on `device` (checking their key material),
/// then encrypts for Alice with a fixed generator and returns the key element's bytes.
fn probe(fixture: &OmemoVersionFixture, device: &mut OmemoDevice) -> Vec<u8> {
    let version = fixture.version;
    let mut rng = DeterministicRng::new(PROBE_SEED);
    for (key, material) in [
        (&fixture.skipped, SKIPPED_MATERIAL),
        (&fixture.future, FUTURE_MATERIAL),
    ] {
        let decrypted = device
            .decrypt_key(version, ALICE_JID, ALICE_DEVICE, key, &mut rng)
            .unwrap_or_else(|error| {
                panic!("{version:?}: the device no longer decrypts a held-back message: {error}")
            });
        assert_eq!(&decrypted.decrypted.key_material[..], material);
    }
    device
        .encrypt_key(version, ALICE_JID, ALICE_DEVICE, b"probe", &mut rng)
        .unwrap_or_else(|error| panic!("{version:?}: the device no longer encrypts: {error}"))
        .data
}

/// What changes whenever a device's sessions or pre-keys change, short of the ratchet secrets
/// (the probe in [`check_omemo_decrypt`] covers those): the sessions' Debug output and the
/// pre-key ids of both versions.
pub fn device_fingerprint(device: &OmemoDevice) -> String {
    let pre_keys = [Version::Omemo2, Version::Omemo03].map(|version| {
        let pre_keys = device.pre_keys(version);
        (
            pre_keys.signed_pre_key().id(),
            pre_keys.pre_key_ids().collect::<Vec<u32>>(),
        )
    });
    format!(
        "{:?}{:?}{pre_keys:?}",
        device.omemo2_sessions(),
        device.omemo03_sessions(),
    )
}

/// What `omemo_decrypt` hands the device.
enum Input {
    Key(SealedKey),
    Element(EncryptedElement),
}

/// `omemo_decrypt`: the first byte picks what the rest is: bit 0 the version (0: OMEMO 2, 1:
/// 0.3), bit 1 an `<encrypted>` element (XML, lossy UTF-8) for [`OmemoDevice::decrypt_message`]
/// rather than a key element's bytes for [`OmemoDevice::decrypt_key`], bit 2 the key element's
/// `kex`/`prekey` flag. A copy of the fixture's Bob decrypts it as from Alice. Decryption may
/// fail, never panic. After a failure the device is unchanged: same fingerprint, still
/// decrypts the held-back messages of both versions and encrypts exactly what the untouched
/// device does. What decrypts does not decrypt a second time, and that refusal changes nothing.
/// An element is also tried with parts stripped or swapped ([`check_element_variants`]).
pub fn check_omemo_decrypt(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let fixture = omemo_fixture();
    let version = if selector & 1 == 0 {
        Version::Omemo2
    } else {
        Version::Omemo03
    };
    let mut device = fixture.bob.clone();
    let mut rng = DeterministicRng::new(33);
    let input = if selector & 2 == 0 {
        Input::Key(SealedKey {
            data: body.to_vec(),
            key_exchange: selector & 4 != 0,
        })
    } else {
        let Ok(element) = EncryptedElement::parse(&String::from_utf8_lossy(body)) else {
            return;
        };
        Input::Element(element)
    };
    let mut attempt = |device: &mut OmemoDevice| match &input {
        Input::Key(key) => device
            .decrypt_key(version, ALICE_JID, ALICE_DEVICE, key, &mut rng)
            .map(drop)
            .map_err(|error| error.to_string()),
        Input::Element(element) => device
            .decrypt_message(ALICE_JID, element, &mut rng)
            .map(drop)
            .map_err(|error| error.to_string()),
    };
    let original = attempt(&mut device);
    match &original {
        Ok(()) => {
            let after = device_fingerprint(&device);
            assert!(attempt(&mut device).is_err(), "a message decrypted twice");
            assert_eq!(
                device_fingerprint(&device),
                after,
                "a refused replay changed the device"
            );
        }
        Err(error) => assert_unchanged(fixture, &mut device, error),
    }
    if let Input::Element(element) = &input {
        check_element_variants(fixture, element, original.is_ok());
    }
}

/// After a refusal `device` is the fixture's Bob: same fingerprint, still decrypts the
/// held-back messages of both versions and encrypts exactly what the untouched device does.
fn assert_unchanged(fixture: &OmemoFixture, device: &mut OmemoDevice, error: &str) {
    assert_eq!(
        device_fingerprint(device),
        fixture.bob_fingerprint,
        "the device changed on an error: {error}"
    );
    for version_fixture in &fixture.versions {
        assert_eq!(
            probe(version_fixture, device),
            version_fixture.probe,
            "{:?}: the device's ratchet changed on an error: {error}",
            version_fixture.version
        );
    }
}

/// `element` with parts stripped or taken from the fixture's fresh elements of its version:
/// payload removed, IV removed (with a payload), payload (with or without its IV) or keys
/// swapped with a message of another payload.
fn element_variants(
    fixture: &OmemoFixture,
    element: &EncryptedElement,
) -> Vec<(&'static str, EncryptedElement)> {
    let mut variants = Vec::new();
    if element.payload.is_some() {
        let mut stripped = element.clone();
        stripped.payload = None;
        variants.push(("payload removed", stripped));
    }
    // (An empty message's IV covers nothing.)
    if element.iv.is_some() && element.payload.is_some() {
        let mut stripped = element.clone();
        stripped.iv = None;
        variants.push(("IV removed", stripped));
    }
    let partners = fixture
        .versions
        .iter()
        .filter(|v| v.version == element.version)
        .flat_map(|v| &v.fresh_elements);
    for partner in partners {
        if partner.payload != element.payload {
            let mut swapped = element.clone();
            swapped.payload.clone_from(&partner.payload);
            variants.push(("payload swapped", swapped.clone()));
            swapped.iv.clone_from(&partner.iv);
            variants.push(("payload and IV swapped", swapped));
            // Another message's keys (its payload differs, so it is another message).
            if partner.keys != element.keys {
                let mut swapped = element.clone();
                swapped.keys.clone_from(&partner.keys);
                variants.push(("keys swapped", swapped));
            }
        }
    }
    variants
}

/// Each variant of `element` is decrypted by a fresh copy of Bob. A part of one message never
/// completes another: a variant that decrypts means the original (`original_ok`) did not (a
/// payload removed is not an empty message, a payload swapped in does not open under the key).
/// A refused variant changes nothing.
fn check_element_variants(fixture: &OmemoFixture, element: &EncryptedElement, original_ok: bool) {
    let mut rng = DeterministicRng::new(34);
    for (what, variant) in element_variants(fixture, element) {
        let mut device = fixture.bob.clone();
        match device.decrypt_message(ALICE_JID, &variant, &mut rng) {
            Ok(_) => assert!(
                !original_ok,
                "{what}: both the element and its variant decrypt"
            ),
            Err(error) => assert_unchanged(fixture, &mut device, &format!("{what}: {error}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// [`hostile_stanza`] headers: each shape at full size (long values, with a header, parse), and
/// one within the limits that parses.
const HOSTILE_STANZA_SEEDS: &[(&str, &[u8])] = &[
    ("hostile-prefixes", &[0, 0, 255, 255]),
    ("hostile-default-redeclared", &[0, 1, 255, 255]),
    ("hostile-deep-declarations", &[0, 2, 62, 40]),
    ("hostile-attributes", &[0, 3, 255, 255]),
    ("hostile-nodes", &[0, 4, 255, 255]),
    ("hostile-long-values", b"\0\x05\xff\xff<header sid='1'/>"),
    ("hostile-within-limits", b"\0\x01\0\xff<header sid='1'/>"),
];

/// A few hand-written stanzas: wrappers, prefixes, CDATA, comments, character references.
const HAND_WRITTEN_STANZAS: &[(&str, &str)] = &[
    (
        "omemo2-in-message",
        "<message xmlns='jabber:client' to='juliet@capulet.lit' type='chat'>\n  \
         <encrypted xmlns='urn:xmpp:omemo:2'>\n    <header sid='27183'>\n      \
         <keys jid='juliet@capulet.lit'>\n        <key rid='31415' kex='true'>\n          \
         AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n        </key>\n      </keys>\n      \
         <keys jid=\"romeo@montague.lit\"><key rid=\"1337\">AAECAw==</key>\
         <key rid='4242' kex='1'>AAECAw==</key></keys>\n      \
         <keys jid='juliet@capulet.lit'><key rid='4343' kex='0'>AAECAw==</key></keys>\n    \
         </header>\n    <payload>AAECAwQFBgcICQoL\n      DA0ODxAREhMUFRYXGBkaGxwdHh8=</payload>\n  \
         </encrypted>\n  <store xmlns='urn:xmpp:hints'/>\n</message>",
    ),
    (
        "omemo03-prefixed",
        "<?xml version='1.0' encoding='UTF-8'?>\n<m:message xmlns:m='jabber:client' \
         xmlns:o='eu.siacs.conversations.axolotl'><o:encrypted><o:header sid=' 27183 '>\
         <o:key prekey='true' rid='31415'>AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=</o:key>\
         <o:key rid='1337'>AAEC\nAw==</o:key><o:iv>AAECAwQFBgcICQoL</o:iv></o:header>\
         <o:payload><![CDATA[AAECAw==]]></o:payload></o:encrypted><m:body>fallback</m:body>\
         </m:message>",
    ),
    (
        "bundle-omemo03-in-iq",
        "<iq xmlns='jabber:client' type='result'><pubsub \
         xmlns='http://jabber.org/protocol/pubsub'><items \
         node='eu.siacs.conversations.axolotl.bundles:31415'><item id='current'>\
         <bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic \
         signedPreKeyId='1'>BQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f</signedPreKeyPublic>\
         <signedPreKeySignature>AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss\
         LS4vMDEyMzQ1Njc4OTo7PD0+Pw==</signedPreKeySignature><identityKey>\
         BQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f</identityKey><prekeys><preKeyPublic \
         preKeyId='1'>BQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f</preKeyPublic><!-- c -->\
         </prekeys></bundle></item></items></pubsub></iq>",
    ),
    (
        "devices-in-event",
        "<message xmlns='jabber:client'><event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:omemo:2:devices'><item id='current'><devices \
         xmlns='urn:xmpp:omemo:2'><device id='12345' label='Gajim &amp; &#x9;friends&#xD;' \
         labelsig='AAECAw=='/><device id=\"4223\" label=\"Conversations\"/><device id='31415'/>\
         </devices></item></items></event></message>",
    ),
    (
        "list-omemo03",
        "<items node='eu.siacs.conversations.axolotl.devicelist'><item id='current'><list \
         xmlns='eu.siacs.conversations.axolotl'><device id='12345'/><device id='4223' \
         label='ignored'/></list></item></items>",
    ),
    (
        "envelope-prefixed",
        "<s:envelope xmlns:s='urn:xmpp:sce:1'><s:content><b:body xmlns:b='jabber:client' \
         xml:lang='en' b:kind='x' q:kind='y' xmlns:q='urn:example:q'>Hi &amp; \
         <![CDATA[<raw>]]>&#xD;</b:body><!-- comment --><?pi data?><x xmlns=''><y \
         xmlns='urn:example:y'/></x>text</s:content><s:rpad>&#xD;pad\t</s:rpad><s:time \
         stamp='2004-01-25T05:05:00Z'/><s:to jid='romeo@montague.lit'/><s:from \
         jid=\"juliet@capulet.lit\"/></s:envelope>",
    ),
];

/// Seed inputs for the OMEMO targets.
pub fn omemo_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let fixture = omemo_fixture();
    let mut seeds = Vec::new();
    let with = |selector: u8, rest: &[u8]| [&[selector][..], rest].concat();
    for version_fixture in &fixture.versions {
        let version = version_fixture.version;
        let (tag, bit) = match version {
            Version::Omemo2 => ("omemo2", 0),
            Version::Omemo03 => ("omemo03", 1),
        };
        let keys = version_fixture
            .fresh_keys
            .iter()
            .map(|key| ("fresh", key))
            .chain(version_fixture.stale_keys.iter().map(|key| ("stale", key)));
        for (index, (kind, key)) in keys.enumerate() {
            let name = format!("{tag}-{kind}-key-{index}");
            seeds.push(("omemo_message_decode", name.clone(), key.data.clone()));
            let selector = bit | if key.key_exchange { 4 } else { 0 };
            seeds.push(("omemo_decrypt", name, with(selector, &key.data)));
        }
        let elements = version_fixture
            .fresh_elements
            .iter()
            .map(|element| ("fresh", element))
            .chain(
                version_fixture
                    .stale_elements
                    .iter()
                    .map(|element| ("stale", element)),
            );
        for (index, (kind, element)) in elements.enumerate() {
            let name = format!("{tag}-{kind}-element-{index}");
            let xml = element.serialize();
            seeds.push(("omemo_stanza_parse", name.clone(), xml.clone().into_bytes()));
            seeds.push(("omemo_decrypt", name, with(2 | bit, xml.as_bytes())));
        }
        // A message with its payload stripped, and one whose first key for Bob is garbage
        // (the second, genuine one must open it).
        let [first, ..] = &version_fixture.fresh_elements[..] else {
            panic!("fixture: fresh elements");
        };
        let mut stripped = first.clone();
        stripped.payload = None;
        let mut two_keys = first.clone();
        let mut garbage = first.keys[0].clone();
        if let Some(last) = garbage.data.last_mut() {
            *last ^= 1;
        }
        two_keys.keys.insert(0, garbage);
        for (name, element) in [
            ("payload-stripped", stripped),
            ("garbage-key-first", two_keys),
        ] {
            let xml = element.serialize();
            seeds.push((
                "omemo_decrypt",
                format!("{tag}-{name}"),
                with(2 | bit, xml.as_bytes()),
            ));
        }

        let bundle = base_bundle(version);
        let xml = bundle.serialize();
        seeds.push((
            "omemo_stanza_parse",
            format!("{tag}-bundle"),
            xml.clone().into_bytes(),
        ));
        seeds.push((
            "omemo_bundle",
            format!("{tag}-xml"),
            with(0, xml.as_bytes()),
        ));
        seeds.push((
            "omemo_bundle",
            format!("{tag}-structured"),
            with(1 + bit, &encode_structured_bundle(&bundle)),
        ));
        seeds.push(("omemo_bundle", format!("{tag}-base"), vec![3, bit]));
        // Re-signed after setting the signed pre-key's top byte to 0x7f: still canonical.
        seeds.push((
            "omemo_bundle",
            format!("{tag}-resigned"),
            vec![3, bit | 2, 3, 0, 1, 0x7f],
        ));

        // A small-order identity key with a signature that verifies under cofactorless,
        // non-strict rules: R = B, s = 1 (for OMEMO 2's identity point, for any message).
        let mut weak = bundle.clone();
        let mut base_point = [0x66; 32];
        base_point[0] = 0x58;
        let mut one = [0; 32];
        one[0] = 1;
        weak.signed_pre_key_signature = [base_point, one].concat();
        weak.identity_key = match version {
            Version::Omemo2 => one.to_vec(),
            Version::Omemo03 => [&[0x05][..], &[0; 32]].concat(),
        };
        seeds.push((
            "omemo_bundle",
            format!("{tag}-small-order-identity"),
            with(1 + bit, &encode_structured_bundle(&weak)),
        ));
        // The repeated key exchange with other (unauthenticated) pre-key ids: a repeat is
        // recognised by its base and identity keys, and decrypts.
        let repeat = &version_fixture.fresh_keys[0];
        let (exchange, _) = match version {
            Version::Omemo2 => Omemo2::open_key_exchange(&repeat.data),
            Version::Omemo03 => Omemo03::open_key_exchange(&repeat.data),
        }
        .expect("fixture: the repeated key exchange decodes");
        let (body, message_field) = match version {
            Version::Omemo2 => (&repeat.data[..], 5),
            Version::Omemo03 => (&repeat.data[1..], 4),
        };
        let inner = scan_protobuf(body)
            .expect("fixture: protobuf")
            .into_iter()
            .find_map(|(number, field)| match field {
                Field::Bytes(bytes) if number == message_field => Some(bytes.to_vec()),
                _ => None,
            })
            .expect("fixture: the message field");
        let mut other_ids = exchange.clone();
        other_ids.pre_key_id = other_ids.pre_key_id.map(|id| id ^ 0x40);
        other_ids.signed_pre_key_id ^= 0x40;
        let data = match version {
            Version::Omemo2 => Omemo2::encode_key_exchange(&other_ids, inner),
            Version::Omemo03 => Omemo03::encode_key_exchange(&other_ids, inner),
        };
        seeds.push((
            "omemo_decrypt",
            format!("{tag}-repeat-other-ids"),
            with(bit | 4, &data),
        ));

        let identity = fixture.alice.identity();
        let list = DeviceListElement {
            version,
            devices: vec![
                identity.device_list_entry(ALICE_DEVICE, Some("Alice's phone & <laptop>")),
                identity.device_list_entry(4242, None),
            ],
        };
        seeds.push((
            "omemo_stanza_parse",
            format!("{tag}-device-list"),
            list.serialize().into_bytes(),
        ));
    }
    let envelope = Envelope::for_body(
        "Hi & <bye>\r\n",
        ALICE_JID,
        BOB_JID,
        Some("2024-01-25T05:05:00Z"),
        &mut DeterministicRng::new(34),
    );
    seeds.push((
        "omemo_stanza_parse",
        "envelope".into(),
        envelope.serialize().into_bytes(),
    ));
    for (name, xml) in HAND_WRITTEN_STANZAS {
        seeds.push((
            "omemo_stanza_parse",
            (*name).to_owned(),
            xml.as_bytes().to_vec(),
        ));
        if name.starts_with("bundle") {
            seeds.push(("omemo_bundle", (*name).to_owned(), with(0, xml.as_bytes())));
        }
    }
    for (name, header) in HOSTILE_STANZA_SEEDS {
        seeds.push(("omemo_stanza_parse", (*name).to_owned(), header.to_vec()));
    }
    seeds
}
