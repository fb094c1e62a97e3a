//! Requests the machine asks the application to send, each with an id. The machine keeps every
//! request it handed out in the store until [`Machine::mark_request_as_sent`] gives it the
//! server's response, so a request made in one commit (a room key for a new device, say) is
//! still there to send after a crash.
//!
//! [`Machine::mark_request_as_sent`]: super::Machine::mark_request_as_sent

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which endpoint a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
