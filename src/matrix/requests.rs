//! Requests the machine asks the application to send, each with an id. The machine keeps every
//! request it handed out in the store until [`Machine::mark_request_as_sent`] gives it the
//! server's response, so a request made in one commit (a room key for a new device, say) is
//! still there to send after a crash.
//!
//! [`Machine::mark_request_as_sent`]: super::Machine::mark_request_as_sent

#[cfg(any(test, feature = "serde"))]
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::Meta;
use crate::codec::json::{Fields, ObjectWriter, write_array, write_str, write_u64};

/// Which endpoint a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "serde"), derive(Serialize, Deserialize))]
#[cfg_attr(
    any(test, feature = "serde"),
    serde(tag = "kind", rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum RequestKind {
    /// `POST /_matrix/client/v3/keys/upload`.
    KeysUpload,
    /// `POST /_matrix/client/v3/keys/query`.
    KeysQuery {
        /// The device-list generation of each queried user when the request was made, so a
        /// change seen meanwhile is not marked done by an older answer.
        generations: Vec<(String, u64)>,
    },
    /// `POST /_matrix/client/v3/keys/claim`.
    KeysClaim,
    /// `PUT /_matrix/client/v3/sendToDevice/{event_type}/{txn_id}` with the request id as
    /// transaction id.
    ToDevice {
        /// The event type (`m.room.encrypted`, `m.room_key.withheld`).
        event_type: String,
    },
}

/// A request to send: the endpoint, the JSON body, and the id to hand back with the response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "serde"), derive(Serialize, Deserialize))]
pub struct OutgoingRequest {
    /// The id (also the transaction id of a to-device request).
    pub id: String,
    /// The endpoint.
    pub kind: RequestKind,
    /// The request body.
    pub body: Value,
}

impl OutgoingRequest {
    /// The path under the homeserver's base URL, and the HTTP method.
    pub fn endpoint(&self) -> (&'static str, String) {
        match &self.kind {
            RequestKind::KeysUpload => ("POST", "/_matrix/client/v3/keys/upload".into()),
            RequestKind::KeysQuery { .. } => ("POST", "/_matrix/client/v3/keys/query".into()),
            RequestKind::KeysClaim => ("POST", "/_matrix/client/v3/keys/claim".into()),
            RequestKind::ToDevice { event_type } => (
                "PUT",
                format!(
                    "/_matrix/client/v3/sendToDevice/{}/{}",
                    percent_encode(event_type),
                    percent_encode(&self.id)
                ),
            ),
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Meta for OutgoingRequest {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object.str("id", &self.id);
        let mut kind = ObjectWriter::new(object.key("kind"));
        match &self.kind {
            RequestKind::KeysUpload => {
                kind.str("kind", "keys_upload");
            }
            RequestKind::KeysQuery { generations } => {
                let out = kind.str("kind", "keys_query").key("generations");
                write_array(out, generations, |out, (user, generation)| {
                    out.push(b'[');
                    write_str(out, user);
                    out.push(b',');
                    write_u64(out, *generation);
                    out.push(b']');
                });
            }
            RequestKind::KeysClaim => {
                kind.str("kind", "keys_claim");
            }
            RequestKind::ToDevice { event_type } => {
                kind.str("kind", "to_device").str("event_type", event_type);
            }
        }
        kind.end();
        object.value("body", &self.body);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        let kind = Fields::of(fields.get("kind")?)?;
        let kind = match kind.get("kind")?.as_str()? {
            "keys_upload" => RequestKind::KeysUpload,
            "keys_query" => {
                let mut generations = Vec::new();
                for pair in kind.get("generations")?.as_array()? {
                    let [user, generation] = pair.as_array()?.as_slice() else {
                        return None;
                    };
                    generations.push((user.as_str()?.to_owned(), generation.as_u64()?));
                }
                RequestKind::KeysQuery { generations }
            }
            "keys_claim" => RequestKind::KeysClaim,
            "to_device" => RequestKind::ToDevice {
                event_type: kind.str("event_type")?,
            },
            _ => return None,
        };
        Some(Self {
            id: fields.str("id")?,
            kind,
            body: fields.get("body")?.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_requests_are_written_as_serde_wrote_them() {
        let body = serde_json::json!({"one_time_keys": {"b": 1, "a": [true, null, "x"]}});
        for kind in [
            RequestKind::KeysUpload,
            RequestKind::KeysQuery {
                generations: vec![],
            },
            RequestKind::KeysQuery {
                generations: vec![("@a:x".into(), 3), ("@b\"".into(), u64::MAX)],
            },
            RequestKind::KeysClaim,
            RequestKind::ToDevice {
                event_type: "m.room.encrypted".into(),
            },
        ] {
            let request = OutgoingRequest {
                id: "id\u{1}".into(),
                kind,
                body: body.clone(),
            };
            let mut ours = Vec::new();
            request.write_json(&mut ours);
            assert_eq!(ours, serde_json::to_vec(&request).unwrap());
            let value: Value = serde_json::from_slice(&ours).unwrap();
            assert_eq!(OutgoingRequest::read_json(&value), Some(request));
        }
    }
}
