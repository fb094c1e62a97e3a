//! The homeserver over HTTP: JSON in, JSON out, the access token as a bearer header (never in a
//! URL, so it shows up in no error or log line).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;

/// The largest response body read (a first `/sync` of a busy account is large).
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// Added to a long poll's own timeout before the HTTP request gives up.
const GRACE: Duration = Duration::from_secs(30);

/// A logged-in device: what a restart needs to carry on as the same device.
#[derive(Clone)]
pub struct Session {
    /// The homeserver's base URL (`https://matrix.example.org`).
    pub base_url: String,
    /// Our user id.
    pub user_id: String,
    /// Our device id.
    pub device_id: String,
    /// The access token.
    pub access_token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base_url", &self.base_url)
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// Logs `user` (a localpart or a user id) in with a password: a new device.
pub fn login(
    base_url: &str,
    user: &str,
    password: &str,
    device_name: &str,
) -> Result<Session, Error> {
    let http = Http::new(base_url, None);
    let body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "initial_device_display_name": device_name,
    });
    let response = http.request("POST", "/_matrix/client/v3/login", Some(&body), None)?;
    let field = |name: &'static str| {
        response
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(Error::Response(name))
    };
    Ok(Session {
        base_url: base_url.trim_end_matches('/').to_owned(),
        user_id: field("user_id")?,
        device_id: field("device_id")?,
        access_token: field("access_token")?,
    })
}

/// One homeserver connection (ureq keeps the connections alive between requests).
pub(crate) struct Http {
    agent: ureq::Agent,
    base_url: String,
    access_token: Option<String>,
    /// Nanoseconds spent in requests so far (waiting for the homeserver).
    spent: AtomicU64,
}

impl Http {
    pub(crate) fn new(base_url: &str, access_token: Option<&str>) -> Self {
        let agent = ureq::Agent::config_builder()
            // Matrix errors come as JSON with a status: read them instead of failing early.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
            access_token: access_token.map(str::to_owned),
            spent: AtomicU64::new(0),
        }
    }

    /// The time spent in requests so far.
    pub(crate) fn spent(&self) -> Duration {
        Duration::from_nanos(self.spent.load(Ordering::Relaxed))
    }

    /// [`Http::send`], counting the time it takes.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        long_poll: Option<Duration>,
    ) -> Result<Value, Error> {
        let start = Instant::now();
        let result = self.send(method, path, body, long_poll);
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.spent.fetch_add(nanos, Ordering::Relaxed);
        result
    }

    /// Sends `body` (or nothing) to `path` (already percent-encoded, with its query) and returns
    /// the JSON answer of a 2xx response; anything else is [`Error::Status`].
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        long_poll: Option<Duration>,
    ) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base_url);
        let timeout = long_poll.unwrap_or_default() + GRACE;
        let auth = self.access_token.as_ref().map(|t| format!("Bearer {t}"));
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut request = self
                    .agent
                    .get(&url)
                    .config()
                    .timeout_global(Some(timeout))
                    .build();
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()?
            }
            (_, body) => {
                let mut request = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    _ => return Err(Error::Response("unsupported method")),
                }
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header("Content-Type", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                let text = body.map_or_else(|| "{}".to_owned(), Value::to_string);
                request.send(text)?
            }
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()?;
        let value: Value = serde_json::from_str(&text).map_err(|_| Error::Response("not JSON"))?;
        if !(200..300).contains(&status) {
            let errcode = value.get("errcode").and_then(Value::as_str).unwrap_or("");
            return Err(Error::Status {
                method: method.to_owned(),
                path: path.split('?').next().unwrap_or_default().to_owned(),
                status,
                errcode: errcode.to_owned(),
            });
        }
        Ok(value)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (room ids, event types,
/// transaction ids and tokens in paths and queries).
pub(crate) fn encode(text: &str) -> String {
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
