//! What the client knows of a joined room: its joined members and its encryption settings.
//! Loaded from the server on first use (so a restarted client needs nothing stored), then kept
//! current from the state events of each sync.

use std::collections::BTreeSet;

use olmo::matrix::RoomSettings;
use serde_json::Value;

use crate::Error;
use crate::http::{Http, encode};

/// A joined room.
#[derive(Debug, Clone, Default)]
pub struct Room {
    /// Users whose membership is `join`: the ones room keys go to (invited users get none
    /// until they join).
    pub members: BTreeSet<String>,
    /// The `m.room.encryption` settings; `None` for a room in the clear (or an algorithm olmo
    /// does not speak).
    pub settings: Option<RoomSettings>,
    /// An `m.room.encryption` event was seen: the room must never be sent to in the clear,
    /// even when its algorithm is unknown.
    pub encrypted: bool,
}

impl Room {
    /// The room's members and encryption state, as the server has them now.
    pub(crate) fn load(http: &Http, room_id: &str) -> Result<Self, Error> {
        let room = encode(room_id);
        let joined = http.request(
            "GET",
            &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
            None,
            None,
        )?;
        let members = joined
            .get("joined")
            .and_then(Value::as_object)
            .ok_or(Error::Response("joined"))?
            .keys()
            .cloned()
            .collect();
        let mut loaded = Self {
            members,
            ..Self::default()
        };
        let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.encryption/");
        match http.request("GET", &path, None, None) {
            Ok(content) => loaded.set_encryption(&content),
            Err(Error::Status { status: 404, .. }) => {}
            Err(error) => return Err(error),
        }
        Ok(loaded)
    }

    /// Applies one state event of a sync (membership and encryption; others are ignored).
    pub(crate) fn apply_state(&mut self, event: &Value) {
        let (Some(kind), Some(state_key)) = (
            event.get("type").and_then(Value::as_str),
            event.get("state_key").and_then(Value::as_str),
        ) else {
            return;
        };
        let content = event.get("content").unwrap_or(&Value::Null);
        match kind {
            "m.room.member" => {
                if content.get("membership").and_then(Value::as_str) == Some("join") {
                    self.members.insert(state_key.to_owned());
                } else {
                    self.members.remove(state_key);
                }
            }
            "m.room.encryption" if state_key.is_empty() => self.set_encryption(content),
            _ => {}
        }
    }

    fn set_encryption(&mut self, content: &Value) {
        self.encrypted = true;
        self.settings = RoomSettings::from_encryption_content(content);
    }
}
