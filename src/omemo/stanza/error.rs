//! The one error type of the stanza layer, and the limits it enforces on untrusted input.

use std::fmt;

/// A bound this layer puts on untrusted input, so that a hostile stanza costs bounded time and
/// memory. [`Limit::max`] gives the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Bytes of XML text handed to a parser (256 KiB, Prosody's default stanza size limit).
    InputBytes,
    /// Element nesting depth of the whole document, the root element counting as 1.
    Depth,
    /// Nodes of the whole document: elements, text runs, comments, processing instructions.
    /// A full header of [`Limit::Keys`] keys, line-wrapped, needs three per key.
    Nodes,
    /// Attributes on one element, namespace declarations included. Costs grow with their square.
    Attributes,
    /// Distinct namespace prefixes (the default namespace counting as one) in scope at any
    /// element. Costs grow with this number times the number of elements; real stanzas use a
    /// handful.
    Namespaces,
    /// `<key>` elements in one `<encrypted>` header.
    Keys,
    /// Pre-keys in one bundle.
    PreKeys,
    /// Devices in one device list.
    Devices,
}

impl Limit {
    /// The largest accepted value.
    pub const fn max(self) -> usize {
        match self {
            Limit::InputBytes => 256 * 1024,
            Limit::Depth => 64,
            Limit::Nodes => 40_000,
            Limit::Attributes => 64,
            Limit::Namespaces => 16,
            Limit::Keys => 10_000,
            Limit::PreKeys => 1_000,
            Limit::Devices => 1_000,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Limit::InputBytes => "input size in bytes",
            Limit::Depth => "element depth",
            Limit::Nodes => "number of nodes",
            Limit::Attributes => "attributes per element",
            Limit::Namespaces => "namespace prefixes in scope",
            Limit::Keys => "number of keys",
            Limit::PreKeys => "number of pre-keys",
            Limit::Devices => "number of devices",
        };
        write!(f, "{what} (at most {})", self.max())
    }
}

/// Why a stanza element could not be parsed.
///
/// Element and attribute names are the local names of the element in question (`"key"`,
/// `"signedPreKeyPublic"`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StanzaError {
    /// Not well-formed XML, or XML this layer refuses outright (a DTD).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The element was found, but in another namespace (or none).
    #[error(
        "<{element}> has namespace \"{}\", not one this parser accepts",
        .found.as_deref().unwrap_or("")
    )]
    WrongNamespace {
        /// The element's local name.
        element: &'static str,
        /// The namespace it was in; `None` if it had none.
        found: Option<String>,
    },
    /// A required element is absent.
    #[error("missing element <{0}>")]
    MissingElement(&'static str),
    /// A required attribute is absent.
    #[error("missing attribute '{attribute}' on <{element}>")]
    MissingAttribute {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },
    /// An attribute that must be a decimal integer (or a device id, 1..=2³¹−1) is not one.
    #[error("attribute '{attribute}' on <{element}> is not a valid number")]
    BadInteger {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },
    /// A boolean attribute is none of `true`, `false`, `1`, `0`.
    #[error("attribute '{attribute}' on <{element}> is not a boolean")]
    BadBoolean {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },
    /// Text (or an attribute, for `labelsig`) that must be padded standard base64 is not.
    #[error("<{element}> does not hold valid base64")]
    BadBase64 {
        /// The element's local name.
        element: &'static str,
    },
    /// A text-only element has child elements.
    #[error("<{element}> may contain only text")]
    UnexpectedChild {
        /// The element's local name.
        element: &'static str,
    },
    /// An element that may occur once occurs more than once.
    #[error("duplicate element <{0}>")]
    DuplicateElement(&'static str),
    /// Two pre-keys or two devices share an id.
    #[error("duplicate id {id} in <{element}>")]
    DuplicateId {
        /// The element's local name (`"pk"`, `"preKeyPublic"`, `"device"`).
        element: &'static str,
        /// The repeated id.
        id: u32,
    },
    /// The input exceeds one of the [`Limit`]s.
    #[error("too large: {0}")]
    TooLarge(Limit),
}
