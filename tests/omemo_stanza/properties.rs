//! Properties: serialize → parse is the identity for every element type; the canonical content
//! form is a fixed point; and no input, however mangled, makes a parser panic.

use olmo::omemo::Version;
use olmo::omemo::stanza::{
    BundleElement, DeviceListElement, EncryptedElement, Envelope, KeyElement, ListedDevice,
    MAX_DEVICE_ID,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use crate::test_rng;

/// Characters XML 1.0 can carry (anything else is replaced on output, tested elsewhere).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn xml_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            2 => prop::sample::select(vec!['<', '>', '&', '\'', '"', '\r', '\n', '\t', ' ', ']']),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().filter(|&c| xml_char(c)).collect())
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::Omemo2), Just(Version::Omemo03)]
}

fn device_id() -> impl Strategy<Value = u32> {
    prop_oneof![Just(1u32), Just(MAX_DEVICE_ID), 1..=MAX_DEVICE_ID]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn encrypted() -> impl Strategy<Value = EncryptedElement> {
    (
        version(),
        device_id(),
        prop::collection::vec((0..4usize, device_id(), any::<bool>(), bytes(80)), 0..12),
    )
        .prop_flat_map(|(version, sid, raw_keys)| {
            let iv = match version {
                Version::Omemo2 => Just(None).boxed(),
                Version::Omemo03 => bytes(16).prop_map(Some).boxed(),
            };
            (
                Just(version),
                Just(sid),
                Just(raw_keys),
                xml_string(12),
                iv,
                prop::option::of(bytes(200)),
            )
        })
        .prop_map(
            |(version, sender_device, raw_keys, jid_stem, iv, payload)| {
                let mut keys: Vec<KeyElement> = raw_keys
                    .into_iter()
                    .map(|(jid_index, device_id, key_exchange, data)| KeyElement {
                        jid: (version == Version::Omemo2)
                            .then(|| format!("{jid_stem}{jid_index}@x")),
                        device_id,
                        key_exchange,
                        data,
                    })
                    .collect();
                // The wire groups keys by JID; put them in the grouped order so equality is exact.
                if version == Version::Omemo2 {
                    let mut order: Vec<Option<String>> = Vec::new();
                    for k in &keys {
                        if !order.contains(&k.jid) {
                            order.push(k.jid.clone());
                        }
                    }
                    keys.sort_by_key(|k| order.iter().position(|j| *j == k.jid));
                }
                EncryptedElement {
                    version,
                    sender_device,
                    keys,
                    iv,
                    payload,
                }
            },
        )
}

fn bundle() -> impl Strategy<Value = BundleElement> {
    (
        version(),
        any::<u32>(),
        bytes(40),
        bytes(70),
        bytes(40),
        prop::collection::btree_map(any::<u32>(), bytes(40), 0..20),
        any::<u64>(),
    )
        .prop_map(
            |(version, signed_pre_key_id, spk, spks, ik, pre_keys, shuffle)| {
                let mut pre_keys: Vec<(u32, Vec<u8>)> = pre_keys.into_iter().collect();
                // Ids in no particular order.
                pre_keys.sort_by_key(|(id, _)| id ^ (shuffle as u32));
                BundleElement {
                    version,
                    signed_pre_key_id,
                    signed_pre_key: spk,
                    signed_pre_key_signature: spks,
                    identity_key: ik,
                    pre_keys,
                }
            },
        )
}

fn device_list() -> impl Strategy<Value = DeviceListElement> {
    (
        version(),
        prop::collection::btree_map(
            device_id(),
            (
                prop::option::of(xml_string(30)),
                prop::option::of(bytes(64)),
            ),
            0..20,
        ),
    )
        .prop_map(|(version, devices)| DeviceListElement {
            version,
            devices: devices
                .into_iter()
                .map(|(id, (label, sig))| match version {
                    Version::Omemo2 => ListedDevice {
                        id,
                        label,
                        label_signature: sig,
                    },
                    Version::Omemo03 => ListedDevice {
                        id,
                        label: None,
                        label_signature: None,
                    },
                })
                .collect(),
        })
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        xml_string(300),
        xml_string(40),
        xml_string(40),
        prop::option::of(xml_string(30)),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(body, from, to, time, seed, blank_affixes)| {
            let mut env =
                Envelope::for_body(&body, &from, &to, time.as_deref(), &mut test_rng(seed));
            if blank_affixes {
                env.to = None;
                env.from = None;
                env.rpad = None;
            }
            env
        })
}

/// A random content tree written in a deliberately non-canonical style: prefixes, redundant
/// declarations, comments, CDATA, double quotes.
#[derive(Debug, Clone)]
enum Tree {
    Text(String),
    Element {
        name: String,
        ns: u8,
        prefixed: bool,
        attrs: Vec<(String, u8, String)>,
        kids: Vec<Tree>,
    },
}

const NAMESPACES: [&str; 4] = ["", "jabber:client", "urn:example:a", "urn:xmpp:sce:1"];

fn tree() -> impl Strategy<Value = Tree> {
    let name = "[a-wyz][a-z0-9]{0,4}";
    let text = xml_string(20).prop_map(Tree::Text);
    text.prop_recursive(4, 24, 4, move |inner| {
        (
            name,
            0..4u8,
            any::<bool>(),
            prop::collection::btree_map(name, (0..3u8, xml_string(10)), 0..3),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(name, ns, prefixed, attrs, kids)| Tree::Element {
                name,
                ns,
                prefixed: prefixed && ns != 0,
                attrs: attrs.into_iter().map(|(n, (ans, v))| (n, ans, v)).collect(),
                kids,
            })
    })
}

