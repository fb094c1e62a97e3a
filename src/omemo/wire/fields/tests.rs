//! The reader against `prost` (what olmo decoded with before): on valid messages and on
//! thousands of mutations of them, both accept the same inputs with the same values.

use prost::Message as _;

use super::*;

#[derive(Clone, PartialEq, prost::Message)]
struct PreKeySignalMessage {
    #[prost(uint32, optional, tag = "1")]
    pre_key_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    base_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    identity_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    message: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "5")]
    registration_id: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    signed_pre_key_id: Option<u32>,
}

const KINDS: [Field<'static>; 6] = [
    Field::Uint32(None),
    Field::Bytes(None),
    Field::Bytes(None),
    Field::Bytes(None),
    Field::Uint32(None),
    Field::Uint32(None),
];

fn ours(bytes: &[u8]) -> Option<PreKeySignalMessage> {
    let fields = Fields::decode(bytes, KINDS).ok()?;
    Some(PreKeySignalMessage {
        pre_key_id: fields.uint32(1),
        base_key: fields.bytes(2),
        identity_key: fields.bytes(3),
        message: fields.bytes(4),
        registration_id: fields.uint32(5),
        signed_pre_key_id: fields.uint32(6),
    })
}

/// A small deterministic generator (xorshift64*).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn samples() -> Vec<Vec<u8>> {
    let full = PreKeySignalMessage {
        pre_key_id: Some(300),
        base_key: Some(vec![5; 33]),
        identity_key: Some(vec![5; 33]),
        message: Some(vec![0x33, 0x0a, 0x01, 0x02]),
        registration_id: Some(u32::MAX),
        signed_pre_key_id: Some(1),
    };
    let sparse = PreKeySignalMessage {
        signed_pre_key_id: Some(0),
        ..PreKeySignalMessage::default()
    };
    // Unknown fields of every wire type, a nested group, padded varints, a repeated field.
    let unusual = vec![
        0x38, 0x01, 0x41, 1, 2, 3, 4, 5, 6, 7, 8, 0x4a, 0x01, 0xff, 0x55, 1, 2, 3, 4, 0x5b, 0x63,
        0x64, 0x5c, 0x08, 0x80, 0x00, 0x08, 0x85, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x01, 0x12, 0x01, 0x07,
    ];
    vec![
        full.encode_to_vec(),
        sparse.encode_to_vec(),
        unusual,
        Vec::new(),
    ]
}

#[test]
fn reads_as_prost_reads() {
    let mut noise = Noise(0x0123_4567_89ab_cdef);
    let mut accepted = 0;
    for sample in samples() {
        assert_eq!(
            ours(&sample),
            PreKeySignalMessage::decode(sample.as_slice()).ok()
        );
        for _ in 0..4000 {
            let mut bytes = sample.clone();
            for _ in 0..=noise.below(3) {
                match noise.below(4) {
                    0 if !bytes.is_empty() => {
                        let at = noise.below(bytes.len());
                        bytes[at] ^= 1 << noise.below(8);
                    }
                    1 if !bytes.is_empty() => {
                        let at = noise.below(bytes.len());
                        bytes[at] = noise.next() as u8;
                    }
                    2 if !bytes.is_empty() => {
                        bytes.truncate(noise.below(bytes.len()));
                    }
                    _ => {
                        let at = noise.below(bytes.len() + 1);
                        bytes.insert(at, noise.next() as u8);
                    }
                }
            }
            let theirs = PreKeySignalMessage::decode(bytes.as_slice()).ok();
            accepted += usize::from(theirs.is_some());
            assert_eq!(ours(&bytes), theirs, "{bytes:02x?}");
        }
    }
    // The mutations reach both sides of the boundary.
    assert!(accepted > 1000, "{accepted}");
}

#[test]
fn writes_as_prost_writes() {
    for sample in samples() {
        let Some(message) = ours(&sample) else {
            continue;
        };
        let fields = Fields::decode(&sample, KINDS).unwrap();
        assert_eq!(encode(&fields.0), message.encode_to_vec());
        assert_eq!(
            fields.is_encoding_of(&sample),
            sample == message.encode_to_vec()
        );
    }
}

#[test]
fn groups_nest_only_so_deep() {
    let nested = |depth: usize| {
        let mut bytes = vec![0x5b; depth];
        bytes.extend(std::iter::repeat_n(0x5c, depth));
        bytes
    };
    assert!(ours(&nested(MAX_GROUP_DEPTH as usize)).is_some());
    assert!(ours(&nested(MAX_GROUP_DEPTH as usize + 1)).is_none());
    assert!(ours(&[0x5c]).is_none());
}
