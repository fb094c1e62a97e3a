//! The metadata of the machine's records (the account, the clocks, device lists, trust
//! decisions, failure counts, messages already decrypted) and its JSON, written and read by
//! hand ([`crate::codec::json`]): the bytes the serde derives wrote, read as they read them.

use serde_json::Value;

use super::contacts::{DeviceListRecord, ListedState};
use super::machine::{AccountMeta, TrustPolicy};
use super::messages::{DecryptOutcome, EncryptedStanza, Failures, ReceivedMessage};
use super::trust::{Trust, TrustRecord};
use crate::codec::json::{Fields, ObjectWriter, write_array, write_u64};
use crate::codec::json_value::str_len;
use crate::omemo::{Clocks, Version};
use crate::store::records::Meta;
use crate::vec_map::VecMap;

/// A unit variant's name, as the derive names it.
fn version_name(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "Omemo2",
        Version::Omemo03 => "Omemo03",
    }
}

fn version_of(value: &Value) -> Option<Version> {
    match value.as_str()? {
        "Omemo2" => Some(Version::Omemo2),
        "Omemo03" => Some(Version::Omemo03),
        _ => None,
    }
}

fn trust_name(trust: Trust) -> &'static str {
    match trust {
        Trust::Trusted => "Trusted",
        Trust::Distrusted => "Distrusted",
        Trust::Undecided => "Undecided",
        Trust::Blind => "Blind",
    }
}

fn trust_of(value: &Value) -> Option<Trust> {
    match value.as_str()? {
        "Trusted" => Some(Trust::Trusted),
        "Distrusted" => Some(Trust::Distrusted),
        "Undecided" => Some(Trust::Undecided),
        "Blind" => Some(Trust::Blind),
        _ => None,
    }
}

fn policy_name(policy: TrustPolicy) -> &'static str {
    match policy {
        TrustPolicy::BlindTrustBeforeVerification => "BlindTrustBeforeVerification",
        TrustPolicy::TrustOnFirstUse => "TrustOnFirstUse",
    }
}

fn policy_of(value: &Value) -> Option<TrustPolicy> {
    match value.as_str()? {
        "BlindTrustBeforeVerification" => Some(TrustPolicy::BlindTrustBeforeVerification),
        "TrustOnFirstUse" => Some(TrustPolicy::TrustOnFirstUse),
        _ => None,
    }
}

impl Meta for AccountMeta {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("jid", &self.jid)
            .u64("device_id", self.device_id.into())
            .str("policy", policy_name(self.policy))
            .opt_str("label", self.label.as_deref());
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            jid: fields.str("jid")?,
            device_id: fields.u32("device_id")?,
            policy: policy_of(fields.get("policy")?)?,
            label: fields.opt_str("label")?,
        })
    }
}

impl Meta for Clocks {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .u64("omemo2", self.omemo2)
            .u64("omemo03", self.omemo03);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            omemo2: fields.u64("omemo2")?,
            omemo03: fields.u64("omemo03")?,
        })
    }
}

impl Meta for DeviceListRecord {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        let out = object.key("devices");
        out.push(b'{');
        for (i, (id, state)) in self.devices.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // A map's number keys are strings in JSON.
            out.push(b'"');
            write_u64(out, (*id).into());
            out.extend_from_slice(b"\":");
            let mut inner = ObjectWriter::new(out);
            inner
                .opt_str("label", state.label.as_deref())
                .bool("active", state.active);
            inner.end();
        }
        out.push(b'}');
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let mut devices = VecMap::new();
        for (id, state) in Fields::of(Fields::of(value)?.get("devices")?)?.iter() {
            let state = Fields::of(state)?;
            let state = ListedState {
                label: state.opt_str("label")?,
                active: state.bool("active")?,
            };
            devices.insert(id.parse::<u32>().ok()?, state);
        }
        Some(Self { devices })
    }
}

impl Meta for TrustRecord {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("jid", &self.jid)
            .str("fingerprint", &self.fingerprint)
            .str("trust", trust_name(self.trust));
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            jid: fields.str("jid")?,
            fingerprint: fields.str("fingerprint")?,
            trust: trust_of(fields.get("trust")?)?,
        })
    }
}

impl Meta for Failures {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object.u64("in_a_row", self.in_a_row.into());
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        Some(Self {
            in_a_row: Fields::of(value)?.u32("in_a_row")?,
        })
    }
}

fn write_stanza(out: &mut Vec<u8>, stanza: &EncryptedStanza) {
    let mut object = ObjectWriter::new(out);
    object
        .str("version", version_name(stanza.version))
        .str("to", &stanza.to)
        .str("payload", &stanza.payload);
    object.end();
}

fn read_stanza(value: &Value) -> Option<EncryptedStanza> {
    let fields = Fields::of(value)?;
    Some(EncryptedStanza {
        version: version_of(fields.get("version")?)?,
        to: fields.str("to")?,
        payload: fields.str("payload")?,
    })
}

fn write_message(out: &mut Vec<u8>, message: &ReceivedMessage) {
    let mut object = ObjectWriter::new(out);
    object
        .str("version", version_name(message.version))
        .u64("sender_device", message.sender_device.into())
        .opt_str("body", message.body.as_deref())
        .opt_str("time", message.time.as_deref())
        .str("fingerprint", &message.fingerprint)
        .str("trust", trust_name(message.trust));
    object.end();
}

