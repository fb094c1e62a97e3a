//! Our reader against roxmltree (configured as the stanza layer used it: no DTD, the node
//! limit): on many generated and mutated documents both must make the same accept/refuse
//! decision (the same [`Limit`] when the node limit is hit) and, on accepted ones, read the same
//! tree of expanded names, attributes and text.
//!
//! Known, deliberate differences (checked, not skipped blindly): roxmltree accepts a repeated
//! `xmlns` on one element and turns a character reference to a surrogate or past U+10FFFF into U+FFFD; we refuse
//! both (not well-formed XML); roxmltree reads any attribute named `p:xmlns` as a default
//! namespace declaration, we as an attribute whose prefix must be declared. And roxmltree leaves a raw `\r` as it is when a reference follows
//! it (`a\r&amp;`) or when it follows a reference at the end of a text; we turn every raw line
//! end into `\n`, as XML requires, so on inputs with a raw `\r` the views are compared with `\r`
//! read as `\n`.

use std::fmt::Write as _;

use super::tree::{Document, Node};
use crate::omemo::stanza::error::{Limit, StanzaError};

/// One view of a parsed document, the same shape for both parsers.
fn view_ours(node: Node<'_, '_>, out: &mut String) {
    if let Some(text) = node.text() {
        let _ = write!(out, "T{text:?}");
        return;
    }
    let _ = write!(out, "E{{{:?}}}{:?}[", node.namespace(), node.name());
    for a in node.attributes() {
        let _ = write!(out, "{:?}:{:?}={:?};", a.namespace, a.name, a.value);
    }
    out.push('(');
    for child in node.children() {
        view_ours(child, out);
    }
    out.push_str(")]");
}

fn view_theirs(node: roxmltree::Node<'_, '_>, out: &mut String) {
    if node.is_text() {
        let _ = write!(out, "T{:?}", node.text().unwrap_or_default());
        return;
    }
    let name = node.tag_name();
    let _ = write!(out, "E{{{:?}}}{:?}[", name.namespace(), name.name());
    for a in node.attributes() {
        let _ = write!(out, "{:?}:{:?}={:?};", a.namespace(), a.name(), a.value());
    }
    out.push('(');
    for child in node.children().filter(|c| c.is_element() || c.is_text()) {
        view_theirs(child, out);
    }
    out.push_str(")]");
}

/// `Ok(view)`, or `Err(Some(limit))` / `Err(None)` (malformed).
fn ours(xml: &str) -> Result<String, Option<Limit>> {
    match Document::parse(xml) {
        Ok(doc) => {
            let mut out = String::new();
            view_ours(doc.root_element(), &mut out);
            Ok(out)
        }
        Err(StanzaError::TooLarge(limit)) => Err(Some(limit)),
        Err(_) => Err(None),
    }
}

fn theirs(xml: &str) -> Result<String, Option<Limit>> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(Limit::Nodes.max()).unwrap_or(u32::MAX),
        ..roxmltree::ParsingOptions::default()
    };
    match roxmltree::Document::parse_with_options(xml, options) {
        Ok(doc) => {
            let mut out = String::new();
            view_theirs(doc.root_element(), &mut out);
            Ok(out)
        }
        Err(roxmltree::Error::NodesLimitReached) => Err(Some(Limit::Nodes)),
        Err(_) => Err(None),
    }
}

/// Whether `xml` holds one of the documented differences.
fn known_difference(xml: &str) -> bool {
    let non_char_reference = xml.split("&#").skip(1).any(|r| {
        let digits = r.split(';').next().unwrap_or_default();
        let value = match digits.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => digits.parse(),
        };
        value.is_ok_and(|v| char::from_u32(v).is_none())
    });
    let repeated_default = xml.split('<').any(|tag| {
        let tag = tag.split('>').next().unwrap_or_default();
        tag.matches("xmlns=").count() + tag.matches("xmlns =").count() > 1
    });
    let prefixed_xmlns = xml.match_indices(":xmlns").any(|(i, _)| {
        let before = &xml[..i];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || "-_.\u{B7}".contains(c)))
            .map_or(0, |p| {
                p + before[p..].chars().next().map_or(1, char::len_utf8)
            });
        &before[start..] != "xmlns"
    });
    non_char_reference || repeated_default || prefixed_xmlns
}

