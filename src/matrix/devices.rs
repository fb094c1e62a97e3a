//! Other devices: what `/keys/query` told us about them (checked), whose lists we track, and the
//! application's trust decision for each.

#[cfg(any(test, feature = "serde"))]
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::canonical;
use super::error::MachineError;
use super::machine::Machine;
use super::records::{self, table};
use crate::codec::json::{Fields, ObjectWriter};
use crate::crypto::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};
use crate::store::transact;
use crate::store::{Backend, Txn};
use crate::vec_map::VecMap;
use rand_core::CryptoRng;

/// The application's decision about a device. The machine shares room keys with unverified and
/// verified devices and never with blocked ones; what counts as verified is the application's
/// business (cross-signing and interactive verification are not part of olmo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(any(test, feature = "serde"), derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum Trust {
    /// No decision yet (the default).
    #[default]
    Unverified,
    /// The application verified the device.
    Verified,
    /// The application refuses the device: no room keys are shared with it.
    Blocked,
}

/// A device of some user, as its self-signed device keys describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "serde"), derive(Serialize, Deserialize))]
pub struct Device {
    /// The owner.
    pub user_id: String,
    /// The device id.
    pub device_id: String,
    /// Its Curve25519 identity key (unpadded base64).
    pub curve25519: String,
    /// Its Ed25519 fingerprint key (unpadded base64).
    pub ed25519: String,
    /// The application's decision.
    pub trust: Trust,
    /// The server no longer lists the device (kept to attribute old messages).
    pub deleted: bool,
}

impl Device {
    /// Whether room keys may be shared with it.
    pub fn receives_room_keys(&self) -> bool {
        !self.deleted && self.trust != Trust::Blocked
    }
}

/// All known devices of one user, by device id.
#[derive(Debug, Clone, Default)]
#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(crate) struct UserDevices {
    pub devices: VecMap<String, Device>,
}

/// A tracked user, and the generation of its device list (bumped at every change).
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(crate) struct Tracked {
    pub user_id: String,
    pub generation: u64,
}

/// What the largest accepted `/keys/query` response may list for one user.
const MAX_DEVICES_PER_USER: usize = 1_000;

impl<B: Backend> Machine<B> {
    pub(crate) async fn load_devices(
        &self,
        txn: &mut Txn<'_, B>,
        user_id: &str,
    ) -> Result<UserDevices, MachineError> {
        let name = self.name(table::DEVICES, &[user_id.as_bytes()]);
        self.load_devices_named(txn, &name).await
    }

    /// [`Machine::load_devices`] under the record name already computed.
    pub(crate) async fn load_devices_named(
        &self,
        txn: &mut Txn<'_, B>,
        name: &[u8],
    ) -> Result<UserDevices, MachineError> {
        Ok(records::load(txn, table::DEVICES, name)
            .await?
            .map(|(devices, _)| devices)
            .unwrap_or_default())
    }

    pub(crate) async fn store_devices(
        &self,
        txn: &mut Txn<'_, B>,
        user_id: &str,
        devices: &UserDevices,
    ) -> Result<(), MachineError> {
        let name = self.name(table::DEVICES, &[user_id.as_bytes()]);
        Ok(records::store(txn, table::DEVICES, &name, devices, &[]).await?)
    }

    /// The devices we know of `user_id` (deleted ones included, flagged).
    pub async fn devices(&self, user_id: &str) -> Result<Vec<Device>, MachineError> {
        let mut txn = Txn::new(&self.backend, &self.sealer);
        let devices = self.load_devices(&mut txn, user_id).await?;
        Ok(devices.devices.into_values().collect())
    }

    /// Records the application's decision about a device (one commit).
    pub async fn set_device_trust(
        &self,
        user_id: &str,
        device_id: &str,
        trust: Trust,
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        transact!(self, rng, |txn| {
            let mut devices = self.load_devices(&mut txn, user_id).await?;
            match devices.devices.get_mut(device_id) {
                None => Err(MachineError::Json("unknown device")),
                Some(device) => {
                    device.trust = trust;
                    self.store_devices(&mut txn, user_id, &devices).await
                }
            }
        })
    }

    /// Starts tracking the device lists of `users` (the members of our encrypted rooms): each
    /// new one is queried at the next [`Machine::outgoing_requests`] (one commit).
    pub async fn update_tracked_users(
        &self,
        users: &[&str],
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        transact!(self, rng, |txn| {
            let mut result = Ok(());
            for user in users {
                if let Err(error) = self.track(&mut txn, user, false).await {
                    result = Err(error);
                    break;
                }
            }
            result
        })
    }

