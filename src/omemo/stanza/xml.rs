//! Shared reading and writing helpers.
//!
//! Reading goes through [`parse_document`], the single hardened entry point: it bounds the input
//! size, refuses DTDs (so no entity expansion beyond the five predefined ones), and bounds the
//! element depth, attributes per element, namespace prefixes in scope and node count, so that
//! any input parses in time linear in its size. Lookups match elements by expanded name
//! (namespace + local name), so prefixed and inherited namespace declarations parse alike.
//! Writing is a small escaping [`Writer`]: element and attribute names are ours, every value
//! passes through one escaper.

use base64ct::{Base64, Encoding};

use super::MAX_DEVICE_ID;
use super::error::{Limit, StanzaError};

#[cfg(test)]
mod differential;
mod scan;
mod tree;

pub(super) use tree::{Document, Node};

/// The namespace the `xml:` prefix is bound to.
pub(super) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Wrapper elements a bundle or device list may sit in: an IQ result or a PEP notification
/// (`<iq><pubsub><items><item>…`, `<message><event><items><item>…`) or a publish request.
pub(super) const PUBSUB_WRAPPERS: &[&str] = &[
    "iq", "message", "pubsub", "event", "items", "item", "publish",
];

/// Parses `xml` within the [`Limit`]s: size first, then (in one linear scan, before the tree is
/// built) depth, attributes per element and namespace prefixes in scope, then well-formedness
/// and the node count.
pub(super) fn parse_document(xml: &str) -> Result<Document<'_>, StanzaError> {
    if xml.len() > Limit::InputBytes.max() {
        return Err(StanzaError::TooLarge(Limit::InputBytes));
    }
    scan::check_structure(xml)?;
    Document::parse(xml)
}

/// One element a parser looks for, and what finding it means (usually a [`Version`]).
///
/// [`Version`]: crate::omemo::Version
pub(super) struct Wanted<T> {
    pub(super) name: &'static str,
    pub(super) namespace: &'static str,
    pub(super) tag: T,
}

/// Finds the wanted element: the root element itself, or the first one in document order whose
/// ancestors are all `wrappers` (matched by local name, in any namespace). Elements nested in
/// anything else (a forwarded or carbon-copied message, say) are not looked at.
///
/// If only a same-named element in another namespace is found, that is reported as
/// [`StanzaError::WrongNamespace`].
pub(super) fn find_element<'a, 'i, T: Copy>(
    doc: &'a Document<'i>,
    wanted: &[Wanted<T>],
    wrappers: &[&str],
) -> Result<(Node<'a, 'i>, T), StanzaError> {
    let mut wrong: Option<(&'static str, Option<String>)> = None;
    for node in doc.root_element().descendants() {
        if !node.is_element() {
            continue;
        }
        let name = node.name();
        if !wanted.iter().any(|w| w.name == name) {
            continue;
        }
        let wrapped = node.ancestors().all(|a| wrappers.contains(&a.name()));
        if !wrapped {
            continue;
        }
        let namespace = node.namespace();
        if let Some(hit) = wanted
            .iter()
            .find(|w| w.name == name && Some(w.namespace) == namespace)
        {
            return Ok((node, hit.tag));
        }
        if wrong.is_none() {
            let element = wanted
                .iter()
                .find(|w| w.name == name)
                .map_or("", |w| w.name);
            wrong = Some((element, namespace.map(str::to_owned)));
        }
    }
    match (wrong, wanted.first()) {
        (Some((element, found)), _) => Err(StanzaError::WrongNamespace { element, found }),
        (None, Some(first)) => Err(StanzaError::MissingElement(first.name)),
        (None, None) => Err(StanzaError::MissingElement("")),
    }
}

/// The child elements of `node` with this expanded name, in document order.
pub(super) fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    namespace: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.name() == name && c.namespace() == Some(namespace))
}

/// The child element with this expanded name, if any; more than one is an error.
pub(super) fn optional_child<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    namespace: &'a str,
    name: &'static str,
) -> Result<Option<Node<'a, 'i>>, StanzaError> {
    let mut found = children(node, namespace, name);
    let first = found.next();
    if found.next().is_some() {
        return Err(StanzaError::DuplicateElement(name));
    }
    Ok(first)
}

/// The one child element with this expanded name.
pub(super) fn required_child<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    namespace: &'a str,
    name: &'static str,
) -> Result<Node<'a, 'i>, StanzaError> {
    optional_child(node, namespace, name)?.ok_or(StanzaError::MissingElement(name))
}

/// The value of an unprefixed (no-namespace) attribute; a prefixed one (`o:sid`) is a
/// different attribute.
pub(super) fn optional_attribute<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.namespace.is_none() && a.name == name)
        .map(|a| a.value)
}

/// The value of a required unprefixed attribute.
pub(super) fn attribute<'a>(
    node: Node<'a, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str, StanzaError> {
    optional_attribute(node, attribute).ok_or(StanzaError::MissingAttribute { element, attribute })
}

