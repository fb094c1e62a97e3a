//! The reader behind [`Document::parse`]: one pass over the text, left to right, appending to
//! the document's arena. Nothing recurses; the pre-scan has already bounded depth, attributes
//! and prefixes in scope, and the node count is bounded here.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{AttributeData, Document, Kind, NONE, NodeData};
use crate::omemo::stanza::error::{Limit, StanzaError};
use crate::omemo::stanza::xml::{XML_NS, find_delimiter};

/// The namespace `xmlns` attributes are in, which nothing may be bound to.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// The namespace id of [`XML_NS`], bound to the `xml` prefix.
const XML_NS_ID: u32 = 0;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Characters XML 1.0 allows in a document (surrogates cannot occur in a `str`).
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\0'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

fn is_name_start(c: char) -> bool {
    matches!(c, 'A'..='Z' | 'a'..='z' | ':' | '_'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// An open element: its node and how far to unwind the namespace bindings when it closes.
struct Open {
    id: u32,
    undo_mark: usize,
}

/// A namespace declaration read from a start tag, not yet applied.
struct Declaration<'i> {
    prefix: Option<&'i str>,
    uri: Cow<'i, str>,
}

pub(super) struct Reader<'i> {
    text: &'i str,
    pos: usize,
    doc: Document<'i>,
    /// Nodes counted against [`Limit::Nodes`]: the document node, elements, text runs,
    /// comments and processing instructions (kept or not).
    counted: usize,
    /// Whether the last thing read was text, so that more text joins its run.
    in_text: bool,
    open: Vec<Open>,
    /// The namespace bound to each prefix in scope (`None`: the default namespace).
    bindings: Vec<(Option<&'i str>, u32)>,
    /// How to undo each rebinding: the slot and its previous value, `None` if the slot was new.
    undo: Vec<(usize, Option<u32>)>,
    /// foldhash with a per-process random seed: cheap to set up for a small stanza, and keyed
    /// so that chosen namespace names cannot collide on purpose.
    interned: HashMap<Cow<'i, str>, u32, foldhash::fast::RandomState>,
    declarations: Vec<Declaration<'i>>,
    pending: Vec<(&'i str, &'i str, Cow<'i, str>)>,
}

impl<'i> Reader<'i> {
    pub(super) fn new(text: &'i str) -> Self {
        let xml: Cow<'i, str> = Cow::Borrowed(XML_NS);
        let mut interned = HashMap::default();
        interned.insert(xml.clone(), XML_NS_ID);
        Reader {
            text,
            pos: 0,
            doc: Document {
                nodes: Vec::with_capacity(text.bytes().filter(|&b| b == b'<').count()),
                attributes: Vec::new(),
                namespaces: vec![xml],
            },
            counted: 1,
            in_text: false,
            open: Vec::new(),
            bindings: Vec::new(),
            undo: Vec::new(),
            interned,
            declarations: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub(super) fn run(mut self) -> Result<Document<'i>, StanzaError> {
        if self.rest().starts_with('\u{FEFF}') {
            self.pos += '\u{FEFF}'.len_utf8();
        }
        if self.rest().starts_with("<?xml ") {
            self.declaration()?;
        }
        self.misc()?;
        if self.rest().starts_with("<!DOCTYPE") {
            return Err(self.malformed("a DTD, which is not accepted"));
        }
        if self.rest().starts_with('<') {
            self.start_tag()?;
            self.content()?;
        }
        self.misc()?;
        if self.pos < self.text.len() {
            return Err(self.malformed("content after the root element, or outside any element"));
        }
        if self.doc.nodes.is_empty() {
            return Err(self.malformed("no root element"));
        }
        if !self.open.is_empty() {
            return Err(self.malformed("an unclosed element"));
        }
        Ok(self.doc)
    }

    fn rest(&self) -> &'i str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn malformed(&self, what: &str) -> StanzaError {
        StanzaError::Malformed(format!("{what} at byte {}", self.pos))
    }

    fn expect(&mut self, token: &str) -> Result<(), StanzaError> {
        if !self.rest().starts_with(token) {
            return Err(self.malformed(&format!("no `{token}`")));
        }
        self.pos += token.len();
        Ok(())
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// Moves to the first `end` (checking the characters passed) and returns what lay before it;
    /// `end` is consumed too.
    fn until(&mut self, end: &str, what: &str) -> Result<&'i str, StanzaError> {
        let rest = self.rest();
        let Some(len) = find_delimiter(rest, end) else {
            return Err(self.malformed(&format!("an unterminated {what}")));
        };
        let body = rest.get(..len).unwrap_or_default();
        self.check_chars(body)?;
        self.pos += len + end.len();
        Ok(body)
    }

    fn check_chars(&self, text: &str) -> Result<(), StanzaError> {
        // Byte-wise: the controls are single bytes, U+FFFE and U+FFFF are EF BF BE and EF BF BF.
        let bytes = text.as_bytes();
        let bad = bytes.iter().enumerate().any(|(i, &b)| {
            (b < 0x20 && !is_space(b))
                || (b == 0xEF
                    && bytes.get(i + 1) == Some(&0xBF)
                    && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)))
        });
        if bad {
            return Err(self.malformed("a character XML does not allow"));
        }
        Ok(())
    }

    fn count_node(&mut self) -> Result<(), StanzaError> {
        if self.counted >= Limit::Nodes.max() {
            return Err(StanzaError::TooLarge(Limit::Nodes));
        }
        self.counted += 1;
        Ok(())
    }

    /// `<?xml version=… encoding=… standalone=…?>`; the values are not interpreted (the text is
    /// already UTF-8).
    fn declaration(&mut self) -> Result<(), StanzaError> {
        self.pos += "<?xml".len();
        self.declaration_space()?;
        if !self.rest().starts_with("version") {
            return Err(self.malformed("an XML declaration without a version"));
        }
        self.pseudo_attribute()?;
        self.declaration_space()?;
        if self.rest().starts_with("encoding") {
            self.pseudo_attribute()?;
            self.declaration_space()?;
        }
        if self.rest().starts_with("standalone") {
            self.pseudo_attribute()?;
        }
        self.skip_spaces();
        self.expect("?>")
    }

    fn declaration_space(&mut self) -> Result<(), StanzaError> {
        if self.peek().is_some_and(is_space) {
            self.skip_spaces();
        } else if self.peek().is_some() && !self.rest().starts_with("?>") {
            return Err(self.malformed("no space in the XML declaration"));
        }
        Ok(())
    }

    fn pseudo_attribute(&mut self) -> Result<(), StanzaError> {
        self.qname()?;
        self.equals()?;
        self.quoted_value()?;
        Ok(())
    }

    /// Comments, processing instructions and whitespace outside the root element.
    fn misc(&mut self) -> Result<(), StanzaError> {
        loop {
            self.skip_spaces();
            if self.rest().starts_with("<!--") {
                self.comment()?;
            } else if self.rest().starts_with("<?") {
                self.processing_instruction()?;
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), StanzaError> {
        self.pos += "<!--".len();
        let body = self.until("-->", "comment")?;
        if find_delimiter(body, "--").is_some() || body.ends_with('-') {
            return Err(self.malformed("`--` inside a comment"));
        }
        self.in_text = false;
        self.count_node()
    }

    fn processing_instruction(&mut self) -> Result<(), StanzaError> {
        if self.rest().starts_with("<?xml ") {
            return Err(self.malformed("an XML declaration not at the start"));
        }
        self.pos += "<?".len();
        if self.name().is_empty() {
            return Err(self.malformed("a processing instruction without a target"));
        }
        self.skip_spaces();
        self.until("?>", "processing instruction")?;
        self.in_text = false;
        self.count_node()
    }

    /// A name (possibly empty): a name-start character, then name characters.
    fn name(&mut self) -> &'i str {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        let len = match chars.next() {
            Some((_, c)) if is_name_start(c) => chars
                .find(|&(_, c)| !is_name_char(c))
                .map_or(rest.len(), |(i, _)| i),
            _ => 0,
        };
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }

    /// A qualified name: `(prefix, local)`, the prefix `""` when there is none.
    fn qname(&mut self) -> Result<(&'i str, &'i str), StanzaError> {
        let rest = self.rest();
        let len = name_len(rest);
        let name = rest.get(..len).unwrap_or_default();
        let (prefix, local) = match name.split_once(':') {
            Some((prefix, local)) => (prefix, local),
            None => ("", name),
        };
        let starts = |s: &str| match s.as_bytes().first() {
            Some(&b) if b < 0x80 => b.is_ascii_alphabetic() || b == b'_',
            Some(_) => s.chars().next().is_some_and(is_name_start),
            None => false,
        };
        if local.contains(':') || !starts(local) || !(prefix.is_empty() || starts(prefix)) {
            return Err(self.malformed("an invalid name"));
        }
        self.pos += len;
        Ok((prefix, local))
    }

    fn equals(&mut self) -> Result<(), StanzaError> {
        self.skip_spaces();
        self.expect("=")?;
        self.skip_spaces();
        Ok(())
    }

    /// A quoted attribute value, raw (`<` is refused).
    fn quoted_value(&mut self) -> Result<&'i str, StanzaError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.malformed("an unquoted attribute value")),
        };
        self.pos += 1;
        let rest = self.rest();
        let run = Run::read(rest.as_bytes(), |b| b == quote || b == b'<');
        if run.len == rest.len() {
            return Err(self.malformed("an unterminated attribute value"));
        }
        let value = rest.get(..run.len).unwrap_or_default();
        if run.unusual {
            self.check_chars(value)?;
        }
        self.pos += run.len;
        if self.peek() != Some(quote) {
            return Err(self.malformed("`<` in an attribute value"));
        }
        self.pos += 1;
        Ok(value)
    }

    /// Element content up to the root element's end tag; markup nests through `self.open`, not
    /// through recursion.
    fn content(&mut self) -> Result<(), StanzaError> {
        while !self.open.is_empty() {
            let rest = self.rest();
            match rest.as_bytes() {
                [] => return Ok(()),
                [b'<', b'/', ..] => self.end_tag()?,
                [b'<', b'!', ..] if rest.starts_with("<!--") => self.comment()?,
                [b'<', b'!', ..] if rest.starts_with("<![CDATA[") => {
                    self.pos += "<![CDATA[".len();
                    let body = self.until("]]>", "CDATA section")?;
                    self.push_text(normalize_line_ends(body))?;
                }
                [b'<', b'!', ..] => {
                    return Err(self.malformed("a declaration inside an element"));
                }
                [b'<', b'?', ..] => self.processing_instruction()?,
                [b'<', ..] => self.start_tag()?,
                _ => self.char_data()?,
            }
        }
        Ok(())
    }

    fn char_data(&mut self) -> Result<(), StanzaError> {
        let rest = self.rest();
        let run = Run::read(rest.as_bytes(), |b| b == b'<');
        let raw = rest.get(..run.len).unwrap_or_default();
        if run.unusual {
            self.check_chars(raw)?;
            if find_delimiter(raw, "]]>").is_some() {
                return Err(self.malformed("`]]>` in text"));
            }
        }
        let len = run.len;
        let text = if run.references || (run.unusual && raw.contains('\r')) {
            Cow::Owned(self.expand(raw, false)?)
        } else {
            Cow::Borrowed(raw)
        };
        self.pos += len;
        self.push_text(text)
    }

    /// Replaces references and normalizes line ends (text) or whitespace (attribute values).
    /// Characters from references are kept as they are.
    fn expand(&self, raw: &str, attribute: bool) -> Result<String, StanzaError> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find(['&', '\r', '\n', '\t']) {
            let (before, tail) = rest.split_at(at);
            out.push_str(before);
            let mut chars = tail.chars();
            rest = match chars.next() {
                Some('&') => {
                    let (c, after) = self.reference(chars.as_str())?;
                    out.push(c);
                    after
                }
                Some('\r') => {
                    out.push(if attribute { ' ' } else { '\n' });
                    tail.strip_prefix("\r\n").unwrap_or(chars.as_str())
                }
                Some(c) => {
                    out.push(if attribute { ' ' } else { c });
                    chars.as_str()
                }
                None => "",
            };
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Reads a reference after its `&`: the character and what follows the `;`.
    fn reference<'s>(&self, after_amp: &'s str) -> Result<(char, &'s str), StanzaError> {
        let bad = || self.malformed("an unknown or malformed reference");
        let (name, rest) = after_amp.split_once(';').ok_or_else(bad)?;
        let c = if let Some(number) = name.strip_prefix('#') {
            let (digits, radix) = match number.strip_prefix('x') {
                Some(hex) => (hex, 16),
                None => (number, 10),
            };
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return Err(bad());
            }
            u32::from_str_radix(digits, radix)
                .ok()
                .and_then(char::from_u32)
                .filter(|&c| is_xml_char(c))
                .ok_or_else(bad)?
        } else {
            match name {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "apos" => '\'',
                "quot" => '"',
                _ => return Err(bad()),
            }
        };
        Ok((c, rest))
    }

    fn push_text(&mut self, text: Cow<'i, str>) -> Result<(), StanzaError> {
        if self.in_text
            && let Some(NodeData {
                kind: Kind::Text(run),
                ..
            }) = self.doc.nodes.last_mut()
        {
            run.to_mut().push_str(&text);
            return Ok(());
        }
        self.in_text = true;
        self.push_node(Kind::Text(text))?;
        Ok(())
    }

    /// Appends a node as the last child of the innermost open element.
    fn push_node(&mut self, kind: Kind<'i>) -> Result<u32, StanzaError> {
        self.count_node()?;
        let id =
            u32::try_from(self.doc.nodes.len()).map_err(|_| StanzaError::TooLarge(Limit::Nodes))?;
        let parent = self.open.last().map_or(NONE, |o| o.id);
        if let Some(p) = self.doc.nodes.get_mut(parent as usize) {
            let previous = p.last_child;
            p.last_child = id;
            if previous == NONE {
                p.first_child = id;
            } else if let Some(prev) = self.doc.nodes.get_mut(previous as usize) {
                prev.next_sibling = id;
            }
        } else if !self.doc.nodes.is_empty() {
            return Err(self.malformed("a second root element"));
        }
        self.doc.nodes.push(NodeData {
            parent,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            end: id + 1,
            kind,
        });
        Ok(id)
    }

    fn start_tag(&mut self) -> Result<(), StanzaError> {
        self.pos += 1;
        let (prefix, local) = self.qname()?;
        if prefix == "xmlns" {
            return Err(self.malformed("an element with the prefix `xmlns`"));
        }
        self.declarations.clear();
        self.pending.clear();
        let empty = loop {
            let spaced = self.peek().is_some_and(is_space);
            self.skip_spaces();
            match self.peek() {
                None => return Err(self.malformed("an unterminated start tag")),
                Some(b'/') => {
                    self.pos += 1;
                    self.expect(">")?;
                    break true;
                }
                Some(b'>') => {
                    self.pos += 1;
                    break false;
                }
                Some(_) if !spaced => return Err(self.malformed("no space before an attribute")),
                Some(_) => self.attribute()?,
            }
        };
        self.in_text = false;
        let undo_mark = self.undo.len();
        self.bind_declarations()?;
        let namespace = self.resolve(prefix)?;
        let attributes = self.resolve_attributes()?;
        let id = self.push_node(Kind::Element {
            local,
            prefix,
            namespace,
            attributes,
        })?;
        self.open.push(Open { id, undo_mark });
        if empty {
            self.close_innermost();
        }
        Ok(())
    }

    /// Reads one attribute; namespace declarations are checked and set aside.
    fn attribute(&mut self) -> Result<(), StanzaError> {
        let (prefix, local) = self.qname()?;
        self.equals()?;
        let raw = self.quoted_value()?;
        let value = if raw
            .bytes()
            .any(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
        {
            Cow::Owned(self.expand(raw, true)?)
        } else {
            Cow::Borrowed(raw)
        };
        if prefix == "xmlns" {
            let is_xml = value == XML_NS;
            if value == XMLNS_NS || (local == "xml") != is_xml {
                return Err(self.malformed("a reserved namespace bound wrongly"));
            }
            if self.declarations.iter().any(|d| d.prefix == Some(local)) {
                return Err(self.malformed("a prefix declared twice"));
            }
            if !is_xml {
                self.declarations.push(Declaration {
                    prefix: Some(local),
                    uri: value,
                });
            }
        } else if prefix.is_empty() && local == "xmlns" {
            if value == XML_NS || value == XMLNS_NS {
                return Err(self.malformed("a reserved namespace as the default"));
            }
            if self.declarations.iter().any(|d| d.prefix.is_none()) {
                return Err(self.malformed("the default namespace declared twice"));
            }
            self.declarations.push(Declaration {
                prefix: None,
                uri: value,
            });
        } else {
            self.pending.push((prefix, local, value));
        }
        Ok(())
    }

    fn bind_declarations(&mut self) -> Result<(), StanzaError> {
        let mut declarations = std::mem::take(&mut self.declarations);
        for Declaration { prefix, uri } in declarations.drain(..) {
            let next = u32::try_from(self.doc.namespaces.len())
                .map_err(|_| StanzaError::TooLarge(Limit::Namespaces))?;
            let id = *self.interned.entry(uri.clone()).or_insert_with(|| {
                self.doc.namespaces.push(uri);
                next
            });
            match self.bindings.iter().position(|(p, _)| *p == prefix) {
                Some(slot) => {
                    let previous = self.bindings.get(slot).map(|b| b.1);
                    self.undo.push((slot, previous));
                    if let Some(binding) = self.bindings.get_mut(slot) {
                        binding.1 = id;
                    }
                }
                None => {
                    self.undo.push((self.bindings.len(), None));
                    self.bindings.push((prefix, id));
                }
            }
        }
        self.declarations = declarations;
        Ok(())
    }

    /// The namespace of an element prefix (`""`: the default namespace, if any).
    fn resolve(&self, prefix: &str) -> Result<Option<u32>, StanzaError> {
        let key = (!prefix.is_empty()).then_some(prefix);
        match self.bindings.iter().find(|(p, _)| *p == key) {
            Some(&(_, id)) => Ok(Some(id)),
            None if prefix.is_empty() => Ok(None),
            None => Err(self.malformed("an undeclared namespace prefix")),
        }
    }

    fn resolve_attributes(&mut self) -> Result<(u32, u32), StanzaError> {
        let start = self.doc.attributes.len();
        let mut pending = std::mem::take(&mut self.pending);
        for (prefix, local, value) in pending.drain(..) {
            let namespace = match prefix {
                "" => None,
                "xml" => Some(XML_NS_ID),
                prefix => self.resolve(prefix)?,
            };
            let added = self.doc.attributes.get(start..).unwrap_or_default();
            if added
                .iter()
                .any(|a| a.local == local && a.namespace == namespace)
            {
                return Err(self.malformed("a duplicate attribute"));
            }
            self.doc.attributes.push(AttributeData {
                local,
                namespace,
                value,
            });
        }
        self.pending = pending;
        let index = |n: usize| u32::try_from(n).map_err(|_| StanzaError::TooLarge(Limit::Nodes));
        Ok((index(start)?, index(self.doc.attributes.len())?))
    }

    fn end_tag(&mut self) -> Result<(), StanzaError> {
        self.pos += 2;
        let (prefix, local) = self.qname()?;
        self.skip_spaces();
        self.expect(">")?;
        let open = self.open.last().map(|o| o.id);
        match open.and_then(|id| self.doc.data(id)).map(|d| &d.kind) {
            Some(Kind::Element {
                local: l,
                prefix: p,
                ..
            }) if *l == local && *p == prefix => {}
            _ => return Err(self.malformed("an end tag that does not match its start tag")),
        }
        self.in_text = false;
        self.close_innermost();
        Ok(())
    }

    /// Closes the innermost open element: records its subtree's end and unbinds its prefixes.
    fn close_innermost(&mut self) {
        let Some(Open { id, undo_mark }) = self.open.pop() else {
            return;
        };
        let end = u32::try_from(self.doc.nodes.len()).unwrap_or(NONE);
        if let Some(node) = self.doc.nodes.get_mut(id as usize) {
            node.end = end;
        }
        while self.undo.len() > undo_mark {
            match self.undo.pop() {
                Some((slot, Some(previous))) => {
                    if let Some(binding) = self.bindings.get_mut(slot) {
                        binding.1 = previous;
                    }
                }
                Some((slot, None)) => self.bindings.truncate(slot),
                None => {}
            }
        }
    }
}

