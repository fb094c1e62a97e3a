//! `olmo matrix bot`: a Matrix bot that answers in encrypted rooms, and the reference for bot
//! authors. Its whole life:
//!
//! 1. open the store (the storage key lives beside it in `STORE.key`), reuse the device saved
//!    there or log in once with the password from the environment and save the session;
//! 2. loop until Ctrl-C or SIGTERM: one `/sync`, then for every event in the client's inbox
//!    join (an invitation), answer (a message from someone else), or leave it for the next
//!    sync (its room key has not come yet);
//! 3. stop after the step in progress.
//!
//! Crash safety comes from the layers below: every machine operation is one commit, and what it
//! returns (a key upload, a room key for another device, a ciphertext) exists only after that
//! commit; the sync token and the inbox of unanswered events are committed together; a reply's
//! transaction id is derived from the event it answers, so answering again after a crash makes
//! no second reply. `kill -9` at any point loses nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use olmo::crypto::base64;
use olmo::matrix::UnableToDecrypt;
use olmo::persist::StorageKey;
use olmo::store::block_on;

use crate::{Client, Error, EventKind, Session, TimelineEvent, login};

/// The longest echo, in characters (a reply must stay under the homeserver's event size limit).
const MAX_ECHO: usize = 2000;
/// The wait before trying again after the homeserver could not be reached.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long an event waits for its room key (a key that has not come by then will not: the
/// message was sent before the bot joined, or to devices the sender knew of then).
const KEY_WAIT: Duration = Duration::from_secs(300);

/// `olmo matrix bot`: answers `!ping`, `!devices` and `!help`, and echoes any other message, in
/// every room it is invited to, encrypted where the room is. Its answers are notices
/// (`m.notice`), and it answers no notice, as bots do.
#[derive(Debug, clap::Parser)]
#[command(name = "olmo matrix bot", version)]
pub struct BotArgs {
    /// The homeserver's base URL, such as `https://matrix.example.org`
    #[arg(long)]
    pub homeserver: String,
    /// The bot's account: a localpart (bot) or a user id (@bot:example.org)
    #[arg(long)]
    pub user: String,
    /// The bot's SQLite store (keys, sessions, sync token, unanswered events); its storage key is
    /// kept beside it in STORE.key, created on first start
    #[arg(long, default_value = "olmo-bot.sqlite3")]
    pub store: PathBuf,
    /// The device's display name at its first login
    #[arg(long, default_value = "olmo bot")]
    pub device_name: String,
    /// The environment variable holding the password (read only when the store has no device)
    #[arg(long, default_value = "OLMO_BOT_PASSWORD")]
    pub password_env: String,
    /// Seconds one sync waits for news (also the longest a stop waits)
    #[arg(long, default_value_t = 5)]
    pub poll_seconds: u64,
}

/// Why the bot stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The client failed (the store, the machine, or a homeserver answer it cannot go on from).
    #[error(transparent)]
    Client(#[from] Error),
    /// The store has no device yet and the password variable is unset.
    #[error("no device in the store yet: set {0} to the bot's password")]
    NoPassword(String),
    /// The store belongs to another account or homeserver.
    #[error("the store belongs to {0}, not to this --user/--homeserver")]
    OtherAccount(String),
    /// The storage key file cannot be read or written, or is not a key.
    #[error("storage key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An https:// homeserver, and this build has no TLS.
    #[error("this olmo was built without TLS: build it with the `tls` feature for https://")]
    NoTls,
    /// The signal handler could not be installed.
    #[error("cannot handle Ctrl-C: {0}")]
    Signal(#[from] ctrlc::Error),
}

/// Runs the bot until Ctrl-C or SIGTERM (a second one exits at once: that is safe too).
pub fn run(args: BotArgs) -> Result<(), BotError> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })?;

    let key = storage_key(&args.store)?;
    let session = session(&args, &key)?;
    let mut client = Client::open(&session, &args.store, &key)?;
    client.keep_inbox()?;
    log(&format!(
        "ready: {} device {}",
        session.user_id, session.device_id
    ));

    let poll_ms = args.poll_seconds.saturating_mul(1000);
    while !stop.load(Ordering::SeqCst) {
        match step(&mut client, poll_ms) {
            Err(error) if transient(&error) => {
                log(&format!("the homeserver failed, trying again: {error}"));
                std::thread::sleep(RETRY_AFTER);
            }
            result => result?,
        }
    }
    log("stopped");
    Ok(())
}

/// One sync and the inbox it leaves (unhandled events stay there for the next one).
fn step(client: &mut Client, poll_ms: u64) -> Result<(), Error> {
    let mut replies = 0;
    for event in client.sync_once(poll_ms)? {
        if handle(client, &event, &mut replies)? {
            client.handled(&event);
        }
    }
    Ok(())
}

