//! `olmo xmpp bot`: an echo bot for OMEMO 2 and 0.3. What a bot does, in order:
//!
//! 1. open its account from the store (a device id and keys are made on first start);
//! 2. log in, publish its device lists and bundles, resend answers a crash left unsent;
//! 3. read its archive from where it stopped (XEP-0313), then (after its presence) live
//!    messages, each the same way:
//!    decrypt (once: the machine remembers archive ids), fetch the bundles the machine asks
//!    for, encrypt the answer, record it, send it;
//! 4. follow device lists with PEP ([`crate::pep`]): the server pushes every new list of the
//!    bot's own account and of the contacts it subscribed to, and the bot hands it to the
//!    machine. A contact's lists are fetched (and subscribed to) only on the first answer to
//!    it in a session: pushes sent while the bot was offline are lost (the server neither
//!    stores nor archives headline messages), so a new session reads each contact once.
//!
//! Every step that changes keys is one commit before anything leaves, so killing the bot at
//! any moment loses nothing and answers nothing twice.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use olmo::persist::StorageKey;
use olmo::time::Timestamp;
use olmo::xmpp::{XmppMachine, device_list_node};
use olmo_sqlite::SqliteStore;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::{IqRequest, Stanza};

use crate::pep;

use crate::Error;
use crate::connection::{Connection, Received};
use crate::ledger::{Answer, Ledger};
use crate::stanzas::{self, Incoming};

/// `olmo xmpp bot`: answers OMEMO messages with an encrypted echo.
#[derive(Debug, clap::Parser)]
#[command(
    name = "olmo xmpp bot",
    about = "An OMEMO echo bot (OMEMO 2 and 0.3) on a SQLite store"
)]
pub struct BotArgs {
    /// The bot's account, a bare JID (bot@example.org).
    #[arg(long)]
    pub jid: String,
    /// The environment variable that holds the account's password (never give it as an argument).
    #[arg(long, default_value = "OLMO_XMPP_PASSWORD")]
    pub password_env: String,
    /// The store: the account's keys, sessions and what was answered. Made on first start,
    /// with its storage key beside it in `<store>.key`.
    #[arg(long, default_value = "olmo-xmpp-bot.sqlite3")]
    pub store: PathBuf,
    /// The server to connect to (default: the JID's domain).
    #[arg(long)]
    pub host: Option<String>,
    /// The server's client port.
    #[arg(long, default_value_t = 5222)]
    pub port: u16,
    /// Connect over plain TCP (SCRAM login, no TLS): only for a server on this host. Builds
    /// without the `tls` feature need it.
    #[arg(long)]
    pub plaintext: bool,
}

/// Runs the bot until Ctrl-C (or SIGTERM), or until the connection is lost for good.
pub fn run(args: BotArgs) -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))?
        .block_on(serve(args))
}

async fn serve(args: BotArgs) -> Result<(), Error> {
    let password = std::env::var(&args.password_env)
        .map_err(|_| Error::Password(args.password_env.clone()))?;
    let jid: BareJid = args.jid.parse().map_err(|_| Error::Jid(args.jid.clone()))?;
    let key = storage_key(&key_path(&args.store))?;
    let store = SqliteStore::open(&args.store)?;
    let rng = &mut rand::rng();
    let machine = XmppMachine::open(store, &key, jid.as_str(), Timestamp::now(), rng).await?;
    let ledger = Ledger::open(&args.store, &key)?;
    let host = args.host.unwrap_or_else(|| jid.domain().to_string());
    let xmpp = Connection::open(&jid, &password, &host, args.port, args.plaintext).await?;
    let mut bot = Bot {
        machine,
        ledger,
        xmpp,
        jid,
        followed: HashSet::new(),
    };
    bot.start().await?;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            received = bot.xmpp.next() => match received {
                Some(Received::Stanza(stanza)) => bot.on_stanza(*stanza).await,
                // A new session: publish, catch up and announce ourselves again.
                Some(Received::Reconnected) => bot.start().await?,
                None => break,
            },
            () = &mut stop => break,
        }
    }
    bot.xmpp.close().await;
    eprintln!("bot: stopped");
    Ok(())
}

struct Bot {
    machine: XmppMachine<SqliteStore>,
    ledger: Ledger,
    xmpp: Connection,
    jid: BareJid,
    /// Contacts whose device lists were read in this session; the server pushes their changes.
    followed: HashSet<BareJid>,
}

impl Bot {
    /// Our device lists and bundles, answers left unsent, the archive, then presence: the
    /// server holds messages for a bot without presence, and delivers them after it, so the
    /// archive's messages come first and in order (those delivered again are skipped).
    async fn start(&mut self) -> Result<(), Error> {
        self.followed.clear();
        let own = self.jid.clone();
        self.read_device_lists(&own).await?;
        self.publish().await?;
        for (name, answer) in self.ledger.pending().await? {
            self.send(&answer).await?;
            self.ledger.resent(&name).await?;
        }
        self.catch_up().await?;
        // With the caps that ask for device-list pushes (ours: at once, the latest items).
        let presence = Presence::available().with_payloads(vec![pep::caps()?]);
        self.xmpp.send(presence).await?;
        let id = self.machine.device_id().await?;
        println!("olmo xmpp bot: {} device {id} online", self.jid);
        Ok(())
    }

