//! The protobuf subset Olm and Megolm messages use: varint (wire type 0) and length-delimited
//! (wire type 2) fields, written in field order, read back strictly.

use super::DecodeError;

const VARINT: u8 = 0;
const LENGTH_DELIMITED: u8 = 2;

/// Appends fields to a buffer.
#[derive(Default)]
pub(crate) struct ProtoWriter {
    buffer: Vec<u8>,
}

impl ProtoWriter {
    pub(crate) fn with_prefix(prefix: &[u8], capacity: usize) -> Self {
        let mut buffer = Vec::with_capacity(capacity);
        buffer.extend_from_slice(prefix);
        Self { buffer }
    }

    pub(crate) fn varint_field(&mut self, field: u32, value: u64) -> &mut Self {
        self.key(field, VARINT);
        write_varint(&mut self.buffer, value);
        self
    }

    pub(crate) fn bytes_field(&mut self, field: u32, bytes: &[u8]) -> &mut Self {
        self.key(field, LENGTH_DELIMITED);
        write_varint(&mut self.buffer, bytes.len() as u64);
        self.buffer.extend_from_slice(bytes);
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        write_varint(
            &mut self.buffer,
            (u64::from(field) << 3) | u64::from(wire_type),
        );
    }
}

pub(crate) fn write_varint(buffer: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buffer.push((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

/// One decoded field value.
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Reads fields in strictly increasing field order; unknown wire types are refused.
pub(crate) struct ProtoReader<'a> {
    input: &'a [u8],
    last_field: u32,
}

impl<'a> ProtoReader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            last_field: 0,
        }
    }

    /// The next field, or `None` at the end of input.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, DecodeError> {
        if self.input.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| DecodeError::OutOfRange)?;
        if field <= self.last_field {
            return Err(DecodeError::UnexpectedField(field));
        }
        self.last_field = field;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            LENGTH_DELIMITED => {
                let length = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
                if length > self.input.len() {
                    return Err(DecodeError::Truncated);
                }
                let (bytes, rest) = self.input.split_at(length);
                self.input = rest;
                Value::Bytes(bytes)
            }
            _ => return Err(DecodeError::UnexpectedField(field)),
        };
        Ok(Some((field, value)))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let (value, used) = read_varint(self.input)?;
        self.input = &self.input[used..];
        Ok(value)
    }
}

/// Reads a shortest-form varint of at most 64 bits; returns the value and the bytes used.
pub(crate) fn read_varint(input: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut value = 0u64;
    for (i, &byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return Err(DecodeError::NonCanonicalVarint);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            // A final zero byte after the first one would be a padded (non-shortest) varint.
            if i > 0 && byte == 0 {
                return Err(DecodeError::NonCanonicalVarint);
            }
            return Ok((value, i + 1));
        }
    }
    if input.len() >= 10 {
        Err(DecodeError::NonCanonicalVarint)
    } else {
        Err(DecodeError::Truncated)
    }
}

impl<'a> Value<'a> {
    pub(crate) fn varint(&self, field: u32) -> Result<u64, DecodeError> {
        match self {
            Value::Varint(value) => Ok(*value),
            Value::Bytes(_) => Err(DecodeError::UnexpectedField(field)),
        }
    }

    pub(crate) fn bytes(&self, field: u32) -> Result<&'a [u8], DecodeError> {
        match self {
            Value::Bytes(bytes) => Ok(bytes),
            Value::Varint(_) => Err(DecodeError::UnexpectedField(field)),
        }
    }

    pub(crate) fn fixed<const N: usize>(&self, field: u32) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(field)?;
        bytes.try_into().map_err(|_| DecodeError::BadLength {
            field,
            expected: N,
            actual: bytes.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_canonical() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buffer = Vec::new();
            write_varint(&mut buffer, value);
            assert_eq!(read_varint(&buffer).unwrap(), (value, buffer.len()));
        }
        assert_eq!(
            read_varint(&[0x80, 0x00]),
            Err(DecodeError::NonCanonicalVarint)
        );
        assert_eq!(read_varint(&[0x80]), Err(DecodeError::Truncated));
        assert_eq!(
            read_varint(&[0xff; 10]),
            Err(DecodeError::NonCanonicalVarint)
        );
    }

    #[test]
    fn fields_must_increase() {
        let bytes = ProtoWriter::default()
            .varint_field(2, 1)
            .varint_field(1, 1)
            .finish();
        let mut reader = ProtoReader::new(&bytes);
        assert!(reader.next_field().unwrap().is_some());
        assert!(matches!(
            reader.next_field(),
            Err(DecodeError::UnexpectedField(1))
        ));
    }
}