    /// Tracks `user` if not yet tracked, and marks its list outdated if it is new or `changed`.
    pub(crate) async fn track(
        &self,
        txn: &mut Txn<'_, B>,
        user_id: &str,
        changed: bool,
    ) -> Result<(), MachineError> {
        let name = self.name(table::TRACKED, &[user_id.as_bytes()]);
        let existing: Option<(Tracked, _)> = records::load(txn, table::TRACKED, &name).await?;
        let generation = match (existing, changed) {
            (Some(_), false) => return Ok(()),
            (Some((tracked, _)), true) => tracked.generation + 1,
            (None, _) => 1,
        };
        let tracked = Tracked {
            user_id: user_id.to_owned(),
            generation,
        };
        records::store(txn, table::TRACKED, &name, &tracked, &[]).await?;
        let outdated = self.name(table::OUTDATED, &[user_id.as_bytes()]);
        Ok(records::store(txn, table::OUTDATED, &outdated, &tracked, &[]).await?)
    }

    /// Stops tracking `user` (we share no encrypted room any more); its known devices stay,
    /// to attribute old messages.
    pub(crate) async fn untrack(
        &self,
        txn: &mut Txn<'_, B>,
        user_id: &str,
    ) -> Result<(), MachineError> {
        for table in [table::TRACKED, table::OUTDATED] {
            let name = self.name(table, &[user_id.as_bytes()]);
            if txn.get(table, &name).await?.is_some() {
                records::remove(txn, table, &name).await?;
            }
        }
        Ok(())
    }

    /// Whether `user_id`'s devices are tracked.
    pub(crate) async fn is_tracked(
        &self,
        txn: &mut Txn<'_, B>,
        user_id: &str,
    ) -> Result<bool, MachineError> {
        let name = self.name(table::TRACKED, &[user_id.as_bytes()]);
        Ok(txn.get(table::TRACKED, &name).await?.is_some())
    }

    /// Applies a `/keys/query` response for the users queried at `generations`.
    pub(crate) async fn receive_keys_query(
        &self,
        txn: &mut Txn<'_, B>,
        generations: &[(String, u64)],
        response: &Value,
    ) -> Result<(), MachineError> {
        let listed = response
            .get("device_keys")
            .and_then(Value::as_object)
            .ok_or(MachineError::Json("device_keys"))?;
        for (user_id, generation) in generations {
            let Some(devices) = listed.get(user_id).and_then(Value::as_object) else {
                continue; // a failure for this user: it stays outdated
            };
            if devices.len() > MAX_DEVICES_PER_USER {
                return Err(MachineError::TooLarge("devices of one user"));
            }
            let mut known = self.load_devices(txn, user_id).await?;
            for device in known.devices.values_mut() {
                device.deleted = !devices.contains_key(&device.device_id);
            }
            for (device_id, keys) in devices {
                if user_id == &self.user_id && device_id == &self.device_id {
                    continue;
                }
                let Ok(device) = checked_device(user_id, device_id, keys) else {
                    continue; // a forged or broken entry is ignored, not trusted
                };
                match known.devices.get_mut(device_id) {
                    // A device's keys never change: other keys under a known device id are
                    // another device pretending, refused, and the keys we know are kept.
                    Some(old) => old.deleted = false,
                    None => {
                        known.devices.insert(device_id.clone(), device);
                    }
                }
            }
            self.store_devices(txn, user_id, &known).await?;
            let outdated = self.name(table::OUTDATED, &[user_id.as_bytes()]);
            let current: Option<(Tracked, _)> =
                records::load(txn, table::OUTDATED, &outdated).await?;
            if current.is_some_and(|(t, _)| t.generation == *generation) {
                records::remove(txn, table::OUTDATED, &outdated).await?;
            }
        }
        Ok(())
    }
}

