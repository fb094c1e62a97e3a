//! SCE envelopes: parsing, the canonical content form, bodies, padding.

use olmo::omemo::stanza::{Envelope, StanzaError};

use crate::test_rng;

const EXAMPLE: &str = r#"<envelope xmlns='urn:xmpp:sce:1'>
  <content>
    <body xmlns='jabber:client'>Wherefore art thou, Romeo?</body>
    <x xmlns='jabber:x:oob'>
      <url>https://example.org/balcony.jpg</url>
    </x>
  </content>
  <rpad>kq9XbZ2w</rpad>
  <time stamp='2004-01-25T05:05:00Z'/>
  <to jid='romeo@montague.lit'/>
  <from jid="juliet@capulet.lit"/>
</envelope>"#;

#[test]
fn example_parses_to_canonical_content() {
    let env = Envelope::parse(EXAMPLE).unwrap();
    assert_eq!(
        env.content,
        "\n    <body xmlns='jabber:client'>Wherefore art thou, Romeo?</body>\n    \
         <x xmlns='jabber:x:oob'>\n      <url>https://example.org/balcony.jpg</url>\n    </x>\n  "
    );
    assert_eq!(env.rpad.as_deref(), Some("kq9XbZ2w"));
    assert_eq!(env.time.as_deref(), Some("2004-01-25T05:05:00Z"));
    assert_eq!(env.to.as_deref(), Some("romeo@montague.lit"));
    assert_eq!(env.from.as_deref(), Some("juliet@capulet.lit"));
    assert_eq!(env.body().as_deref(), Some("Wherefore art thou, Romeo?"));
    assert_eq!(Envelope::parse(&env.serialize()).unwrap(), env);
}

#[test]
fn affixes_are_optional_and_content_may_be_empty() {
    let env = Envelope::parse("<envelope xmlns='urn:xmpp:sce:1'><content/></envelope>").unwrap();
    assert_eq!(
        env,
        Envelope {
            content: String::new(),
            rpad: None,
            time: None,
            to: None,
            from: None
        }
    );
    assert_eq!(env.body(), None);
    assert_eq!(
        env.serialize(),
        "<envelope xmlns='urn:xmpp:sce:1'><content/></envelope>"
    );
}

#[test]
fn canonical_form_normalizes_prefixes_comments_and_cdata() {
    let xml = "<sce:envelope xmlns:sce='urn:xmpp:sce:1' xmlns:c='jabber:client' \
               xmlns:r='urn:xmpp:reactions:0'><sce:content>\
               <c:body xml:lang='en'>a <![CDATA[<b>]]> &amp; c<!-- gone --><?pi gone?></c:body>\
               <r:reactions id='744f6e18'><r:reaction>&#x1F44D;</r:reaction><r:empty></r:empty>\
               </r:reactions>\
               <plain a=\"1\" r:b='2'/>\
               </sce:content></sce:envelope>";
    let env = Envelope::parse(xml).unwrap();
    assert_eq!(
        env.content,
        "<body xmlns='jabber:client' xml:lang='en'>a &lt;b&gt; &amp; c</body>\
         <reactions xmlns='urn:xmpp:reactions:0' id='744f6e18'><reaction>\u{1F44D}</reaction>\
         <empty/></reactions>\
         <plain xmlns='' a='1' xmlns:ns0='urn:xmpp:reactions:0' ns0:b='2'/>"
    );
    assert_eq!(env.body().as_deref(), Some("a <b> & c"));
    // The canonical form is a fixed point.
    let again = Envelope::parse(&env.serialize()).unwrap();
    assert_eq!(again, env);
    assert_eq!(again.serialize(), env.serialize());
}

#[test]
fn unnamespaced_content_elements_keep_having_no_namespace() {
    let xml = "<e:envelope xmlns:e='urn:xmpp:sce:1'><e:content><foo><bar/></foo></e:content>\
               </e:envelope>";
    let env = Envelope::parse(xml).unwrap();
    assert_eq!(env.content, "<foo xmlns=''><bar/></foo>");
    let again = Envelope::parse(&env.serialize()).unwrap();
    assert_eq!(again.content, env.content);
}

#[test]
fn body_requires_the_client_namespace() {
    let env = Envelope {
        content: "<body xmlns='urn:example'>no</body><body xmlns='jabber:client'>yes</body>".into(),
        rpad: None,
        time: None,
        to: None,
        from: None,
    };
    assert_eq!(env.body().as_deref(), Some("yes"));
    let broken = Envelope {
        content: "<body xmlns='jabber:client'>".into(),
        ..env
    };
    assert_eq!(broken.body(), None);
}