fn read_message(value: &Value) -> Option<ReceivedMessage> {
    let fields = Fields::of(value)?;
    Some(ReceivedMessage {
        version: version_of(fields.get("version")?)?,
        sender_device: fields.u32("sender_device")?,
        body: fields.opt_str("body")?,
        time: fields.opt_str("time")?,
        fingerprint: fields.str("fingerprint")?,
        trust: trust_of(fields.get("trust")?)?,
    })
}

impl Meta for DecryptOutcome {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        let out = object.key("message");
        match &self.message {
            Some(message) => write_message(out, message),
            None => out.extend_from_slice(b"null"),
        }
        write_array(object.key("replies"), &self.replies, write_stanza);
        object.bool("republish", self.republish);
        object.end();
    }

    /// The body is a plaintext of any length: the record is allocated for all of it escaped,
    /// to the byte (the 256 bytes cover the keys, numbers and punctuation).
    fn json_len_bound(&self) -> usize {
        let escaped = str_len;
        let message = self.message.as_ref().map_or(0, |message| {
            escaped(message.body.as_deref().unwrap_or(""))
                + escaped(message.time.as_deref().unwrap_or(""))
                + escaped(&message.fingerprint)
        });
        let replies: usize = self
            .replies
            .iter()
            .map(|reply| 64 + escaped(&reply.to) + escaped(&reply.payload))
            .sum();
        256 + message + replies
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        let message = match fields.get("message") {
            None | Some(Value::Null) => None,
            Some(message) => Some(read_message(message)?),
        };
        let replies = fields
            .get("replies")?
            .as_array()?
            .iter()
            .map(read_stanza)
            .collect::<Option<_>>()?;
        Some(Self {
            message,
            replies,
            republish: fields.bool("republish")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::same_as_serde;

    #[test]
    fn account_and_clocks_write_what_serde_wrote() {
        for (label, policy) in [
            (None, TrustPolicy::BlindTrustBeforeVerification),
            (Some("phone \"é\"".to_owned()), TrustPolicy::TrustOnFirstUse),
        ] {
            same_as_serde(&AccountMeta {
                jid: "a@example.org".into(),
                device_id: (1 << 31) - 1,
                policy,
                label,
            });
        }
        same_as_serde(&Clocks {
            omemo2: u64::MAX,
            omemo03: 0,
        });
    }

    #[test]
    fn device_lists_write_what_serde_wrote() {
        same_as_serde(&DeviceListRecord::default());
        let mut devices = VecMap::new();
        for (id, label, active) in [(9, None, true), (10, Some("x"), false), (1, None, false)] {
            let label = label.map(str::to_owned);
            devices.insert(id, ListedState { label, active });
        }
        same_as_serde(&DeviceListRecord { devices });
    }

    #[test]
    fn trust_and_failures_write_what_serde_wrote() {
        for trust in [
            Trust::Trusted,
            Trust::Distrusted,
            Trust::Undecided,
            Trust::Blind,
        ] {
            same_as_serde(&TrustRecord {
                jid: "b@example.org".into(),
                fingerprint: "05ab".into(),
                trust,
            });
        }
        same_as_serde(&Failures { in_a_row: u32::MAX });
    }

    #[test]
    fn decrypt_outcomes_write_what_serde_wrote() {
        same_as_serde(&DecryptOutcome::default());
        let stanza = |version| EncryptedStanza {
            version,
            to: "c@example.org".into(),
            payload: "<encrypted xmlns='urn:xmpp:omemo:2'/>".into(),
        };
        same_as_serde(&DecryptOutcome {
            message: Some(ReceivedMessage {
                version: Version::Omemo03,
                sender_device: 42,
                body: Some("hi\n\u{1}".into()),
                time: None,
                fingerprint: "05cd".into(),
                trust: Trust::Blind,
            }),
            replies: vec![stanza(Version::Omemo2), stanza(Version::Omemo03)],
            republish: true,
        });
    }

    /// A plaintext that escapes to six times its length, and long answers: the record's buffer
    /// is allocated once, never grown (growing would leave an unwiped copy of the body).
    #[test]
    fn decrypt_outcome_records_never_grow() {
        let long = |byte: char, n| std::iter::repeat_n(byte, n).collect::<String>();
        let outcome = DecryptOutcome {
            message: Some(ReceivedMessage {
                version: Version::Omemo2,
                sender_device: u32::MAX,
                body: Some(long('\u{1}', 5000)),
                time: Some(long('"', 300)),
                fingerprint: long('\\', 300),
                trust: Trust::Distrusted,
            }),
            replies: vec![
                EncryptedStanza {
                    version: Version::Omemo2,
                    to: long('\u{7f}', 700),
                    payload: long('<', 3000),
                };
                3
            ],
            republish: true,
        };
        let bound = outcome.json_len_bound();
        let packed = crate::store::records::pack_meta(&outcome, &[]);
        assert!(packed.len() > 30_000, "the escapes were written");
        assert_eq!(packed.capacity(), 4 + bound + 4);
        // Tight: the whole buffer is wiped when the record drops.
        assert!(bound < packed.len() + 256);
    }

    #[test]
    fn refuses_what_the_derives_refused() {
        let bad = [
            serde_json::json!({"in_a_row": 1u64 << 32}),
            serde_json::json!({"in_a_row": -1}),
            serde_json::json!([1]),
        ];
        for value in &bad {
            assert!(Failures::read_json(value).is_none());
        }
        let list = serde_json::json!({"devices": {"x": {"label": null, "active": true}}});
        assert!(DeviceListRecord::read_json(&list).is_none());
        let trust = serde_json::json!({"jid": "a", "fingerprint": "b", "trust": "Maybe"});
        assert!(TrustRecord::read_json(&trust).is_none());
    }
}