const SEEDS: &[&str] = &[
    "<a/>",
    "<?xml version='1.0' encoding='UTF-8'?>\n<a xmlns='urn:x'>t</a>\n",
    "\u{FEFF}<?xml version=\"1.0\" standalone='yes' ?><a/>",
    "<!-- c --><?pi data?><a><!--x--><?p?></a><!-- after --> ",
    "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='27183'><keys jid='juliet@capulet.lit'>\
     <key rid='31415' kex='true'>Zm9v</key><key rid='12321'>YmFy</key></keys></header>\
     <payload>cGF5bG9hZA==</payload></encrypted>",
    "<message xmlns='jabber:client' to='a@b'><encrypted xmlns='eu.siacs.conversations.axolotl'>\
     <header sid='1'><key prekey='1' rid='2'>\n  Zm9v\n  </key><iv>aXY=</iv></header>\
     <payload>cA==</payload></encrypted><store xmlns='urn:xmpp:hints'/></message>",
    "<iq type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>\
     <item id='current'><bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>c3Br</spk><spks>c2ln</spks>\
     <ik>aWs=</ik><prekeys><pk id='1'>cGsx</pk><pk id='2'>cGsy</pk></prekeys></bundle></item>\
     </items></pubsub></iq>",
    "<devices xmlns='urn:xmpp:omemo:2'><device id='1' label='Gajim &amp; co' labelsig='c2ln'/>\
     <device id='2'/></devices>",
    "<o:list xmlns:o='eu.siacs.conversations.axolotl'><o:device id='7'/></o:list>",
    "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>Hi &lt;3 &#x1F600;\
     &#65;&quot;&apos;&gt;</body></content><rpad>abc</rpad><time stamp='2026-12-06T20:00:00Z'/>\
     <to jid='b@x'/><from jid='a@x'/></envelope>",
    "<a xmlns:p='urn:p' xmlns:q='urn:p' p:x='1' y='2' xml:lang='en'><p:b q:z='3'/><c xmlns=''/></a>",
    "<a xmlns='urn:1'><b xmlns='urn:2'><c/></b><d xmlns:e='urn:e'><e:f e:g='h'/></d></a>",
    "<a>x<![CDATA[<not> & markup]]>y<!--c-->z<![CDATA[]]></a>",
    "<a b=\"tab\there\nline &#9;&#10;&#13; &#x20;\" c=' &lt;&amp; '>line\nend\ttab</a>",
    "<a>\r\n crlf \r lone</a>",
    "<a:b xmlns:a='urn:a'>text</a:b >",
    "<a><b><c><d><e>deep</e></d></c></b></a>",
    "<a>&#0;</a>",
    "<a>&#xFFFE;</a>",
    "<a>&unknown;</a>",
    "<!DOCTYPE a><a/>",
    "<a xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:space='preserve'/>",
    "<a xmlns:xmlns='urn:x'/>",
    "<a b='1' b='2'/>",
    "<a xmlns:p='urn:p' xmlns:q='urn:p' p:b='1' q:b='2'/>",
    "<a><b></a></b>",
    "<a>]]></a>",
    "<a/><b/>",
    "text<a/>",
    "<a>é 中 \u{10000}</a>",
    "<?xml version='1.0'?><?xml-stylesheet href='x'?><a/>",
];

/// Snippets mutations insert: markup pieces, references, namespace syntax, odd characters.
const PIECES: &[&str] = &[
    "<",
    ">",
    "&",
    ";",
    "'",
    "\"",
    "=",
    "/",
    ":",
    " ",
    "!",
    "?",
    "-",
    "]",
    "[",
    "#",
    "x",
    "\n",
    "\t",
    "&amp;",
    "&#0;",
    "&#x41;",
    "&#65;",
    "&#xD800;",
    "&lt",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?",
    "?>",
    " xmlns='urn:m'",
    " xmlns:p='urn:p'",
    " xmlns=''",
    " p:",
    "xml:",
    " xml:lang='x'",
    "p:",
    "<b/>",
    "</b>",
    "<b>",
    "é",
    "\u{FFFE}",
    "\u{1}",
    "\u{B7}",
    "<!DOCTYPE",
    " a='1'",
    " a=\"2\"",
    "<?xml version='1.0'?>",
];

/// A small deterministic generator (xorshift64*), enough to spread mutations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(x >> 33).unwrap_or(0) % n.max(1)
    }

    /// A char boundary of `s`, uniformly over bytes then moved back.
    fn boundary(&mut self, s: &str) -> usize {
        let mut at = self.below(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        at
    }
}

fn mutate(rng: &mut Rng, doc: &str) -> String {
    let mut s = doc.to_owned();
    for _ in 0..=rng.below(3) {
        let at = rng.boundary(&s);
        match rng.below(5) {
            0 | 1 => s.insert_str(at, PIECES[rng.below(PIECES.len())]),
            2 => {
                let end = rng.boundary(&s).max(at);
                let end = end.min(at + 4);
                let end = (end..=s.len())
                    .find(|&e| s.is_char_boundary(e))
                    .unwrap_or(at);
                s.replace_range(at..end, "");
            }
            3 => s.truncate(at),
            _ => {
                let end = rng.boundary(&s).max(at);
                let copy = s[at..end].to_owned();
                s.insert_str(end, &copy);
            }
        }
    }
    s
}

