//! The protobuf reading both OMEMO versions need: messages whose fields are numbered `1..=n`,
//! each an optional `uint32` or `bytes`. One non-generic reader serves every message type.
//!
//! It reads as protobuf decoders do (and as `prost`, which olmo used before, did): fields in
//! any order, a repeated field's last value wins, unknown fields of every wire type (groups
//! included, nested at most [`MAX_GROUP_DEPTH`] deep) are skipped, varints may be padded, and a
//! `uint32` keeps a varint's low 32 bits. Peers' messages thus decode exactly as before; where
//! a form must be canonical, [`Fields::is_encoding_of`] says whether the bytes are it.

use crate::codec::DecodeError;
use crate::codec::proto::ProtoWriter;

/// How deep unknown groups may nest (protobuf decoders' usual recursion limit).
const MAX_GROUP_DEPTH: u32 = 100;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
const FIXED32: u64 = 5;

/// One declared field's value, if the message had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    /// A `uint32` field.
    Uint32(Option<u32>),
    /// A `bytes` field.
    Bytes(Option<&'a [u8]>),
}

/// The fields of one message: `fields[i]` is field number `i + 1`.
pub(crate) struct Fields<'a, const N: usize>(pub(crate) [Field<'a>; N]);

impl<'a, const N: usize> Fields<'a, N> {
    /// Decodes `bytes` into fields declared as `kinds` (all `None`).
    pub(crate) fn decode(bytes: &'a [u8], kinds: [Field<'a>; N]) -> Result<Self, DecodeError> {
        let mut fields = kinds;
        read(bytes, &mut fields)?;
        Ok(Self(fields))
    }

    /// The `uint32` field `number`.
    pub(crate) fn uint32(&self, number: u32) -> Option<u32> {
        match self.get(number) {
            Some(Field::Uint32(value)) => value,
            _ => None,
        }
    }

    /// The `bytes` field `number`, copied.
    pub(crate) fn bytes(&self, number: u32) -> Option<Vec<u8>> {
        match self.get(number) {
            Some(Field::Bytes(value)) => value.map(<[u8]>::to_vec),
            _ => None,
        }
    }

    fn get(&self, number: u32) -> Option<Field<'a>> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.0.get(index).copied()
    }

    /// Whether `bytes` is the canonical encoding of these fields: every present field once, in
    /// number order, with shortest varints.
    pub(crate) fn is_encoding_of(&self, bytes: &[u8]) -> bool {
        encode(&self.0) == bytes
    }
}

/// Encodes the present fields in number order, into one allocation.
pub(crate) fn encode(fields: &[Field<'_>]) -> Vec<u8> {
    // At most a 1-byte key (field numbers below 16) and a 10-byte varint per field.
    let capacity = fields
        .iter()
        .map(|field| match field {
            Field::Bytes(Some(bytes)) => 11 + bytes.len(),
            _ => 11,
        })
        .sum();
    let mut writer = ProtoWriter::with_prefix(&[], capacity);
    for (number, field) in (1u32..).zip(fields) {
        match field {
            Field::Uint32(Some(value)) => {
                writer.varint_field(number, (*value).into());
            }
            Field::Bytes(Some(bytes)) => {
                writer.bytes_field(number, bytes);
            }
            Field::Uint32(None) | Field::Bytes(None) => {}
        }
    }
    writer.finish()
}

fn read<'a>(mut input: &'a [u8], fields: &mut [Field<'a>]) -> Result<(), DecodeError> {
    while !input.is_empty() {
        let (number, wire_type) = key(&mut input)?;
        let slot = usize::try_from(number - 1)
            .ok()
            .and_then(|index| fields.get_mut(index));
        match (slot, wire_type) {
            (Some(Field::Uint32(value)), VARINT) => *value = Some(varint(&mut input)? as u32),
            (Some(Field::Bytes(value)), LENGTH_DELIMITED) => {
                *value = Some(length_delimited(&mut input)?);
            }
            (Some(_), _) => return Err(DecodeError::Protobuf),
            (None, _) => skip(&mut input, number, wire_type, 0)?,
        }
    }
    Ok(())
}

/// A field key: its number (at least 1) and wire type (0 to 5).
fn key(input: &mut &[u8]) -> Result<(u32, u64), DecodeError> {
    let key = u32::try_from(varint(input)?).map_err(|_| DecodeError::Protobuf)?;
    let wire_type = u64::from(key & 7);
    let number = key >> 3;
    if wire_type > FIXED32 || number == 0 {
        return Err(DecodeError::Protobuf);
    }
    Ok((number, wire_type))
}

/// Skips an unknown field's value (a group up to its matching end).
fn skip(input: &mut &[u8], number: u32, wire_type: u64, depth: u32) -> Result<(), DecodeError> {
    if depth >= MAX_GROUP_DEPTH {
        return Err(DecodeError::Protobuf);
    }
    let length = match wire_type {
        VARINT => varint(input).map(|_| 0)?,
        FIXED64 => 8,
        FIXED32 => 4,
        LENGTH_DELIMITED => varint(input)?,
        START_GROUP => loop {
            match key(input)? {
                (inner, END_GROUP) if inner == number => break 0,
                (_, END_GROUP) => return Err(DecodeError::Protobuf),
                (inner, inner_type) => skip(input, inner, inner_type, depth + 1)?,
            }
        },
        _ => return Err(DecodeError::Protobuf),
    };
    take(input, length).map(|_| ())
}

fn length_delimited<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let length = varint(input)?;
    take(input, length)
}

fn take<'a>(input: &mut &'a [u8], length: u64) -> Result<&'a [u8], DecodeError> {
    let length = usize::try_from(length).map_err(|_| DecodeError::Protobuf)?;
    if length > input.len() {
        return Err(DecodeError::Protobuf);
    }
    let (taken, rest) = input.split_at(length);
    *input = rest;
    Ok(taken)
}

/// A varint of at most ten bytes whose value fits 64 bits (padding allowed).
fn varint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for (i, &byte) in input.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return Err(DecodeError::Protobuf);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    Err(DecodeError::Protobuf)
}

#[cfg(test)]
mod tests;