fn write_tree(tree: &Tree, out: &mut String) {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\r', "&#13;")
    };
    match tree {
        Tree::Text(text) if text.contains("]]>") || text.contains('\r') => {
            out.push_str(&escape(text))
        }
        Tree::Text(text) if text.len() % 2 == 0 => out.push_str(&escape(text)),
        Tree::Text(text) => out.push_str(&format!("<![CDATA[{text}]]><!-- c -->")),
        Tree::Element {
            name,
            ns,
            prefixed,
            attrs,
            kids,
        } => {
            let uri = NAMESPACES[*ns as usize];
            let qname = if *prefixed {
                format!("p:{name}")
            } else {
                name.clone()
            };
            out.push_str(&format!("<{qname}"));
            if *prefixed {
                out.push_str(&format!(" xmlns:p=\"{uri}\""));
            } else {
                out.push_str(&format!(" xmlns=\"{uri}\""));
            }
            for (i, (attr, ans, value)) in attrs.iter().enumerate() {
                let value = escape(value)
                    .replace('"', "&quot;")
                    .replace('\t', "&#9;")
                    .replace('\n', "&#10;");
                match ans {
                    0 => out.push_str(&format!(" {attr}=\"{value}\"")),
                    1 => out.push_str(&format!(" xml:{attr}=\"{value}\"")),
                    _ => out.push_str(&format!(
                        " xmlns:q{i}='urn:example:attr' q{i}:{attr}=\"{value}\""
                    )),
                }
            }
            out.push('>');
            for kid in kids {
                write_tree(kid, out);
            }
            out.push_str(&format!("</{qname}>"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encrypted_round_trips(e in encrypted()) {
        let xml = e.serialize();
        prop_assert_eq!(EncryptedElement::parse(&xml).unwrap(), e.clone());
        prop_assert_eq!(EncryptedElement::parse_version(&xml, e.version).unwrap(), e);
    }

    #[test]
    fn bundle_round_trips(b in bundle()) {
        prop_assert_eq!(BundleElement::parse(&b.serialize()).unwrap(), b);
    }

    #[test]
    fn device_list_round_trips(list in device_list()) {
        prop_assert_eq!(DeviceListElement::parse(&list.serialize()).unwrap(), list);
    }

    #[test]
    fn envelope_round_trips(env in envelope()) {
        let back = Envelope::parse(&env.serialize()).unwrap();
        prop_assert_eq!(back.body(), env.body());
        prop_assert_eq!(back, env);
    }

    #[test]
    fn canonical_content_is_a_fixed_point(trees in prop::collection::vec(tree(), 0..4)) {
        let mut content = String::new();
        for t in &trees {
            write_tree(t, &mut content);
        }
        let xml = format!("<e:envelope xmlns:e='urn:xmpp:sce:1'><e:content>{content}</e:content></e:envelope>");
        let first = Envelope::parse(&xml).unwrap();
        let second = Envelope::parse(&first.serialize()).unwrap();
        prop_assert_eq!(&second, &first);
        prop_assert_eq!(second.serialize(), first.serialize());
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = EncryptedElement::parse(&text);
        let _ = BundleElement::parse(&text);
        let _ = DeviceListElement::parse(&text);
        let _ = Envelope::parse(&text);
    }
}

/// Valid documents of every kind, to mutate.
fn seeds() -> Vec<String> {
    let mut rng = test_rng(99);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seeds = vec![
        Envelope::for_body(
            "hi <there> & 'you'",
            "a@b",
            "c@d",
            Some("2020-01-01T00:00:00Z"),
            &mut rng,
        )
        .serialize(),
        "<message xmlns='jabber:client' xmlns:o='urn:xmpp:omemo:2'><o:encrypted><o:header sid='5'>\
         <o:keys jid='a@b'><o:key rid='6' kex='1'>AQIDBA==</o:key></o:keys></o:header>\
         <o:payload>AQIDBA==</o:payload></o:encrypted></message>"
            .to_owned(),
        "<iq><pubsub><items><item><devices xmlns='urn:xmpp:omemo:2'><device id='1' label='x' \
         labelsig='AQ=='/></devices></item></items></pubsub></iq>"
            .to_owned(),
    ];
    for _ in 0..4 {
        seeds.push(
            encrypted()
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .serialize(),
        );
        seeds.push(
            bundle()
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .serialize(),
        );
        seeds.push(
            device_list()
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .serialize(),
        );
    }
    seeds
}

#[test]
fn mutated_documents_never_panic() {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let interesting = b"<>/='\"&;:!?[]-xmlns 0123456789AQ==";
    let mut parsed = 0;
    for seed in seeds() {
        let original = seed.into_bytes();
        for _ in 0..400 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 4 {
                if bytes.is_empty() {
                    break;
                }
                let at = next() % bytes.len();
                match next() % 5 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes[at] = interesting[next() % interesting.len()],
                    2 => {
                        bytes.remove(at);
                    }
                    3 => bytes.insert(at, interesting[next() % interesting.len()]),
                    _ => {
                        let end = (at + 1 + next() % 16).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        let to = next() % bytes.len();
                        bytes.splice(to..to, chunk);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            parsed += usize::from(EncryptedElement::parse(&text).is_ok());
            parsed += usize::from(BundleElement::parse(&text).is_ok());
            parsed += usize::from(DeviceListElement::parse(&text).is_ok());
            parsed += usize::from(Envelope::parse(&text).is_ok());
            let _ = Envelope::parse_bytes(&bytes).map(|env| env.body());
        }
    }
    // Some mutations are harmless (inside base64 text that stays valid, say).
    assert!(parsed > 0);
}
