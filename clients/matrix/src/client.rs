//! The client: one device's machine on its SQLite store, the homeserver connection, and the
//! joined rooms.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use olmo::matrix::{AppRecord, Machine, SyncChanges, UnableToDecrypt};
use olmo::persist::StorageKey;
use olmo::store::block_on;
use olmo::time::Timestamp;
use olmo_sqlite::SqliteStore;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::Error;
use crate::http::{Http, Session, encode};
use crate::inbox::{Entry, Inbox};
use crate::rooms::Room;
use crate::timeline::{EventKind, TimelineEvent};

/// The application table and key of the sync token, committed with each sync's changes.
const SYNC_TABLE: &str = "sync";
const SYNC_KEY: &[u8] = b"next_batch";
/// Rounds of sending requests before giving up (each answer may ask for one more).
const MAX_FLUSH_ROUNDS: usize = 8;
/// Events kept for another try when their room key has not arrived yet.
const MAX_PENDING: usize = 256;
/// Events fetched to fill one room's gap after a limited sync (a bot away for long answers
/// the newest of what it missed).
const MAX_GAP: usize = 1000;

/// A Matrix device with end-to-end encryption, blocking.
pub struct Client {
    http: Http,
    machine: Machine<SqliteStore>,
    /// The sync token to continue from; `None` before the first sync.
    since: Option<String>,
    rooms: BTreeMap<String, Room>,
    /// Encrypted events whose key may still come: (room id, event).
    pending: VecDeque<(String, Value)>,
    /// Events kept until handled ([`Client::keep_inbox`]); `None`: each event is handed out once.
    inbox: Option<Inbox>,
    /// When the last `/sync` response arrived, and the time spent in requests until then.
    synced_at: Option<(Instant, Duration)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("machine", &self.machine)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens (or creates) the device's store at `path` and resumes from its sync token. The
    /// store must have been made for `session`'s user and device.
    pub fn open(
        session: &Session,
        path: impl AsRef<Path>,
        key: &StorageKey,
    ) -> Result<Self, Error> {
        let store = SqliteStore::open(path)?;
        let machine = block_on(Machine::open(
            store,
            key,
            &session.user_id,
            &session.device_id,
            &mut rand::rng(),
        ))?;
        let since = block_on(machine.app_record(SYNC_TABLE, SYNC_KEY))?
            .and_then(|token| String::from_utf8(token.to_vec()).ok());
        let mut client = Self {
            http: Http::new(&session.base_url, Some(&session.access_token)),
            machine,
            since,
            rooms: BTreeMap::new(),
            pending: VecDeque::new(),
            inbox: None,
            synced_at: None,
        };
        client.flush()?;
        Ok(client)
    }

    /// The machine (devices, trust, identity keys).
    pub fn machine(&self) -> &Machine<SqliteStore> {
        &self.machine
    }

    /// The sync token the next sync continues from.
    pub fn since(&self) -> Option<&str> {
        self.since.as_deref()
    }

    /// The time since the last `/sync` response arrived, and how much of it went to waiting
    /// for the homeserver (the rest is the client's own: the machine, the store, JSON).
    pub fn time_since_sync(&self) -> Option<(Duration, Duration)> {
        let (at, spent) = self.synced_at?;
        Some((at.elapsed(), self.http.spent().saturating_sub(spent)))
    }

    /// Delivers every event at least once, crashes included: from now on each sync's timeline
    /// events and invitations go into an inbox committed with its sync token, and
    /// [`Client::sync_once`] hands out every event of the inbox (those kept from before the
    /// last stop first) until it is marked [`Client::handled`]. An event whose room key has not
    /// come yet is simply left unhandled: it is decrypted again at each sync. The first sync of
    /// a new store adds nothing, nor do the events of a room from before we joined it: that is
    /// history, not news (read it with [`Client::history`]). When a
    /// sync's timeline of a room is limited (the client was away for many events), the events
    /// in between are fetched from `/messages`, so none is skipped.
    pub fn keep_inbox(&mut self) -> Result<(), Error> {
        let (table, key) = Inbox::location();
        let stored = block_on(self.machine.app_record(table, key))?;
        self.inbox = Some(Inbox::load(stored.as_deref().map(Vec::as_slice)));
        Ok(())
    }

    /// Removes a handed-out event from the inbox; the next sync's commit makes that durable
    /// (until then a crash hands it out again, so answer it idempotently, as
    /// [`Client::send_message`] does).
    pub fn handled(&mut self, event: &TimelineEvent) {
        if let Some(inbox) = &mut self.inbox {
            inbox.remove(&event.room_id, &event.event_id);
        }
    }

