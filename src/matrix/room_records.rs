//! The metadata of the room tables' records (inbound and outbound sessions, withheld notices,
//! the replay record) and its JSON, written and read by hand ([`crate::codec::json`]).

use serde_json::Value;

use super::records::Meta;
use crate::codec::json::{Fields, ObjectWriter, write_str};
use crate::vec_map::VecMap;

/// What we know about an inbound session besides its ratchet.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct InboundMeta {
    pub room_id: String,
    pub session_id: String,
    /// The Curve25519 key of the device that created the session.
    pub sender_key: String,
    /// The Ed25519 key that device claimed.
    pub sender_claimed_ed25519: String,
    /// The user whose device sent it over Olm (`None` for forwarded or imported keys).
    pub sender_user: Option<String>,
    /// Forwarded or imported: the key's origin is only claimed.
    pub forwarded: bool,
}

impl Meta for InboundMeta {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("room_id", &self.room_id)
            .str("session_id", &self.session_id)
            .str("sender_key", &self.sender_key)
            .str("sender_claimed_ed25519", &self.sender_claimed_ed25519)
            .opt_str("sender_user", self.sender_user.as_deref())
            .bool("forwarded", self.forwarded);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            room_id: fields.str("room_id")?,
            session_id: fields.str("session_id")?,
            sender_key: fields.str("sender_key")?,
            sender_claimed_ed25519: fields.str("sender_claimed_ed25519")?,
            sender_user: fields.opt_str("sender_user")?,
            forwarded: fields.bool("forwarded")?,
        })
    }
}

/// A withheld notice's code.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(super) struct Withheld {
    pub code: String,
}

impl Meta for Withheld {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object.str("code", &self.code);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        Some(Self {
            code: Fields::of(value)?.str("code")?,
        })
    }
}

/// Our outbound session of a room and who has its key (user → device → Curve25519 key).
#[derive(Debug, Clone, Default)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(super) struct OutboundMeta {
    pub room_id: String,
    pub shared_with: VecMap<String, VecMap<String, String>>,
}

impl Meta for OutboundMeta {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object.str("room_id", &self.room_id);
        let out = object.key("shared_with");
        out.push(b'{');
        for (i, (user, devices)) in self.shared_with.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, user);
            out.push(b':');
            let mut inner = ObjectWriter::new(out);
            for (device, key) in devices {
                inner.str(device, key);
            }
            inner.end();
        }
        out.push(b'}');
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        let mut shared_with = VecMap::new();
        for (user, devices) in Fields::of(fields.get("shared_with")?)?.iter() {
            let mut keys = VecMap::new();
            for (device, key) in devices.as_object()? {
                keys.insert(device.clone(), key.as_str()?.to_owned());
            }
            shared_with.insert(user.clone(), keys);
        }
        Some(Self {
            room_id: fields.str("room_id")?,
            shared_with,
        })
    }
}

/// The first event that used a (session, index).
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(super) struct ReplayEntry {
    pub event_id: String,
    pub timestamp: u64,
}

impl Meta for ReplayEntry {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("event_id", &self.event_id)
            .u64("timestamp", self.timestamp);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            event_id: fields.str("event_id")?,
            timestamp: fields.u64("timestamp")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::same_as_serde;

    #[test]
    fn room_records_are_written_as_serde_wrote_them() {
        for sender_user in [None, Some("@a:b\"\n".to_owned())] {
            same_as_serde(&InboundMeta {
                room_id: "!r:x".into(),
                session_id: "s\u{e9}".into(),
                sender_key: "k".into(),
                sender_claimed_ed25519: "e".into(),
                sender_user,
                forwarded: true,
            });
        }
        same_as_serde(&Withheld {
            code: "m.unverified".into(),
        });
        let mut meta = OutboundMeta {
            room_id: "!r".into(),
            ..OutboundMeta::default()
        };
        same_as_serde(&meta);
        meta.shared_with.insert("@b".into(), VecMap::new());
        meta.shared_with.insert(
            "@a".into(),
            [("D2".into(), "k2".into()), ("D1".into(), "k1".into())]
                .into_iter()
                .collect(),
        );
        same_as_serde(&meta);
        same_as_serde(&ReplayEntry {
            event_id: "$e".into(),
            timestamp: u64::MAX,
        });
    }

    #[test]
    fn a_missing_field_or_wrong_type_is_refused() {
        let value = serde_json::json!({"event_id": "$e", "timestamp": "1"});
        assert!(ReplayEntry::read_json(&value).is_none());
        let value = serde_json::json!({"event_id": "$e"});
        assert!(ReplayEntry::read_json(&value).is_none());
        let value = serde_json::json!({"event_id": "$e", "timestamp": 1, "extra": 2});
        assert!(ReplayEntry::read_json(&value).is_some());
    }
}
