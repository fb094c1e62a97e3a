//! A small namespace-aware XML reader: exactly what the stanza parsers need (elements by
//! expanded name, their attributes, text, children in order), built in one linear pass into a
//! flat arena.
//!
//! It accepts XML 1.0 documents without a DTD: an optional XML declaration, comments,
//! processing instructions, CDATA sections, the five predefined entities and character
//! references, and Namespaces in XML (default and prefixed, inherited; `xml:` is bound; an
//! undeclared prefix is an error). Comments and processing instructions are checked and counted
//! but not kept. Text follows XML's line-end normalization, attribute values its attribute-value
//! normalization. The structural limits (depth, attributes, prefixes in scope) are the pre-scan's
//! job (see `scan`); this reader bounds the node count itself. Nothing recurses, and every step
//! costs time linear in what it reads (namespace lookups scan at most the prefixes in scope,
//! which the pre-scan bounds; duplicate-attribute checks compare interned namespace ids).

use std::borrow::Cow;

use crate::omemo::stanza::error::StanzaError;

mod reader;

use reader::Reader;

/// "No node" in the arena's links.
const NONE: u32 = u32::MAX;

/// A parsed document: the root element and everything inside it, in document order.
pub(in crate::omemo::stanza) struct Document<'i> {
    nodes: Vec<NodeData<'i>>,
    attributes: Vec<AttributeData<'i>>,
    /// Interned namespace names; an element or attribute refers to one by index.
    namespaces: Vec<Cow<'i, str>>,
}

struct NodeData<'i> {
    parent: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
    /// One past the last node of this node's subtree.
    end: u32,
    kind: Kind<'i>,
}

enum Kind<'i> {
    Element {
        local: &'i str,
        /// Only the closing tag's check needs the prefix.
        prefix: &'i str,
        namespace: Option<u32>,
        attributes: (u32, u32),
    },
    Text(Cow<'i, str>),
}

struct AttributeData<'i> {
    local: &'i str,
    namespace: Option<u32>,
    value: Cow<'i, str>,
}

/// A node of a [`Document`]: an element or a run of text (character data and CDATA sections
/// with no comment, processing instruction or tag between them).
#[derive(Clone, Copy)]
pub(in crate::omemo::stanza) struct Node<'a, 'i> {
    doc: &'a Document<'i>,
    id: u32,
}

/// One attribute of an element (namespace declarations are not attributes here).
#[derive(Clone, Copy)]
pub(in crate::omemo::stanza) struct Attribute<'a> {
    /// The namespace name, `None` for an unprefixed attribute.
    pub(in crate::omemo::stanza) namespace: Option<&'a str>,
    /// The local name.
    pub(in crate::omemo::stanza) name: &'a str,
    /// The normalized value.
    pub(in crate::omemo::stanza) value: &'a str,
}

impl<'i> Document<'i> {
    /// Parses `text`, counting nodes against [`Limit::Nodes`](crate::omemo::stanza::Limit::Nodes).
    pub(in crate::omemo::stanza) fn parse(text: &'i str) -> Result<Self, StanzaError> {
        Reader::new(text).run()
    }

    /// The root element.
    pub(in crate::omemo::stanza) fn root_element(&self) -> Node<'_, 'i> {
        Node { doc: self, id: 0 }
    }

    fn data(&self, id: u32) -> Option<&NodeData<'i>> {
        self.nodes.get(id as usize)
    }

    fn namespace(&self, id: Option<u32>) -> Option<&str> {
        id.and_then(|id| self.namespaces.get(id as usize))
            .map(|n| n.as_ref())
    }
}

impl<'a, 'i> Node<'a, 'i> {
    fn data(self) -> Option<&'a NodeData<'i>> {
        self.doc.data(self.id)
    }

    fn at(self, id: u32) -> Option<Self> {
        self.doc.data(id).map(|_| Node { doc: self.doc, id })
    }

    pub(in crate::omemo::stanza) fn is_element(self) -> bool {
        matches!(
            self.data(),
            Some(NodeData {
                kind: Kind::Element { .. },
                ..
            })
        )
    }

    pub(in crate::omemo::stanza) fn is_text(self) -> bool {
        matches!(
            self.data(),
            Some(NodeData {
                kind: Kind::Text(_),
                ..
            })
        )
    }

    /// The local name of an element; `""` for text.
    pub(in crate::omemo::stanza) fn name(self) -> &'a str {
        match self.data().map(|d| &d.kind) {
            Some(Kind::Element { local, .. }) => local,
            _ => "",
        }
    }

    /// The namespace name of an element (`None`: no namespace, or text).
    pub(in crate::omemo::stanza) fn namespace(self) -> Option<&'a str> {
        match self.data().map(|d| &d.kind) {
            Some(Kind::Element { namespace, .. }) => self.doc.namespace(*namespace),
            _ => None,
        }
    }

    /// The text of a text node.
    pub(in crate::omemo::stanza) fn text(self) -> Option<&'a str> {
        match self.data().map(|d| &d.kind) {
            Some(Kind::Text(text)) => Some(text.as_ref()),
            _ => None,
        }
    }

    /// The attributes of an element, in document order.
    pub(in crate::omemo::stanza) fn attributes(self) -> impl Iterator<Item = Attribute<'a>> + 'a {
        let (start, end) = match self.data().map(|d| &d.kind) {
            Some(Kind::Element { attributes, .. }) => *attributes,
            _ => (0, 0),
        };
        let doc = self.doc;
        doc.attributes
            .get(start as usize..end as usize)
            .unwrap_or_default()
            .iter()
            .map(move |a| Attribute {
                namespace: doc.namespace(a.namespace),
                name: a.local,
                value: a.value.as_ref(),
            })
    }

    /// The child nodes, in order.
    pub(in crate::omemo::stanza) fn children(self) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
        let first = self.data().map_or(NONE, |d| d.first_child);
        let doc = self.doc;
        std::iter::successors(self.at(first), move |n| {
            n.at(doc.data(n.id).map_or(NONE, |d| d.next_sibling))
        })
    }

    /// This node and every node inside it, in document order.
    pub(in crate::omemo::stanza) fn descendants(self) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
        let end = self.data().map_or(self.id, |d| d.end);
        let doc = self.doc;
        (self.id..end).map(move |id| Node { doc, id })
    }

    /// The enclosing elements, innermost first (not this node).
    pub(in crate::omemo::stanza) fn ancestors(self) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
        let parent = |n: &Node<'a, 'i>| n.at(n.data().map_or(NONE, |d| d.parent));
        std::iter::successors(parent(&self), parent)
    }
}
