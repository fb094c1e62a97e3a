//! The text around the binary file: the `BEGIN`/`END` lines and the base64 body between them.

use super::{KEY_EXPORT_FOOTER, KEY_EXPORT_HEADER, KeyExportError};
use crate::crypto::base64;

/// Bytes per armour line: 96 bytes are 128 base64 characters without padding.
const LINE_BYTES: usize = 96;

/// Wraps `bytes` as Element does: padded base64 at 128 characters a line, every line (the footer
/// included) ending in `\n`.
pub(super) fn armour(bytes: &[u8]) -> String {
    let lines = bytes.len().div_ceil(LINE_BYTES);
    let mut text = String::with_capacity(
        KEY_EXPORT_HEADER.len() + KEY_EXPORT_FOOTER.len() + lines * (LINE_BYTES / 3 * 4 + 1) + 2,
    );
    text.push_str(KEY_EXPORT_HEADER);
    text.push('\n');
    for line in bytes.chunks(LINE_BYTES) {
        // Every line but the last is a multiple of 3 bytes, so only the last needs padding.
        let encoded = base64::encode(line);
        let padding = (4 - encoded.len() % 4) % 4;
        text.push_str(&encoded);
        text.extend(std::iter::repeat_n('=', padding));
        text.push('\n');
    }
    text.push_str(KEY_EXPORT_FOOTER);
    text.push('\n');
    text
}

/// The bytes between the first `BEGIN` line and the next `END` line, whatever surrounds them,
/// ignoring all ASCII whitespace; padded or unpadded base64.
pub(super) fn unarmour(text: &str) -> Result<Vec<u8>, KeyExportError> {
    let start =
        find(text, KEY_EXPORT_HEADER).ok_or(KeyExportError::NoArmour)? + KEY_EXPORT_HEADER.len();
    let body = &text[start..];
    let end = find(body, KEY_EXPORT_FOOTER).ok_or(KeyExportError::NoArmour)?;
    let compact: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::decode(&compact).map_err(|_| KeyExportError::Base64)
}

/// Where `needle` first starts in `text`. A plain scan: `str::find`'s two-way searcher is 2.4 KB
/// of the `.wasm` package, kept there by these two calls alone.
fn find(text: &str, needle: &str) -> Option<usize> {
    text.as_bytes()
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
}
