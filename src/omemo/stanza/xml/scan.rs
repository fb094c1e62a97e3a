//! A linear pre-scan of untrusted XML text that enforces the structural [`Limit`]s before
//! the reader (`tree`) builds a tree. The reader's namespace lookups cost time proportional to
//! the prefixes in scope and its duplicate-attribute check to (attributes per element)², so
//! these bounds keep it linear in the input.
//!
//! The scan follows XML's markup just far enough to see every start tag with its attributes and
//! every end tag: comments, CDATA sections, processing instructions and quoted attribute values
//! (which may hold `>`) are skipped whole, and text runs to the next `<` (without a DTD no entity
//! expands to markup). Whatever it cannot follow is refused as malformed, since well-formed XML
//! never contains it; so on any document the reader accepts, the scan has seen exactly its
//! elements and attributes.

use super::find_delimiter;
use crate::omemo::stanza::error::{Limit, StanzaError};

/// Checks [`Limit::Depth`], [`Limit::Attributes`] and [`Limit::Namespaces`] in one pass.
pub(super) fn check_structure(xml: &str) -> Result<(), StanzaError> {
    Scanner {
        text: xml,
        pos: 0,
        scope: Vec::new(),
        open: Vec::new(),
    }
    .run()
}

struct Scanner<'a> {
    text: &'a str,
    /// Byte offset of the next unread byte; always at a char boundary, since every delimiter
    /// the scan stops at is ASCII.
    pos: usize,
    /// The distinct prefixes in scope, outermost first (`""` for the default namespace).
    scope: Vec<&'a str>,
    /// For each open element, how many entries of `scope` it added.
    open: Vec<usize>,
}

impl<'a> Scanner<'a> {
    fn run(mut self) -> Result<(), StanzaError> {
        while let Some(offset) = self.text[self.pos..].find('<') {
            self.pos += offset;
            let rest = &self.text[self.pos..];
            if rest.starts_with("<!--") {
                self.skip_past("<!--", "-->", "comment")?;
            } else if rest.starts_with("<![CDATA[") {
                self.skip_past("<![CDATA[", "]]>", "CDATA section")?;
            } else if rest.starts_with("<?") {
                self.skip_past("<?", "?>", "processing instruction")?;
            } else if rest.starts_with("<!") {
                return Err(self.malformed("a DTD or other declaration, which are not accepted"));
            } else if rest.starts_with("</") {
                self.end_tag()?;
            } else {
                self.start_tag()?;
            }
        }
        Ok(())
    }

    /// Moves past the first `end` after the `start` delimiter at `pos`.
    fn skip_past(&mut self, start: &str, end: &str, what: &str) -> Result<(), StanzaError> {
        let from = self.pos + start.len();
        match find_delimiter(&self.text[from..], end) {
            Some(offset) => {
                self.pos = from + offset + end.len();
                Ok(())
            }
            None => Err(self.malformed(&format!("an unterminated {what}"))),
        }
    }

    fn end_tag(&mut self) -> Result<(), StanzaError> {
        let Some(offset) = self.text[self.pos..].find('>') else {
            return Err(self.malformed("an unterminated end tag"));
        };
        let Some(added) = self.open.pop() else {
            return Err(self.malformed("an end tag without a start tag"));
        };
        self.scope.truncate(self.scope.len() - added);
        self.pos += offset + 1;
        Ok(())
    }

    fn start_tag(&mut self) -> Result<(), StanzaError> {
        if self.open.len() >= Limit::Depth.max() {
            return Err(StanzaError::TooLarge(Limit::Depth));
        }
        self.pos += 1;
        if self.name().is_empty() {
            return Err(self.malformed("a tag without a name"));
        }
        let mut attributes = 0;
        let mut added = 0;
        loop {
            self.skip_space();
            let rest = &self.text[self.pos..];
            if rest.starts_with('>') {
                self.pos += 1;
                self.open.push(added);
                return Ok(());
            }
            if rest.starts_with("/>") {
                self.pos += 2;
                self.scope.truncate(self.scope.len() - added);
                return Ok(());
            }
            let name = self.attribute()?;
            attributes += 1;
            if attributes > Limit::Attributes.max() {
                return Err(StanzaError::TooLarge(Limit::Attributes));
            }
            if let Some(prefix) = declared_prefix(name)
                && !self.scope.contains(&prefix)
            {
                self.scope.push(prefix);
                added += 1;
                if self.scope.len() > Limit::Namespaces.max() {
                    return Err(StanzaError::TooLarge(Limit::Namespaces));
                }
            }
        }
    }

    /// Reads `name = 'value'` (or double-quoted) and returns the name.
    fn attribute(&mut self) -> Result<&'a str, StanzaError> {
        let name = self.name();
        if name.is_empty() {
            return Err(self.malformed("an unterminated tag or an attribute without a name"));
        }
        self.skip_space();
        if !self.text[self.pos..].starts_with('=') {
            return Err(self.malformed("an attribute without a value"));
        }
        self.pos += 1;
        self.skip_space();
        let quote = match self.text[self.pos..].chars().next() {
            Some(quote @ ('\'' | '"')) => quote,
            _ => return Err(self.malformed("an unquoted attribute value")),
        };
        match self.text[self.pos + 1..].find(quote) {
            Some(offset) => self.pos += 1 + offset + 1,
            None => return Err(self.malformed("an unterminated attribute value")),
        }
        Ok(name)
    }

    /// Reads a (possibly empty) element or attribute name.
    fn name(&mut self) -> &'a str {
        let rest = &self.text[self.pos..];
        let len = rest
            .find(|c: char| is_space(c) || matches!(c, '/' | '>' | '=' | '<' | '\'' | '"'))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    fn malformed(&self, what: &str) -> StanzaError {
        StanzaError::Malformed(format!("{what} at byte {}", self.pos))
    }
}

/// The prefix an attribute named `name` declares: `""` for `xmlns`, `p` for `xmlns:p`.
fn declared_prefix(name: &str) -> Option<&str> {
    match name.strip_prefix("xmlns")? {
        "" => Some(""),
        rest => rest.strip_prefix(':'),
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}