/// A decimal `u32`: ASCII digits only (surrounding XML whitespace allowed, as for `xs:integer`).
pub(super) fn parse_u32(
    value: &str,
    element: &'static str,
    attribute: &'static str,
) -> Result<u32, StanzaError> {
    let digits = value.trim_matches(is_xml_space);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StanzaError::BadInteger { element, attribute });
    }
    digits
        .parse()
        .map_err(|_| StanzaError::BadInteger { element, attribute })
}

/// A device id: a decimal integer in `1..=`[`MAX_DEVICE_ID`], as XEP-0384 requires.
pub(super) fn parse_device_id(
    value: &str,
    element: &'static str,
    attribute: &'static str,
) -> Result<u32, StanzaError> {
    match parse_u32(value, element, attribute)? {
        id @ 1..=MAX_DEVICE_ID => Ok(id),
        _ => Err(StanzaError::BadInteger { element, attribute }),
    }
}

/// An `xs:boolean`: `true`, `1`, `false` or `0`.
pub(super) fn parse_bool(
    value: &str,
    element: &'static str,
    attribute: &'static str,
) -> Result<bool, StanzaError> {
    match value.trim_matches(is_xml_space) {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(StanzaError::BadBoolean { element, attribute }),
    }
}

/// The text of a text-only element (comments and processing instructions are skipped).
pub(super) fn text_content(
    node: Node<'_, '_>,
    element: &'static str,
) -> Result<String, StanzaError> {
    let mut text = String::new();
    for child in node.children() {
        if child.is_element() {
            return Err(StanzaError::UnexpectedChild { element });
        }
        if child.is_text() {
            text.push_str(child.text().unwrap_or_default());
        }
    }
    Ok(text)
}

/// The decoded base64 text of a text-only element.
pub(super) fn base64_content(
    node: Node<'_, '_>,
    element: &'static str,
) -> Result<Vec<u8>, StanzaError> {
    // One text child, as senders write it: decoded where it lies, not copied into a string
    // first (a payload's text was collected and grown by doubling, then collected again).
    let mut children = node.children();
    if let (Some(only), None) = (children.next(), children.next())
        && only.is_text()
    {
        return decode_base64(only.text().unwrap_or_default(), element);
    }
    decode_base64(&text_content(node, element)?, element)
}

/// Decodes padded standard base64, ignoring ASCII whitespace anywhere (line-wrapped or indented
/// text).
pub(super) fn decode_base64(text: &str, element: &'static str) -> Result<Vec<u8>, StanzaError> {
    let bad = |_| StanzaError::BadBase64 { element };
    // Most text has no whitespace: decoded as it is, without a copy.
    if !text.bytes().any(|byte| byte.is_ascii_whitespace()) {
        return Base64::decode_vec(text).map_err(bad);
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Base64::decode_vec(&compact).map_err(bad)
}

/// Padded standard base64.
pub(super) fn encode_base64(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Whether XML 1.0 can carry `c` at all (even as a character reference).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `text` escaped for element content (`attribute == false`) or for a quoted attribute
/// value. `\r` (and in attributes `\t` and `\n`) become character references so that they
/// survive line-end and attribute-value normalization; characters XML cannot carry at all
/// become U+FFFD.
///
/// Runs of bytes that need nothing (all of a base64 text) are copied with one `push_str`: a
/// character at a time was 10-16% of an encrypt's time, on the machine and the core alike.
fn push_escaped(out: &mut String, text: &str, attribute: bool) {
    let table = if attribute {
        &AS_IS_IN_ATTRIBUTE
    } else {
        &AS_IS_IN_CONTENT
    };
    let bytes = text.as_bytes();
    out.reserve(bytes.len());
    // `start`: the first byte not yet copied out; `at`: the next byte to look at. A byte
    // not copied as is is ASCII or 0xEF, a character's first byte: `at` stays on a boundary.
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        if table[usize::from(bytes[at])] {
            at += 1;
            continue;
        }
        out.push_str(&text[start..at]);
        let Some(c) = text[at..].chars().next() else {
            break;
        };
        at += c.len_utf8();
        start = at;
        push_escaped_char(out, c, attribute);
    }
    out.push_str(&text[start..]);
}

/// Appends `c` escaped as [`push_escaped`] escapes it.
fn push_escaped_char(out: &mut String, c: char, attribute: bool) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '\r' => out.push_str("&#xD;"),
        '\'' if attribute => out.push_str("&apos;"),
        '"' if attribute => out.push_str("&quot;"),
        '\t' if attribute => out.push_str("&#x9;"),
        '\n' if attribute => out.push_str("&#xA;"),
        c if is_xml_char(c) => out.push(c),
        _ => out.push('\u{FFFD}'),
    }
}

/// Bytes [`push_escaped`] copies as they are in element content: every byte but the markup
/// characters, control characters other than tab and line feed, and 0xEF (the first byte of
/// U+FFFE and U+FFFF, which XML cannot carry; looked at as a character). Surrogates cannot
/// be in a `str`.
const AS_IS_IN_CONTENT: [bool; 256] = as_is(b"&<>\r\xef");
/// As [`AS_IS_IN_CONTENT`], in a quoted attribute value: quotes, tab and line feed escaped too.
const AS_IS_IN_ATTRIBUTE: [bool; 256] = as_is(b"&<>\r\xef'\"\t\n");