    /// Asks for the archive after the last message handled, page by page. The results arrive
    /// as messages ahead of the live ones and are handled like them, in order.
    async fn catch_up(&mut self) -> Result<(), Error> {
        let mut after = self.ledger.cursor().await?;
        loop {
            let query = IqRequest::Set(stanzas::archive_query(after.as_deref())?);
            let fin = match self.xmpp.iq(None, query).await {
                // The cursor's message left the archive: read all of it (answered ones are skipped).
                Err(Error::Iq(_)) if after.is_some() => {
                    after = None;
                    continue;
                }
                answer => answer?,
            };
            match stanzas::archive_page_end(fin.as_ref()) {
                (Some(last), false) => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn publish(&mut self) -> Result<(), Error> {
        for item in self
            .machine
            .publish(Timestamp::now(), &mut rand::rng())
            .await?
        {
            self.xmpp
                .iq(None, IqRequest::Set(stanzas::publish(&item)?))
                .await?;
        }
        Ok(())
    }

    async fn on_stanza(&mut self, stanza: Stanza) {
        match stanza {
            Stanza::Message(message) => {
                if let Some((owner, list)) = pep::device_list_notification(&message) {
                    if let Err(error) = self.on_device_list(&owner, &list).await {
                        eprintln!("bot: a device list of {owner} was refused: {error}");
                    }
                } else if let Err(error) = self.on_message(&message).await {
                    eprintln!("bot: a message was not answered: {error}");
                }
            }
            Stanza::Iq(iq) => {
                if let Some(answer) = pep::answer_request(iq)
                    && let Err(error) = self.xmpp.send(answer).await
                {
                    eprintln!("bot: an IQ was not answered: {error}");
                }
            }
            Stanza::Presence(_) => {}
        }
    }

    /// A device list the server pushed (a contact's, or our own account's).
    async fn on_device_list(&mut self, owner: &BareJid, list: &str) -> Result<(), Error> {
        let update = (self.machine)
            .receive_device_list(owner.as_str(), list, &mut rand::rng())
            .await?;
        eprintln!(
            "bot: device list of {owner} pushed: {} added, {} removed",
            update.added.len(),
            update.removed.len()
        );
        if update.republish && owner == &self.jid {
            self.publish().await?;
        }
        Ok(())
    }

    /// One message, live or archived: decrypt, answer, record, send.
    async fn on_message(&mut self, message: &Message) -> Result<(), Error> {
        let Some(incoming) = stanzas::incoming(message, &self.jid) else {
            return Ok(());
        };
        if incoming.from == self.jid {
            return Ok(()); // what we sent, as the archive keeps it
        }
        let received = Instant::now();
        if let Some(id) = &incoming.archive_id
            && self.ledger.answered(id).await?
        {
            return Ok(());
        }
        let answer = self.answer(&incoming).await?;
        match &incoming.archive_id {
            Some(id) => {
                self.ledger.record(id, &answer).await?;
                self.send(&answer).await?;
                self.ledger.sent(id).await?;
            }
            None => self.send(&answer).await?,
        }
        if !answer.is_empty() {
            let ms = received.elapsed().as_secs_f64() * 1e3;
            eprintln!("bot: answered in {ms:.2} ms");
        }
        Ok(())
    }

    /// What to send for a message: the machine's own replies (key exchanges completed) and
    /// the echo. A message that does not decrypt gets nothing (and is not tried again).
    async fn answer(&mut self, incoming: &Incoming) -> Result<Answer, Error> {
        let rng = &mut rand::rng();
        let from = incoming.from.as_str();
        let decrypted = self
            .machine
            .decrypt(
                from,
                incoming.to.as_str(),
                &incoming.encrypted,
                incoming.archive_id.as_deref(),
                rng,
            )
            .await;
        let outcome = match decrypted {
            Ok(outcome) => outcome,
            Err(error) => {
                eprintln!("bot: a message from {from} did not decrypt: {error}");
                return Ok(Vec::new());
            }
        };
        if outcome.republish {
            self.publish().await?; // a pre-key was used up
        }
        let mut answer: Answer = outcome
            .replies
            .into_iter()
            .map(|reply| (reply.to, reply.payload))
            .collect();
        if let Some(body) = outcome.message.and_then(|message| message.body) {
            let echo = format!("echo: {body}");
            answer.extend(self.encrypt(&incoming.from, &echo).await?);
        }
        Ok(answer)
    }

    /// `body` encrypted to every device of `to` (its device lists followed, missing bundles
    /// fetched).
    async fn encrypt(&mut self, to: &BareJid, body: &str) -> Result<Answer, Error> {
        let rng = &mut rand::rng();
        self.follow(to).await?;
        for request in self.machine.bundle_requests(&[to.as_str()]).await? {
            let owner = Jid::from(to.clone());
            let query = stanzas::fetch(&request.node, Some(&request.item_id))?;
            let fetched = self.xmpp.iq(Some(owner), IqRequest::Get(query)).await;
            let Some(bundle) = fetched
                .ok()
                .and_then(|a| stanzas::fetched_payload(a.as_ref()))
            else {
                eprintln!("bot: no bundle for device {} of {to}", request.device_id);
                continue;
            };
            if let Err(error) = (self.machine)
                .receive_bundle(&request.jid, request.device_id, &bundle, rng)
                .await
            {
                eprintln!(
                    "bot: the bundle of device {} of {to}: {error}",
                    request.device_id
                );
            }
        }
        let now = Timestamp::now();
        let outcome = (self.machine)
            .encrypt(&[to.as_str()], to.as_str(), body, now, rng)
            .await?;
        for skipped in &outcome.skipped {
            eprintln!(
                "bot: device {} of {to} left out: {:?}",
                skipped.device_id, skipped.reason
            );
        }
        Ok(outcome
            .stanzas
            .into_iter()
            .map(|stanza| (stanza.to, stanza.payload))
            .collect())
    }

    /// On the first answer to `jid` in this session: subscribes to its device-list nodes (the
    /// server keeps the subscription; again is harmless) and reads them. After that, the lists
    /// the machine holds are kept current by the server's pushes.
    async fn follow(&mut self, jid: &BareJid) -> Result<(), Error> {
        if jid == &self.jid || self.followed.contains(jid) {
            return Ok(());
        }
        let owner = Jid::from(jid.clone());
        // Subscribed before reading, so no change falls between; all four IQs in flight at once.
        let subscriptions = pep::VERSIONS.map(|version| {
            let subscribe = stanzas::subscribe(device_list_node(version), &self.jid);
            async {
                self.xmpp
                    .iq(Some(owner.clone()), IqRequest::Set(subscribe?))
                    .await
            }
        });
        let (subscribed, read) = futures::join!(
            futures::future::join_all(subscriptions),
            self.fetch_device_lists(jid)
        );
        // A contact without a node of one version cannot be subscribed to it: not an error.
        let subscribed = subscribed.iter().filter(|s| s.is_ok()).count();
        self.receive_device_lists(jid, read?).await?;
        eprintln!("bot: read the device lists of {jid}, subscribed to {subscribed}");
        self.followed.insert(jid.clone());
        Ok(())
    }

    /// Reads `jid`'s device lists of both versions now (ours at start, before publishing).
    async fn read_device_lists(&mut self, jid: &BareJid) -> Result<(), Error> {
        let lists = self.fetch_device_lists(jid).await?;
        self.receive_device_lists(jid, lists).await
    }

    /// `jid`'s device lists of both versions, fetched at once (a version it does not use is
    /// missing).
    async fn fetch_device_lists(&self, jid: &BareJid) -> Result<Vec<String>, Error> {
        let mut queries = Vec::new();
        for version in pep::VERSIONS {
            let query = stanzas::fetch(device_list_node(version), None)?;
            queries.push(
                self.xmpp
                    .iq(Some(jid.clone().into()), IqRequest::Get(query)),
            );
        }
        Ok(futures::future::join_all(queries)
            .await
            .into_iter()
            .filter_map(|fetched| stanzas::fetched_payload(fetched.ok()?.as_ref()))
            .collect())
    }

    async fn receive_device_lists(
        &mut self,
        jid: &BareJid,
        lists: Vec<String>,
    ) -> Result<(), Error> {
        for list in lists {
            let update = (self.machine)
                .receive_device_list(jid.as_str(), &list, &mut rand::rng())
                .await?;
            if update.republish && jid == &self.jid {
                self.publish().await?;
            }
        }
        Ok(())
    }

    async fn send(&self, answer: &Answer) -> Result<(), Error> {
        for (to, encrypted) in answer {
            let to: BareJid = to.parse().map_err(|_| Error::Jid(to.clone()))?;
            self.xmpp
                .send(stanzas::omemo_message(&to, encrypted)?)
                .await?;
        }
        Ok(())
    }
}

/// Ctrl-C, or SIGTERM where there is one.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn key_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// The storage key in `path` (64 hex digits), made on first start (readable by the owner only).
fn storage_key(path: &Path) -> Result<StorageKey, Error> {
    let failed = |reason: String| Error::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    if !path.exists() {
        let mut bytes = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| failed(e.to_string()))?;
        std::io::Write::write_all(&mut file, hex.as_bytes()).map_err(|e| failed(e.to_string()))?;
        file.sync_all().map_err(|e| failed(e.to_string()))?;
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?);
    let text = text.trim();
    let mut bytes = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return Err(failed("not 64 hex digits".into()));
    }
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| failed("not 64 hex digits".into()))?;
    }
    Ok(StorageKey::from_bytes(bytes))
}