    /// Sends every request the machine has queued (key uploads and queries, claims, to-device
    /// messages) and hands it each answer, until nothing is left.
    pub fn flush(&mut self) -> Result<(), Error> {
        for _ in 0..MAX_FLUSH_ROUNDS {
            let requests = block_on(self.machine.outgoing_requests(&mut rand::rng()))?;
            if requests.is_empty() {
                return Ok(());
            }
            for request in requests {
                let (method, path) = request.endpoint();
                let response = self
                    .http
                    .request(method, &path, Some(&request.body), None)?;
                block_on(self.machine.mark_request_as_sent(
                    &request.id,
                    &response,
                    &mut rand::rng(),
                ))?;
            }
        }
        Err(Error::RequestsUnsettled)
    }

    /// One `/sync` (waiting up to `timeout_ms` for news): to-device events, device lists and
    /// key counts go to the machine in one commit with the new sync token; then the joined
    /// rooms' state is applied and their timeline events are returned, decrypted.
    ///
    /// The token is committed before the timeline is handed back: an application that must not
    /// miss an event after a crash keeps what it needs of them in the same way, as
    /// [`AppRecord`]s of its own.
    pub fn sync_once(&mut self, timeout_ms: u64) -> Result<Vec<TimelineEvent>, Error> {
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
        if let Some(since) = &self.since {
            path.push_str(&format!("&since={}", encode(since)));
        }
        let wait = Duration::from_millis(timeout_ms);
        let sync = self.http.request("GET", &path, None, Some(wait))?;
        self.synced_at = Some((Instant::now(), self.http.spent()));
        let next_batch = sync
            .get("next_batch")
            .and_then(Value::as_str)
            .ok_or(Error::Response("next_batch"))?
            .to_owned();

        let to_device = array(&sync, &["to_device", "events"]);
        let changed = strings(&sync, &["device_lists", "changed"]);
        let left = strings(&sync, &["device_lists", "left"]);
        let fallback = strings(&sync, &["device_unused_fallback_key_types"]);
        let changes = SyncChanges {
            to_device_events: &to_device,
            changed_users: &changed,
            left_users: &left,
            one_time_key_count: sync
                .pointer("/device_one_time_keys_count/signed_curve25519")
                .and_then(Value::as_u64),
            unused_fallback_key_types: sync
                .get("device_unused_fallback_key_types")
                .map(|_| fallback.as_slice()),
        };
        let mut records = vec![AppRecord {
            table: SYNC_TABLE.to_owned(),
            key: SYNC_KEY.to_vec(),
            value: Zeroizing::new(next_batch.clone().into_bytes()),
        }];
        let first_sync = self.since.is_none();
        let news = self.news(&sync)?;
        if let Some(inbox) = &mut self.inbox {
            for entry in news.iter().filter(|e| !first_sync || is_invite(e)) {
                inbox.push(entry.clone());
            }
            records.push(inbox.record());
        }
        block_on(
            self.machine
                .receive_sync_changes(changes, &records, &mut rand::rng()),
        )?;
        self.since = Some(next_batch);
        self.flush()?;

        let empty = serde_json::Map::new();
        let left = sync.pointer("/rooms/leave").and_then(Value::as_object);
        for room_id in left.unwrap_or(&empty).keys() {
            self.rooms.remove(room_id);
        }
        let entries = match &self.inbox {
            Some(inbox) => inbox.entries.clone(),
            None => news,
        };
        // Without an inbox, keys that came in this sync may open events that failed before.
        let mut events = match self.inbox {
            Some(_) => Vec::new(),
            None => self.retry_pending()?,
        };
        for entry in entries {
            events.push(match entry {
                Entry::Event { room_id, event } => self.read_event(&room_id, event)?,
                Entry::Invite { room_id, sender } => TimelineEvent {
                    room_id,
                    event_id: String::new(),
                    sender,
                    origin_server_ts: 0,
                    kind: EventKind::Invite,
                },
            });
        }
        Ok(events)
    }