/// A run of text up to a delimiter, read once: its length, and whether it may need a closer
/// look (controls, `]`, the lead byte of U+FFFE/U+FFFF, whitespace other than a space) or holds
/// references.
struct Run {
    len: usize,
    unusual: bool,
    references: bool,
}

impl Run {
    fn read(bytes: &[u8], stop: impl Fn(u8) -> bool) -> Self {
        // Two simple passes (each a tight loop the compiler vectorizes) beat one that does both.
        let len = bytes.iter().position(|&b| stop(b)).unwrap_or(bytes.len());
        let run = bytes.get(..len).unwrap_or_default();
        Run {
            len,
            unusual: run.iter().any(|&b| b < 0x20 || b == b']' || b == 0xEF),
            references: run.contains(&b'&'),
        }
    }
}

/// The length of the run of name characters `text` starts with (ASCII bytes first, the rest by
/// character).
fn name_len(text: &str) -> usize {
    let ascii = text
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.')))
        .unwrap_or(text.len());
    if text.as_bytes().get(ascii).is_none_or(|&b| b < 0x80) {
        return ascii;
    }
    let tail = text.get(ascii..).unwrap_or_default();
    ascii
        + tail
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(tail.len(), |(i, _)| i)
}

/// CDATA keeps its text as is, except that line ends become `\n`.
fn normalize_line_ends(text: &str) -> Cow<'_, str> {
    if text.contains('\r') {
        // `\r\n` and a lone `\r` both become `\n` (split on characters: a string pattern
        // would bring core's two-way searcher to the `.wasm`).
        let mut out = String::with_capacity(text.len());
        for (i, piece) in text.split('\r').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(if i > 0 {
                piece.strip_prefix('\n').unwrap_or(piece)
            } else {
                piece
            });
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}