/// Handles one inbox event (`replies`: those sent since the sync); `false` leaves it for the
/// next sync.
fn handle(client: &mut Client, event: &TimelineEvent, replies: &mut u32) -> Result<bool, Error> {
    let room = &event.room_id;
    if event.sender == client.machine().user_id() {
        return Ok(true); // our own replies, coming back
    }
    match &event.kind {
        EventKind::Invite => {
            match client.join(room) {
                Ok(()) => log(&format!("joined {room}")),
                Err(error) if !transient(&error) => log(&format!("cannot join {room}: {error}")),
                Err(error) => return Err(error),
            }
            return Ok(true);
        }
        EventKind::Undecryptable(reason) => {
            let sent = UNIX_EPOCH + Duration::from_millis(event.origin_server_ts);
            let waited = SystemTime::now().duration_since(sent).unwrap_or_default();
            if matches!(reason, UnableToDecrypt::NoSession { .. }) && waited < KEY_WAIT {
                return Ok(false); // the key may come with a later sync
            }
            log(&format!("cannot decrypt {}: {reason}", event.event_id));
            return Ok(true);
        }
        _ => {}
    }
    // Notices are what bots send: answering them could start two bots talking forever.
    let (Some(body), false) = (event.body(), event.msgtype() == Some("m.notice")) else {
        return Ok(true);
    };
    let reply = answer(client, &event.sender, body)?;
    let content = serde_json::json!({"msgtype": "m.notice", "body": reply});
    let transaction_id = format!("reply-{}", event.event_id);
    match client.send_message(room, &content, &transaction_id) {
        Ok(_) => {
            *replies += 1;
            let (total, waiting) = client.time_since_sync().unwrap_or_default();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            log(&format!(
                "answered {} in {room}: reply {replies} since the sync, {:.1} ms after it, \
                 {:.1} ms of it waiting for the homeserver",
                event.event_id,
                ms(total),
                ms(waiting)
            ));
        }
        Err(error) if !transient(&error) => {
            log(&format!(
                "cannot answer {} in {room}: {error}",
                event.event_id
            ));
        }
        Err(error) => return Err(error),
    }
    Ok(true)
}

/// The bot's commands; anything else comes back as an echo.
fn answer(client: &Client, sender: &str, body: &str) -> Result<String, Error> {
    Ok(match body.trim() {
        "!ping" => "pong".to_owned(),
        "!devices" => {
            let devices = block_on(client.machine().devices(sender))?;
            let ids: Vec<&str> = devices
                .iter()
                .filter(|d| d.receives_room_keys())
                .map(|d| d.device_id.as_str())
                .collect();
            format!("your devices I encrypt to: {}", ids.join(", "))
        }
        command if command.starts_with('!') => {
            "commands: !ping, !devices, !help; anything else comes back".to_owned()
        }
        text => format!("echo: {}", text.chars().take(MAX_ECHO).collect::<String>()),
    })
}

/// The device saved in the store, or a new login saved before anything else happens.
fn session(args: &BotArgs, key: &StorageKey) -> Result<Session, BotError> {
    let homeserver = args.homeserver.trim_end_matches('/');
    if cfg!(not(feature = "tls")) && homeserver.starts_with("https://") {
        return Err(BotError::NoTls);
    }
    if let Some(saved) = Session::load(&args.store, key)? {
        let same_user =
            saved.user_id == args.user || saved.user_id.starts_with(&format!("@{}:", args.user));
        if !same_user || saved.base_url != homeserver {
            return Err(BotError::OtherAccount(saved.user_id));
        }
        return Ok(saved);
    }
    let password = std::env::var(&args.password_env)
        .map_err(|_| BotError::NoPassword(args.password_env.clone()))?;
    let session = login(homeserver, &args.user, &password, &args.device_name)?;
    session.save(&args.store, key)?;
    log(&format!("logged in as a new device {}", session.device_id));
    Ok(session)
}

/// The store's key from `STORE.key` (32 bytes, base64), made on first start. A store without
/// its key file is refused rather than given a new key it could never open.
fn storage_key(store: &Path) -> Result<StorageKey, BotError> {
    let mut path = store.as_os_str().to_owned();
    path.push(".key");
    let path = PathBuf::from(path);
    let error = |reason: String| BotError::KeyFile {
        path: path.clone(),
        reason,
    };
    if !path.exists() {
        if store.exists() {
            return Err(error("missing, but the store exists: restore it".into()));
        }
        let bytes: [u8; 32] = rand::random();
        write_private(&path, base64::encode_secret(&bytes).as_bytes())
            .map_err(|e| error(e.to_string()))?;
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| error(e.to_string()))?);
    let bytes = base64::decode_secret(text.trim()).map_err(|e| error(e.to_string()))?;
    let bytes: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| error("not 32 bytes of base64".into()))?;
    Ok(StorageKey::from_bytes(bytes))
}

/// Writes a file only its owner can read, atomically (a crash leaves no half key).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// A failure worth waiting out: the connection, or the homeserver busy or restarting.
fn transient(error: &Error) -> bool {
    match error {
        Error::Http(_) => true,
        Error::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// One line on stderr: events by id, never their contents.
fn log(line: &str) {
    eprintln!("olmo matrix bot: {line}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_arguments_fit_a_clap_tree_and_parse_alone() {
        fn subcommand_arguments<T: clap::Args>() {}
        subcommand_arguments::<BotArgs>();
        use clap::Parser as _;
        let args = BotArgs::try_parse_from(["bot", "--homeserver", "http://h", "--user", "b"]);
        assert_eq!(args.unwrap().password_env, "OLMO_BOT_PASSWORD");
        assert!(BotArgs::try_parse_from(["bot", "--user", "b"]).is_err());
    }

    #[test]
    fn the_key_file_is_made_once_and_a_store_without_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("bot.sqlite3");
        // Two keys are the same when they name a record alike.
        let name = |key: StorageKey| olmo::store::Sealer::new(&key).name("t", &[b"k"]);
        let first = name(storage_key(&store).unwrap());
        let text = std::fs::read_to_string(dir.path().join("bot.sqlite3.key")).unwrap();
        assert_eq!(name(storage_key(&store).unwrap()), first);
        assert_eq!(text.trim().len(), 43, "32 bytes of unpadded base64");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join("bot.sqlite3.key")).unwrap();
            assert_eq!(
                meta.permissions().mode() & 0o077,
                0,
                "readable by its owner only"
            );
        }
        std::fs::write(&store, b"").unwrap();
        std::fs::remove_file(dir.path().join("bot.sqlite3.key")).unwrap();
        assert!(matches!(storage_key(&store), Err(BotError::KeyFile { .. })));
    }
}