    /// A sync's timeline events (applying the joined rooms' state on the way) and invitations.
    /// With an inbox, the events a limited timeline left out are fetched too.
    fn news(&mut self, sync: &Value) -> Result<Vec<Entry>, Error> {
        let mut news = Vec::new();
        let empty = serde_json::Map::new();
        let rooms = sync.pointer("/rooms/join").and_then(Value::as_object);
        for (room_id, room) in rooms.unwrap_or(&empty) {
            for event in array(room, &["state", "events"]) {
                self.apply_state(room_id, &event);
            }
            let timeline = array(room, &["timeline", "events"]);
            // With an inbox, what happened before we joined is history, not news.
            let me = self.machine.user_id();
            let joined_at = timeline.iter().rposition(|e| is_join_of(e, me));
            let limited = room.pointer("/timeline/limited") == Some(&Value::Bool(true));
            let prev_batch = room.pointer("/timeline/prev_batch").and_then(Value::as_str);
            if let (true, None, Some(_), Some(since), Some(prev_batch)) =
                (limited, joined_at, &self.inbox, &self.since, prev_batch)
            {
                for event in self.gap(room_id, prev_batch, since)? {
                    let room_id = room_id.clone();
                    news.push(Entry::Event { room_id, event });
                }
            }
            for (n, event) in timeline.into_iter().enumerate() {
                self.apply_state(room_id, &event);
                if self.inbox.is_none() || joined_at.is_none_or(|at| n > at) {
                    let room_id = room_id.clone();
                    news.push(Entry::Event { room_id, event });
                }
            }
        }
        let invites = sync.pointer("/rooms/invite").and_then(Value::as_object);
        for (room_id, room) in invites.unwrap_or(&empty) {
            let ours = array(room, &["invite_state", "events"])
                .into_iter()
                .find(|e| {
                    e.get("type").and_then(Value::as_str) == Some("m.room.member")
                        && e.get("state_key").and_then(Value::as_str)
                            == Some(self.machine.user_id())
                });
            let sender = ours
                .as_ref()
                .and_then(|e| e.get("sender").and_then(Value::as_str))
                .unwrap_or_default();
            news.push(Entry::Invite {
                room_id: room_id.clone(),
                sender: sender.to_owned(),
            });
        }
        Ok(news)
    }

    /// The events a limited timeline left out, from its `prev_batch` back to `since` (where
    /// the previous sync stopped), oldest first; at most [`MAX_GAP`] of the newest.
    fn gap(&self, room_id: &str, prev_batch: &str, since: &str) -> Result<Vec<Value>, Error> {
        let mut events = Vec::new();
        let mut from = prev_batch.to_owned();
        loop {
            let path = format!(
                "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100&from={}&to={}",
                encode(room_id),
                encode(&from),
                encode(since)
            );
            let page = self.http.request("GET", &path, None, None)?;
            let mut chunk = array(&page, &["chunk"]);
            let mut last_page = chunk.is_empty();
            // Newest first: our join ends the gap (what came before it is history).
            if let Some(at) = chunk
                .iter()
                .position(|e| is_join_of(e, self.machine.user_id()))
            {
                chunk.truncate(at);
                last_page = true;
            }
            events.extend(chunk);
            match page.get("end").and_then(Value::as_str) {
                Some(end) if !last_page && end != from && events.len() < MAX_GAP => {
                    from = end.to_owned();
                }
                _ => break,
            }
        }
        events.truncate(MAX_GAP);
        events.reverse();
        Ok(events)
    }

    /// Joins a room (by id; an invitation or a public room).
    pub fn join(&mut self, room_id: &str) -> Result<(), Error> {
        let path = format!("/_matrix/client/v3/join/{}", encode(room_id));
        self.http.request("POST", &path, Some(&json!({})), None)?;
        // Loaded afresh on first use, with us among the members.
        self.rooms.remove(room_id);
        Ok(())
    }

    /// The room as the client knows it, loaded from the server on first use.
    pub fn room(&mut self, room_id: &str) -> Result<&Room, Error> {
        if !self.rooms.contains_key(room_id) {
            let room = Room::load(&self.http, room_id)?;
            self.rooms.insert(room_id.to_owned(), room);
        }
        self.rooms.get(room_id).ok_or(Error::Response("room"))
    }

    /// Sends a text message; in an encrypted room the room key first goes to every joined
    /// member's device that lacks it (Olm sessions claimed as needed; the machine rotates the
    /// key when a device that had it is gone). A device with no one-time key left gets no key.
    /// Returns the event id.
    pub fn send_text(&mut self, room_id: &str, body: &str) -> Result<String, Error> {
        let content = json!({"msgtype": "m.text", "body": body});
        self.send_message(room_id, &content, &transaction_id())
    }