/// A device from its `/keys/query` entry, if the entry names the user and device it is listed
/// under and its self-signature verifies under its own Ed25519 key.
pub(crate) fn checked_device(
    user_id: &str,
    device_id: &str,
    keys: &Value,
) -> Result<Device, MachineError> {
    let bad = MachineError::BadSignedObject;
    if keys.get("user_id").and_then(Value::as_str) != Some(user_id)
        || keys.get("device_id").and_then(Value::as_str) != Some(device_id)
    {
        return Err(bad("device keys listed under another user or device"));
    }
    let key = |algorithm: &str| {
        keys.get("keys")
            .and_then(|k| k.get(format!("{algorithm}:{device_id}")))
            .and_then(Value::as_str)
            .ok_or(bad("device keys without their keys"))
    };
    let curve25519 = key("curve25519")?;
    let ed25519 = key("ed25519")?;
    Curve25519PublicKey::from_base64(curve25519).map_err(|_| bad("curve25519 key"))?;
    let signing_key = Ed25519PublicKey::from_base64(ed25519).map_err(|_| bad("ed25519 key"))?;
    verify_signature(keys, user_id, &format!("ed25519:{device_id}"), &signing_key)?;
    Ok(Device {
        user_id: user_id.to_owned(),
        device_id: device_id.to_owned(),
        curve25519: curve25519.to_owned(),
        ed25519: ed25519.to_owned(),
        trust: Trust::Unverified,
        deleted: false,
    })
}

/// Verifies `signatures[user_id][key_id]` of a signed JSON object under `key`.
pub(crate) fn verify_signature(
    object: &Value,
    user_id: &str,
    key_id: &str,
    key: &Ed25519PublicKey,
) -> Result<(), MachineError> {
    let bad = MachineError::BadSignedObject;
    let signature = object
        .get("signatures")
        .and_then(|s| s.get(user_id))
        .and_then(|s| s.get(key_id))
        .and_then(Value::as_str)
        .ok_or(bad("missing signature"))?;
    let signature = Ed25519Signature::from_base64(signature).map_err(|_| bad("signature"))?;
    let bytes = canonical::signing_bytes(object)?;
    key.verify(bytes.as_bytes(), &signature)
        .map_err(|_| bad("signature does not verify"))
}

impl Trust {
    /// The name a record stores (the variant's, as serde writes it).
    fn stored_name(self) -> &'static str {
        match self {
            Trust::Unverified => "Unverified",
            Trust::Verified => "Verified",
            Trust::Blocked => "Blocked",
        }
    }

    fn from_stored_name(name: &str) -> Option<Self> {
        match name {
            "Unverified" => Some(Trust::Unverified),
            "Verified" => Some(Trust::Verified),
            "Blocked" => Some(Trust::Blocked),
            _ => None,
        }
    }
}

impl Device {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("user_id", &self.user_id)
            .str("device_id", &self.device_id)
            .str("curve25519", &self.curve25519)
            .str("ed25519", &self.ed25519)
            .str("trust", self.trust.stored_name())
            .bool("deleted", self.deleted);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            user_id: fields.str("user_id")?,
            device_id: fields.str("device_id")?,
            curve25519: fields.str("curve25519")?,
            ed25519: fields.str("ed25519")?,
            trust: Trust::from_stored_name(fields.get("trust")?.as_str()?)?,
            deleted: fields.bool("deleted")?,
        })
    }
}

impl records::Meta for UserDevices {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        let out = object.key("devices");
        out.push(b'{');
        for (i, (device_id, device)) in self.devices.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::codec::json::write_str(out, device_id);
            out.push(b':');
            device.write_json(out);
        }
        out.push(b'}');
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let mut devices = VecMap::new();
        for (device_id, device) in Fields::of(Fields::of(value)?.get("devices")?)?.iter() {
            devices.insert(device_id.clone(), Device::read_json(device)?);
        }
        Some(Self { devices })
    }
}

impl records::Meta for Tracked {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("user_id", &self.user_id)
            .u64("generation", self.generation);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            user_id: fields.str("user_id")?,
            generation: fields.u64("generation")?,
        })
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use crate::codec::json::same_as_serde;

    #[test]
    fn device_records_are_written_as_serde_wrote_them() {
        let mut devices = UserDevices::default();
        same_as_serde(&devices);
        for (id, trust, deleted) in [
            ("B\"", Trust::Blocked, true),
            ("A", Trust::Verified, false),
            ("C", Trust::Unverified, false),
        ] {
            let device = Device {
                user_id: "@u:x".into(),
                device_id: id.into(),
                curve25519: "c".into(),
                ed25519: "e".into(),
                trust,
                deleted,
            };
            devices.devices.insert(id.into(), device);
        }
        same_as_serde(&devices);
        same_as_serde(&Tracked {
            user_id: "@u\u{7f}:x".into(),
            generation: 42,
        });
    }
}