/// A random well-formed document: nested elements with prefixed and default namespaces
/// (declared, inherited, redeclared, undeclared with `xmlns=''`), attributes quoted either way
/// with references and whitespace, text with references, CDATA, comments and processing
/// instructions. Nesting is written with an explicit stack.
fn generate(rng: &mut Rng) -> String {
    const NAMES: &[&str] = &["a", "key", "é", "x.y", "_z", "b-2", "中"];
    const URIS: &[&str] = &[
        "urn:a",
        "urn:b",
        "",
        "eu.siacs.conversations.axolotl",
        "u&amp;v",
    ];
    const TEXTS: &[&str] = &[
        "t",
        " ",
        "\n  ",
        "&amp;",
        "&lt;&gt;",
        "&#x1F600;",
        "&#65;",
        "&quot;&apos;",
        "a>b",
        "<![CDATA[<&>]]>",
        "<!--c-->",
        "<?pi x?>",
        "\t",
        "é",
    ];
    let mut out = String::new();
    if rng.below(3) == 0 {
        out.push_str("<?xml version='1.0'?>\n<!--head-->");
    }
    let mut open: Vec<String> = Vec::new();
    let mut prefixes: Vec<usize> = vec![0];
    let mut elements = 0;
    loop {
        let depth = open.len();
        let choice = if depth == 0 { 0 } else { rng.below(6) };
        if (choice == 0 && elements < 30 && depth < 8) || elements == 0 {
            elements += 1;
            let declared = prefixes.last().copied().unwrap_or(0) + rng.below(2);
            let prefix = match rng.below(3) {
                0 if declared > 0 => format!("p{}:", rng.below(declared)),
                _ => String::new(),
            };
            let name = format!("{prefix}{}", NAMES[rng.below(NAMES.len())]);
            out.push('<');
            out.push_str(&name);
            if declared > prefixes.last().copied().unwrap_or(0) {
                let _ = write!(out, " xmlns:p{}='{}'", declared - 1, URIS[rng.below(2)]);
            }
            for i in 0..rng.below(4) {
                let (q, v) = [("'", "v &amp; w"), ("\"", "&#9;tab\nline"), ("'", "")][rng.below(3)];
                let _ = write!(out, " n{i}={q}{v}{q}");
            }
            if rng.below(3) == 0 {
                let _ = write!(out, " xmlns='{}'", URIS[rng.below(URIS.len())]);
            }
            if declared > 0 && rng.below(3) == 0 {
                let _ = write!(out, " p{}:n=\"q\"", rng.below(declared));
            }
            if rng.below(4) == 0 {
                out.push_str("/>");
            } else {
                out.push('>');
                open.push(name);
                prefixes.push(declared);
            }
        } else if choice <= 2 {
            out.push_str(TEXTS[rng.below(TEXTS.len())]);
        } else if let Some(name) = open.pop() {
            prefixes.pop();
            let _ = write!(out, "</{name}>");
        }
        if open.is_empty() && elements > 0 {
            break;
        }
    }
    out
}

fn compare(xml: &str, accepted: &mut usize) {
    let (mut a, mut b) = (ours(xml), theirs(xml));
    if a.is_err() && b.is_ok() && known_difference(xml) {
        return;
    }
    if xml.contains('\r') {
        let crlf = |v: String| v.replace("\\r", "\\n");
        (a, b) = (a.map(crlf), b.map(crlf));
    }
    assert_eq!(a, b, "on {xml:?}");
    *accepted += usize::from(a.is_ok());
}

#[test]
fn our_reader_reads_what_roxmltree_reads() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let (mut total, mut accepted) = (0, 0);
    for seed in SEEDS {
        compare(seed, &mut accepted);
        total += 1;
        for cut in (0..seed.len()).filter(|&i| seed.is_char_boundary(i)) {
            compare(&seed[..cut], &mut accepted);
            total += 1;
        }
        for _ in 0..600 {
            let once = mutate(&mut rng, seed);
            compare(&once, &mut accepted);
            compare(&mutate(&mut rng, &once), &mut accepted);
            total += 2;
        }
    }
    for _ in 0..3000 {
        let doc = generate(&mut rng);
        assert!(
            ours(&doc).is_ok(),
            "a generated document is refused: {doc:?}"
        );
        compare(&doc, &mut accepted);
        compare(&mutate(&mut rng, &doc), &mut accepted);
        total += 2;
    }
    // Spliced seeds: one document's piece inside another's.
    for _ in 0..3000 {
        let a = SEEDS[rng.below(SEEDS.len())];
        let b = SEEDS[rng.below(SEEDS.len())];
        let (i, j, k) = (rng.boundary(a), rng.boundary(b), rng.boundary(b));
        let spliced = format!("{}{}{}", &a[..i], &b[j.min(k)..j.max(k)], &a[i..]);
        compare(&spliced, &mut accepted);
        total += 1;
    }
    println!(
        "differential: {accepted} of {total} documents accepted by both, the rest refused by both"
    );
    assert!(
        accepted > total / 8,
        "too few accepted documents: {accepted} of {total}"
    );
}

#[test]
fn the_node_limit_is_counted_alike() {
    let max = Limit::Nodes.max();
    for n in [max - 3, max - 2, max - 1, max] {
        let elements = format!("<a>{}</a>", "<b/>".repeat(n));
        let mixed = format!("<a>{}</a>", "t<!--c-->".repeat(n / 2));
        let runs = format!("<a>{}</a>", "t<![CDATA[u]]><?p?>".repeat(n / 2));
        for xml in [elements, mixed, runs] {
            assert_eq!(ours(&xml), theirs(&xml), "{n}");
        }
    }
}