    /// Sends an `m.room.message` with any `content` (an `m.notice`, say), as
    /// [`Client::send_text`] does, under a transaction id chosen by the caller: the homeserver
    /// keeps the first event it accepted under an id (for this device), so sending again after
    /// a crash (a reply to the same event, say) makes no second event. Each try still encrypts
    /// afresh: a Megolm index is never used twice.
    pub fn send_message(
        &mut self,
        room_id: &str,
        content: &Value,
        transaction_id: &str,
    ) -> Result<String, Error> {
        let content = content.clone();
        let room = self.room(room_id)?.clone();
        let (event_type, content) = match (room.encrypted, room.settings) {
            (false, _) => ("m.room.message", content),
            (true, None) => return Err(Error::UnsupportedEncryption(room_id.to_owned())),
            (true, Some(settings)) => {
                let members: Vec<&str> = room.members.iter().map(String::as_str).collect();
                block_on(
                    self.machine
                        .update_tracked_users(&members, &mut rand::rng()),
                )?;
                self.flush()?; // device queries
                block_on(self.machine.missing_sessions(&members, &mut rand::rng()))?;
                self.flush()?; // the key claim
                let now = Timestamp::now();
                block_on(self.machine.share_room_key(
                    room_id,
                    &members,
                    &settings,
                    now,
                    &mut rand::rng(),
                ))?;
                self.flush()?; // the room key, to-device
                let encrypted = block_on(self.machine.encrypt_room_event(
                    room_id,
                    "m.room.message",
                    &content,
                    &settings,
                    now,
                    &mut rand::rng(),
                ))?;
                ("m.room.encrypted", encrypted)
            }
        };
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{event_type}/{}",
            encode(room_id),
            encode(transaction_id)
        );
        let response = self.http.request("PUT", &path, Some(&content), None)?;
        response
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(Error::Response("event_id"))
    }

    /// The room's latest `limit` events (newest first), decrypted from the keys in the store.
    pub fn history(&mut self, room_id: &str, limit: u32) -> Result<Vec<TimelineEvent>, Error> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit={limit}",
            encode(room_id)
        );
        let page = self.http.request("GET", &path, None, None)?;
        let mut events = Vec::new();
        for event in array(&page, &["chunk"]) {
            events.push(self.decrypt(room_id, event)?);
        }
        Ok(events)
    }

    fn apply_state(&mut self, room_id: &str, event: &Value) {
        if let Some(room) = self.rooms.get_mut(room_id) {
            room.apply_state(event);
        }
    }

    /// Decrypts a timeline event, keeping it for another try if its key may still come (the
    /// inbox keeps it anyway).
    fn read_event(&mut self, room_id: &str, event: Value) -> Result<TimelineEvent, Error> {
        let read = self.decrypt(room_id, event.clone())?;
        if let (None, EventKind::Undecryptable(UnableToDecrypt::NoSession { .. })) =
            (&self.inbox, &read.kind)
        {
            if self.pending.len() == MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back((room_id.to_owned(), event));
        }
        Ok(read)
    }

    /// The pending events that decrypt now; the others stay pending.
    fn retry_pending(&mut self) -> Result<Vec<TimelineEvent>, Error> {
        let mut opened = Vec::new();
        for (room_id, event) in std::mem::take(&mut self.pending) {
            let read = self.decrypt(&room_id, event.clone())?;
            match read.kind {
                EventKind::Undecryptable(UnableToDecrypt::NoSession { .. }) => {
                    self.pending.push_back((room_id, event));
                }
                EventKind::Undecryptable(_) => {}
                _ => opened.push(read),
            }
        }
        Ok(opened)
    }

    fn decrypt(&self, room_id: &str, event: Value) -> Result<TimelineEvent, Error> {
        let text = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or_default();
        let (event_id, sender) = (text("event_id").to_owned(), text("sender").to_owned());
        let event_type = text("type").to_owned();
        let origin_server_ts = event
            .get("origin_server_ts")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let kind = if event_type == "m.room.encrypted" {
            let result =
                block_on(
                    self.machine
                        .decrypt_room_event(room_id, &event, &[], &mut rand::rng()),
                );
            match result {
                Ok(decrypted) => EventKind::Decrypted(decrypted),
                // A failure of the machine or its store is the client's, not the event's.
                Err(UnableToDecrypt::Machine(error)) => return Err(error.into()),
                Err(error) => EventKind::Undecryptable(error),
            }
        } else {
            let content = event.get("content").cloned().unwrap_or(Value::Null);
            EventKind::Clear {
                event_type,
                content,
            }
        };
        Ok(TimelineEvent {
            room_id: room_id.to_owned(),
            event_id,
            sender,
            origin_server_ts,
            kind,
        })
    }
}

/// A fresh transaction id for a room event (random, so a restarted client never reuses one).
fn transaction_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_invite(entry: &Entry) -> bool {
    matches!(entry, Entry::Invite { .. })
}

/// Whether `event` is `user_id` joining (a join after an invitation or a leave; not a profile
/// change of someone already joined, which also says `join`).
fn is_join_of(event: &Value, user_id: &str) -> bool {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str);
    text("/type") == Some("m.room.member")
        && text("/state_key") == Some(user_id)
        && text("/content/membership") == Some("join")
        && text("/unsigned/prev_content/membership") != Some("join")
}

/// The array at `path` in `value`, empty if absent.
fn array(value: &Value, path: &[&str]) -> Vec<Value> {
    let mut at = value;
    for part in path {
        match at.get(part) {
            Some(next) => at = next,
            None => return Vec::new(),
        }
    }
    at.as_array().cloned().unwrap_or_default()
}

/// The strings of the array at `path`.
fn strings(value: &Value, path: &[&str]) -> Vec<String> {
    array(value, path)
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}