#[test]
fn for_body_escapes_and_round_trips() {
    let text = "<script>&amp; 'quotes' \"double\" ]]> \r\n\ttab \u{1F600}";
    let env = Envelope::for_body(
        text,
        "juliet@capulet.lit",
        "romeo@montague.lit",
        Some("2004-01-25T05:05:00Z"),
        &mut test_rng(1),
    );
    assert!(
        env.content
            .starts_with("<body xmlns='jabber:client'>&lt;script&gt;&amp;amp;")
    );
    assert!(
        env.content.contains("&#xD;"),
        "CR survives line-end normalization"
    );
    assert_eq!(env.body().as_deref(), Some(text));
    assert_eq!(env.from.as_deref(), Some("juliet@capulet.lit"));
    assert_eq!(env.to.as_deref(), Some("romeo@montague.lit"));
    assert_eq!(env.time.as_deref(), Some("2004-01-25T05:05:00Z"));
    let back = Envelope::parse(&env.serialize()).unwrap();
    assert_eq!(back, env);
    assert_eq!(back.body().as_deref(), Some(text));
}

#[test]
fn characters_xml_cannot_carry_become_replacement_characters() {
    let env = Envelope::for_body(
        "a\u{0}b\u{1B}c\u{FFFE}",
        "a@b",
        "c@d",
        None,
        &mut test_rng(2),
    );
    assert_eq!(env.body().as_deref(), Some("a\u{FFFD}b\u{FFFD}c\u{FFFD}"));
    assert_eq!(Envelope::parse(&env.serialize()).unwrap(), env);
}

#[test]
fn empty_body() {
    let env = Envelope::for_body("", "a@b", "c@d", None, &mut test_rng(3));
    assert_eq!(env.content, "<body xmlns='jabber:client'/>");
    assert_eq!(env.body().as_deref(), Some(""));
    assert_eq!(Envelope::parse(&env.serialize()).unwrap(), env);
}

#[test]
fn padding_is_random_alphanumeric_of_length_0_to_200() {
    let mut lengths = Vec::new();
    for seed in 0..2000 {
        let pad = Envelope::random_padding(&mut test_rng(seed));
        assert!(pad.len() <= 200);
        assert!(pad.bytes().all(|b| b.is_ascii_alphanumeric()), "{pad}");
        lengths.push(pad.len());
    }
    let (min, max) = (lengths.iter().min().unwrap(), lengths.iter().max().unwrap());
    assert!(
        *min <= 5 && *max >= 195,
        "lengths should cover 0..=200: {min}..{max}"
    );
    let mean = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
    assert!((90.0..110.0).contains(&mean), "mean length {mean}");
    // Different draws, different padding.
    let a = Envelope::random_padding(&mut test_rng(10));
    let b = Envelope::random_padding(&mut test_rng(11));
    assert_ne!(a, b);
    // Every character of the alphabet shows up.
    let all: String = (0..200)
        .map(|s| Envelope::random_padding(&mut test_rng(s)))
        .collect();
    for c in ('a'..='z').chain('A'..='Z').chain('0'..='9') {
        assert!(all.contains(c), "{c} never drawn");
    }
}

#[test]
fn long_padding_is_accepted() {
    let pad = "x".repeat(10_000);
    let xml = format!("<envelope xmlns='urn:xmpp:sce:1'><content/><rpad>{pad}</rpad></envelope>");
    assert_eq!(Envelope::parse(&xml).unwrap().rpad, Some(pad));
}

#[test]
fn parse_bytes_requires_utf8() {
    let env = Envelope::for_body("hi", "a@b", "c@d", None, &mut test_rng(4));
    assert_eq!(
        Envelope::parse_bytes(env.serialize().as_bytes()).unwrap(),
        env
    );
    assert!(matches!(
        Envelope::parse_bytes(
            b"<envelope xmlns='urn:xmpp:sce:1'><content>\xff</content></envelope>"
        ),
        Err(StanzaError::Malformed(_))
    ));
}

#[test]
fn envelope_must_be_the_root() {
    let wrapped = format!("<message xmlns='jabber:client'>{}</message>", EXAMPLE);
    assert_eq!(
        Envelope::parse(&wrapped),
        Err(StanzaError::MissingElement("envelope"))
    );
    assert_eq!(
        Envelope::parse("<envelope xmlns='urn:xmpp:sce:0'><content/></envelope>"),
        Err(StanzaError::WrongNamespace {
            element: "envelope",
            found: Some("urn:xmpp:sce:0".into())
        })
    );
}
