//! Fixed-layout big-endian fields, as libolm's pickles and our own storage format use them.

use zeroize::Zeroizing;

use super::DecodeError;

/// The first buffer's size: most stored sessions and pickles fit without growing.
const INITIAL_CAPACITY: usize = 256;

/// Appends fixed-width fields. The buffer usually holds secrets, so it is wiped on drop, and it
/// never grows by `Vec`'s own reallocation, which frees the old copy unwiped: when full, the
/// bytes move into a fresh buffer of twice the capacity and the old one is wiped as it drops.
pub(crate) struct ByteWriter {
    buffer: Zeroizing<Vec<u8>>,
    /// How many times the bytes moved to a larger buffer (tests check every growth is ours).
    #[cfg(test)]
    growths: usize,
}

impl Default for ByteWriter {
    fn default() -> Self {
        Self::with_capacity(INITIAL_CAPACITY)
    }
}

impl ByteWriter {
    /// A writer whose first buffer holds `capacity` bytes (more are fine: it grows).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buffer: Zeroizing::new(Vec::with_capacity(capacity)),
            #[cfg(test)]
            growths: 0,
        }
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.array([value])
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.array(value.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.array(value.to_be_bytes())
    }

    /// A field of a fixed width: stored in place, with no copy call (a stored session is
    /// mostly such fields, a few hundred per XMPP message encrypted to 9 devices).
    #[inline(always)]
    fn array<const N: usize>(&mut self, bytes: [u8; N]) -> &mut Self {
        self.room_for(N);
        self.buffer.extend_from_slice(&bytes);
        self
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.room_for(bytes.len());
        let capacity = self.buffer.capacity();
        self.buffer.extend_from_slice(bytes);
        debug_assert_eq!(
            capacity,
            self.buffer.capacity(),
            "Vec reallocated by itself"
        );
        self
    }

    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        self.buffer
    }

    /// Makes room for `extra` more bytes when there is not: the writers' common path is this
    /// one comparison.
    #[inline(always)]
    fn room_for(&mut self, extra: usize) {
        if self.buffer.capacity() - self.buffer.len() < extra {
            self.make_room(extra);
        }
    }

    /// Moves the bytes into a buffer with room for `extra` more, doubling the capacity (out of
    /// line, called by [`ByteWriter::room_for`] only when the buffer is full).
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, extra: usize) {
        let needed = self.buffer.len().saturating_add(extra);
        let mut capacity = self.buffer.capacity().max(1);
        while capacity < needed {
            capacity = capacity.saturating_mul(2);
        }
        let mut larger = Zeroizing::new(Vec::with_capacity(capacity));
        larger.extend_from_slice(&self.buffer);
        // The assignment drops the old buffer, and `Zeroizing` wipes it first.
        self.buffer = larger;
        #[cfg(test)]
        {
            self.growths += 1;
        }
    }
}

/// Reads fixed-width fields; every read checks the remaining length.
pub(crate) struct ByteReader<'a> {
    input: &'a [u8],
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    pub(crate) fn take(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
        if length > self.input.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.input.split_at(length);
        self.input = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A secret array, wiped when the caller drops it.
    pub(crate) fn secret<const N: usize>(&mut self) -> Result<Zeroizing<[u8; N]>, DecodeError> {
        let mut out = Zeroizing::new([0u8; N]);
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::OutOfRange),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A count of items, refused when larger than `max` (so a corrupt count cannot allocate).
    pub(crate) fn count(&mut self, max: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count > max {
            return Err(DecodeError::OutOfRange);
        }
        Ok(count)
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writing far past the first capacity: every change of capacity is one of our growths
    /// (a copy into a fresh buffer, the old one wiped), none is `Vec` reallocating by itself.
    #[test]
    fn growth_copies_into_a_fresh_buffer() {
        let mut writer = ByteWriter::with_capacity(4);
        let mut capacity_changes = 0;
        let mut expected = Vec::new();
        for value in 0..1000u32 {
            let capacity = writer.buffer.capacity();
            let growths = writer.growths;
            writer.u32(value).u8(7);
            expected.extend_from_slice(&value.to_be_bytes());
            expected.push(7);
            if writer.buffer.capacity() != capacity {
                capacity_changes += 1;
                assert_eq!(
                    writer.growths,
                    growths + 1,
                    "a growth not made by make_room"
                );
            }
        }
        assert!(
            capacity_changes >= 10,
            "the writer grew {capacity_changes} times"
        );
        assert_eq!(writer.growths, capacity_changes);
        assert_eq!(&*writer.finish(), &expected[..]);
    }

    #[test]
    fn a_writer_sized_right_never_grows() {
        let mut writer = ByteWriter::with_capacity(12);
        writer.u32(1).u64(2);
        assert_eq!(writer.growths, 0);
        assert_eq!(writer.finish().len(), 12);
    }
}
