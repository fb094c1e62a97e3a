//! A homeserver in memory, as much of one as the machine needs: key uploads, device queries,
//! one-time key claims, to-device delivery, device-list changes and one-time key counts. It
//! serves any device that speaks the Client-Server API's JSON (olmo machines here, a
//! matrix-nio device through its peer).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value, json};

/// A user's device on the server.
type DeviceName = (String, String);

#[derive(Default)]
pub struct Homeserver {
    device_keys: BTreeMap<DeviceName, Value>,
    one_time_keys: BTreeMap<DeviceName, VecDeque<(String, Value)>>,
    fallback_keys: BTreeMap<DeviceName, (String, Value)>,
    fallback_used: BTreeSet<DeviceName>,
    to_device: BTreeMap<DeviceName, Vec<Value>>,
    /// Users whose device lists changed, per device that has not synced since.
    changed: BTreeMap<DeviceName, BTreeSet<String>>,
}

impl Homeserver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a device so it gets device-list changes (call before its first upload).
    pub fn join(&mut self, user: &str, device: &str) {
        self.changed
            .entry((user.to_owned(), device.to_owned()))
            .or_default();
    }

    /// Removes a device (its keys and queue), telling everyone its user's list changed.
    pub fn delete_device(&mut self, user: &str, device: &str) {
        let name = (user.to_owned(), device.to_owned());
        self.device_keys.remove(&name);
        self.one_time_keys.remove(&name);
        self.fallback_keys.remove(&name);
        self.to_device.remove(&name);
        self.changed.remove(&name);
        self.announce(user);
    }

    fn announce(&mut self, user: &str) {
        for users in self.changed.values_mut() {
            users.insert(user.to_owned());
        }
    }

    /// The response to a request from `user`'s `device` to `method` `path` with `body`.
    pub fn handle(&mut self, user: &str, device: &str, path: &str, body: &Value) -> Value {
        let name = (user.to_owned(), device.to_owned());
        if path.ends_with("/keys/upload") {
            if let Some(keys) = body.get("device_keys") {
                self.device_keys.insert(name.clone(), keys.clone());
                self.announce(user);
            }
            if let Some(keys) = body.get("one_time_keys").and_then(Value::as_object) {
                let queue = self.one_time_keys.entry(name.clone()).or_default();
                for (id, key) in keys {
                    queue.push_back((id.clone(), key.clone()));
                }
            }
            let fallback = body.get("fallback_keys").and_then(Value::as_object);
            if let Some((id, key)) = fallback.and_then(|keys| keys.iter().next()) {
                self.fallback_keys
                    .insert(name.clone(), (id.clone(), key.clone()));
                self.fallback_used.remove(&name);
            }
            json!({ "one_time_key_counts": { "signed_curve25519": self.count(&name) } })
        } else if path.ends_with("/keys/query") {
            let mut listed = Map::new();
            for queried in body["device_keys"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(u, _)| u)
            {
                let devices: Map<String, Value> = self
                    .device_keys
                    .iter()
                    .filter(|((u, _), _)| u == queried)
                    .map(|((_, d), keys)| (d.clone(), keys.clone()))
                    .collect();
                listed.insert(queried.clone(), Value::Object(devices));
            }
            json!({ "device_keys": listed, "failures": {} })
        } else if path.ends_with("/keys/claim") {
            let mut claimed = Map::new();
            for (claim_user, devices) in body["one_time_keys"].as_object().into_iter().flatten() {
                let mut per_device = Map::new();
                for (claim_device, _) in devices.as_object().into_iter().flatten() {
                    let target = (claim_user.clone(), claim_device.clone());
                    let key = self
                        .one_time_keys
                        .get_mut(&target)
                        .and_then(VecDeque::pop_front)
                        .or_else(|| {
                            self.fallback_used.insert(target.clone());
                            self.fallback_keys.get(&target).cloned()
                        });
                    if let Some((id, key)) = key {
                        per_device.insert(claim_device.clone(), json!({ id: key }));
                    }
                }
                claimed.insert(claim_user.clone(), Value::Object(per_device));
            }
            json!({ "one_time_keys": claimed, "failures": {} })
        } else if path.contains("/sendToDevice/") {
            let event_type = path.split('/').rev().nth(1).unwrap_or_default().to_owned();
            for (to_user, devices) in body["messages"].as_object().into_iter().flatten() {
                for (to_device, content) in devices.as_object().into_iter().flatten() {
                    let event = json!({ "type": event_type, "sender": user, "content": content });
                    self.to_device
                        .entry((to_user.clone(), to_device.clone()))
                        .or_default()
                        .push(event);
                }
            }
            json!({})
        } else {
            panic!("the harness does not serve {path}");
        }
    }

    fn count(&self, name: &DeviceName) -> usize {
        self.one_time_keys.get(name).map_or(0, VecDeque::len)
    }

    /// What a `/sync` gives the device: to-device events (taken), changed users (taken), its
    /// one-time key count and unused fallback key types.
    pub fn sync(&mut self, user: &str, device: &str) -> Sync {
        let name = (user.to_owned(), device.to_owned());
        let unused_fallback =
            if self.fallback_keys.contains_key(&name) && !self.fallback_used.contains(&name) {
                vec!["signed_curve25519".to_owned()]
            } else {
                Vec::new()
            };
        Sync {
            to_device: self.to_device.remove(&name).unwrap_or_default(),
            changed: self
                .changed
                .get_mut(&name)
                .map(std::mem::take)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            one_time_key_count: self.count(&name) as u64,
            unused_fallback_key_types: unused_fallback,
        }
    }
}

pub struct Sync {
    pub to_device: Vec<Value>,
    pub changed: Vec<String>,
    pub one_time_key_count: u64,
    pub unused_fallback_key_types: Vec<String>,
}