const fn as_is(escaped: &[u8]) -> [bool; 256] {
    let mut table = [true; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = byte == 0x09 || byte == 0x0a;
        byte += 1;
    }
    let mut i = 0;
    while i < escaped.len() {
        table[escaped[i] as usize] = false;
        i += 1;
    }
    table
}

/// An append-only XML writer. Names are written as given (callers pass constants or names that
/// came out of a parsed document); attribute values and text are escaped. Attributes use single
/// quotes, as XMPP examples do.
#[derive(Default)]
pub(super) struct Writer {
    out: String,
}

impl Writer {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// `<name`: follow with [`Writer::attr`] calls and one of [`Writer::end_start`] or
    /// [`Writer::end_empty`].
    pub(super) fn start_tag(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
    }

    pub(super) fn attr(&mut self, name: &str, value: &str) {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("='");
        push_escaped(&mut self.out, value, true);
        self.out.push('\'');
    }

    pub(super) fn end_start(&mut self) {
        self.out.push('>');
    }

    pub(super) fn end_empty(&mut self) {
        self.out.push_str("/>");
    }

    /// `<name a='v' …>`
    pub(super) fn open(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.start_tag(name);
        for (key, value) in attributes {
            self.attr(key, value);
        }
        self.end_start();
    }

    /// `<name a='v' …/>`
    pub(super) fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.start_tag(name);
        for (key, value) in attributes {
            self.attr(key, value);
        }
        self.end_empty();
    }

    /// `</name>`
    pub(super) fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub(super) fn text(&mut self, text: &str) {
        push_escaped(&mut self.out, text, false);
    }

    /// Already-serialized XML, written verbatim.
    pub(super) fn raw(&mut self, xml: &str) {
        self.out.push_str(xml);
    }

    /// A text-only element; the empty-element form when `text` is empty, so that parsing and
    /// re-writing give the same bytes.
    pub(super) fn leaf(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) {
        if text.is_empty() {
            self.empty(name, attributes);
        } else {
            self.open(name, attributes);
            self.text(text);
            self.close(name);
        }
    }

    pub(super) fn finish(self) -> String {
        self.out
    }
}

/// Where `needle` (a short ASCII delimiter such as `-->`) first occurs in `text`: a byte search
/// for its first byte (core's `memchr`), then a comparison. `str::find` with a string pattern
/// brings core's two-way searcher, 2.4 KB of the `.wasm` package, for delimiters of 2-3 bytes.
pub(super) fn find_delimiter(text: &str, needle: &str) -> Option<usize> {
    let first = char::from(*needle.as_bytes().first()?);
    let mut from = 0;
    loop {
        // `first` is ASCII, so `at + 1` is always a character boundary.
        let at = from + text.get(from..)?.find(first)?;
        if text.as_bytes().get(at..)?.starts_with(needle.as_bytes()) {
            return Some(at);
        }
        from = at + 1;
    }
}

/// Records `id` in `seen` (kept sorted) and says whether it is new. A sorted `Vec` rather than
/// a `HashSet`: ids are at most [`Limit::Devices`]/[`Limit::PreKeys`] (1,000) and usually
/// arrive ascending (an insert at the end), and each hash set type brings its own copy of the
/// table code to the `.wasm` package.
pub(super) fn first_sighting(seen: &mut Vec<u32>, id: u32) -> bool {
    match seen.binary_search(&id) {
        Ok(_) => false,
        Err(at) => {
            seen.insert(at, id);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escaped a character at a time, as [`push_escaped`] did before it copied runs.
    fn escaped_by_chars(text: &str, attribute: bool) -> String {
        let mut out = String::new();
        for c in text.chars() {
            push_escaped_char(&mut out, c, attribute);
        }
        out
    }

    /// Every ASCII character, characters of every UTF-8 length, those around U+FFFE (0xEF
    /// first bytes, some XML characters, some not), at every place in short texts.
    #[test]
    fn escapes_runs_as_character_by_character() {
        let specials: Vec<char> = (0u8..0x80)
            .map(char::from)
            .chain([
                'é', '日', '\u{EFFF}', '\u{F000}', '\u{FFFD}', '\u{FFFE}', '\u{FFFF}',
            ])
            .chain(['\u{1D11E}', '\u{10FFFF}'])
            .collect();
        for len in 0..6 {
            for at in 0..len.max(1) {
                for &special in &specials {
                    let text: String = (0..len)
                        .map(|i| if i == at { special } else { 'a' })
                        .collect();
                    for attribute in [false, true] {
                        let mut ours = String::from("x");
                        push_escaped(&mut ours, &text, attribute);
                        let expected = format!("x{}", escaped_by_chars(&text, attribute));
                        assert_eq!(ours, expected, "{text:?} {attribute}");
                    }
                }
            }
        }
        let base64 = "MTIzNDU2Nzg5MGFiY2RlZg+/=";
        let mut ours = String::new();
        push_escaped(&mut ours, base64, false);
        assert_eq!(ours, base64);
    }
}
