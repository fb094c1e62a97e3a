//! Reading `test-vectors/`: JSON files and their fields, and a generator that hands out the
//! random bytes a peer was given, in order, so olmo can be replayed against its output.

use std::convert::Infallible;
use std::path::PathBuf;

use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;

use super::hex::unhex;

/// `test-vectors/<dir>/<name>`, parsed.
pub fn load(dir: &str, name: &str) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "test-vectors", dir, name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

pub fn index(v: &Value) -> u32 {
    u32::try_from(u(v)).unwrap()
}

pub fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// Hands out exactly the bytes a peer drew, in order; drawing past them fails the test.
pub struct ScriptedRng {
    label: String,
    bytes: Vec<u8>,
    position: usize,
}

impl ScriptedRng {
    pub fn new(label: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            label: label.into(),
            bytes,
            position: 0,
        }
    }

    pub fn from_hex(label: impl Into<String>, hex_text: &str) -> Self {
        Self::new(label, unhex(hex_text))
    }

    pub fn empty(label: impl Into<String>) -> Self {
        Self::new(label, Vec::new())
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let end = self.position + n;
        assert!(
            end <= self.bytes.len(),
            "{}: {n} random bytes requested at offset {}, but only {} were given",
            self.label,
            self.position,
            self.bytes.len()
        );
        let out = &self.bytes[self.position..end];
        self.position = end;
        out
    }

    /// Asserts that every given byte was drawn (the peer consumed all of them).
    pub fn assert_exhausted(&self) {
        assert_eq!(
            self.position,
            self.bytes.len(),
            "{}: only {} of {} random bytes were drawn",
            self.label,
            self.position,
            self.bytes.len()
        );
    }
}

impl TryRng for ScriptedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes(self.take(4).try_into().unwrap()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.take(8).try_into().unwrap()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let n = dst.len();
        dst.copy_from_slice(self.take(n));
        Ok(())
    }
}

impl TryCryptoRng for ScriptedRng {}
