//! The XMPP connection: one task owns tokio-xmpp's `Client` and forwards what it receives into
//! an unbounded queue, so the bot can wait for an IQ answer while stanzas keep arriving (the
//! client's own queue is small, and a full one would also hold back the IQ answer waited for).

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Event, IqRequest, IqResponse, Stanza};

use crate::Error;

/// How long a login or an IQ may take before the bot gives up on it.
const WAIT: Duration = Duration::from_secs(30);

enum Command {
    Send(Box<Stanza>, oneshot::Sender<Result<(), Error>>),
    Iq(
        Option<Jid>,
        IqRequest,
        oneshot::Sender<Result<Option<Element>, Error>>,
    ),
    Close(oneshot::Sender<()>),
}

/// What the connection hands the bot.
pub enum Received {
    /// A stanza (IQ answers go to [`Connection::iq`] instead).
    Stanza(Box<Stanza>),
    /// tokio-xmpp logged in again after losing the connection, without resuming the session:
    /// presence and anything else the session had must be set up again.
    Reconnected,
}

/// A logged-in XMPP session.
pub struct Connection {
    commands: mpsc::UnboundedSender<Command>,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Connection {
    /// Logs in to `host`:`port` (STARTTLS, or plain TCP when `plaintext`; SCRAM either way)
    /// and waits until online.
    pub async fn open(
        jid: &BareJid,
        password: &str,
        host: &str,
        port: u16,
        plaintext: bool,
    ) -> Result<Self, Error> {
        let mut client = if plaintext {
            let address = DnsConfig::addr(&format!("{host}:{port}"));
            Client::new_plaintext(
                jid.clone(),
                password.to_owned(),
                address,
                Timeouts::default(),
            )
        } else {
            starttls(jid, password, host, port)?
        };
        let online = tokio::time::timeout(WAIT, async {
            loop {
                match client.next().await {
                    Some(Event::Online { .. }) => return Ok(()),
                    Some(Event::Disconnected(error)) => {
                        return Err(Error::Connection(error.to_string()));
                    }
                    Some(Event::Stanza(_)) => {}
                    None => return Err(Error::Connection("stream ended".into())),
                }
            }
        });
        online
            .await
            .map_err(|_| Error::Connection("no login in time".into()))??;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (received_tx, received) = mpsc::unbounded_channel();
        tokio::spawn(own_client(client, command_rx, received_tx));
        Ok(Self { commands, received })
    }

    /// What came next; `None` once the connection is gone for good.
    pub async fn next(&mut self) -> Option<Received> {
        self.received.recv().await
    }

    /// Sends a stanza; returns once it was written to the socket.
    pub async fn send(&self, stanza: impl Into<Stanza>) -> Result<(), Error> {
        let (done, wait) = oneshot::channel();
        self.command(Command::Send(Box::new(stanza.into()), done))?;
        wait.await.map_err(|_| gone())?
    }

    /// Sends an IQ and waits for its answer's payload (an error answer is an error).
    pub async fn iq(&self, to: Option<Jid>, request: IqRequest) -> Result<Option<Element>, Error> {
        let (done, wait) = oneshot::channel();
        self.command(Command::Iq(to, request, done))?;
        wait.await.map_err(|_| gone())?
    }

    /// Ends the stream cleanly.
    pub async fn close(self) {
        let (done, wait) = oneshot::channel();
        if self.command(Command::Close(done)).is_ok() {
            let _ = wait.await;
        }
    }

    fn command(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).map_err(|_| gone())
    }
}

#[cfg(feature = "tls")]
fn starttls(jid: &BareJid, password: &str, host: &str, port: u16) -> Result<Client, Error> {
    let server = DnsConfig::no_srv(host, port);
    Ok(Client::new_starttls(
        jid.clone(),
        password.to_owned(),
        server,
        Timeouts::default(),
    ))
}

#[cfg(not(feature = "tls"))]
fn starttls(_: &BareJid, _: &str, _: &str, _: u16) -> Result<Client, Error> {
    Err(Error::Connection(
        "this build has no TLS (feature `tls`); --plaintext connects without, for a server on this host"
            .into(),
    ))
}

fn gone() -> Error {
    Error::Connection("the connection is closed".into())
}

async fn own_client(
    mut client: Client,
    mut commands: mpsc::UnboundedReceiver<Command>,
    received: mpsc::UnboundedSender<Received>,
) {
    loop {
        tokio::select! {
            event = client.next() => match event {
                Some(Event::Stanza(stanza)) => { let _ = received.send(Received::Stanza(Box::new(stanza))); }
                // tokio-xmpp reconnects by itself, resuming the session when it can.
                Some(Event::Online { resumed: true, .. }) => {}
                Some(Event::Online { .. }) => { let _ = received.send(Received::Reconnected); }
                Some(Event::Disconnected(error)) => eprintln!("xmpp: disconnected: {error}"),
                None => return,
            },
            command = commands.recv() => match command {
                Some(Command::Send(stanza, done)) => {
                    let sent = client.send_stanza(*stanza).await;
                    let _ = done.send(sent.map(|_| ()).map_err(|e| Error::Connection(e.to_string())));
                }
                Some(Command::Iq(to, request, done)) => {
                    let answer = client.send_iq(to, request).await;
                    tokio::spawn(async move {
                        let result = match tokio::time::timeout(WAIT, answer).await {
                            Err(_) => Err(Error::Iq("no answer in time".into())),
                            Ok(Err(failure)) => Err(Error::Connection(failure.to_string())),
                            Ok(Ok(IqResponse::Result(payload))) => Ok(payload),
                            Ok(Ok(IqResponse::Error(error))) => {
                                Err(Error::Iq(format!("{:?}", error.defined_condition)))
                            }
                        };
                        let _ = done.send(result);
                    });
                }
                Some(Command::Close(done)) => {
                    let _ = client.send_end().await;
                    let _ = done.send(());
                    return;
                }
                None => {
                    let _ = client.send_end().await;
                    return;
                }
            },
        }
    }
}
