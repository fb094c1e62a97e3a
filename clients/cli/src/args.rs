//! The command line, declared with clap's derive: every command's `--help` is its doc comment,
//! and a value that does not parse is refused naming the argument and what was wrong with it.
//!
//! Command groups are enums, so a new command is one variant: `olmo matrix bot` and
//! `olmo xmpp bot` take their arguments as a `clap::Args` struct from their own crate.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// olmo: end-to-end encryption for Matrix (Olm, Megolm) and XMPP (OMEMO 2 and 0.3).
///
/// With no command, runs the demonstration: what crosses the wire between two Olm devices, a
/// Megolm room, and two XMPP accounts over OMEMO 2 and 0.3.
#[derive(Debug, Parser)]
#[command(name = "olmo", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The command (the demonstration when absent).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the demonstration (the same as no command).
    Demo,
    /// Decode a message, a room key or an OMEMO element, and show what it holds.
    #[command(subcommand)]
    Inspect(Inspect),
    /// Turn a libolm account pickle (stdin) into olmo's storage format (base64 on stdout).
    ///
    /// The pickle passphrase comes from the environment variable OLMO_LIBOLM_PICKLE_KEY, the
    /// storage key (32 bytes, base64) from OLMO_STORAGE_KEY: secrets never go on the command
    /// line, where other users of the machine can read them.
    MigrateAccount,
    /// Matrix tools: decrypt room dumps with key exports, import and export room keys.
    #[command(subcommand)]
    Matrix(MatrixCommand),
    /// XMPP tools.
    #[command(subcommand)]
    Xmpp(XmppCommand),
}

/// `olmo inspect ...`
#[derive(Debug, Subcommand)]
pub enum Inspect {
    /// Decode an Olm pre-key message (a Matrix event's ciphertext of type 0).
    #[command(name = "0")]
    PreKey {
        /// The message body, base64.
        #[arg(value_parser = base64_arg)]
        body: String,
    },
    /// Decode an ordinary Olm message (a Matrix event's ciphertext of type 1).
    #[command(name = "1")]
    Normal {
        /// The message body, base64.
        #[arg(value_parser = base64_arg)]
        body: String,
    },
    /// Decode a Megolm message (an m.room.encrypted event's `ciphertext`).
    Megolm {
        /// The ciphertext, base64.
        #[arg(value_parser = base64_arg)]
        body: String,
    },
    /// Show a room key's session id and first index (an m.room_key `session_key` or an
    /// exported key).
    RoomKey {
        /// The session key, base64.
        #[arg(value_parser = base64_arg)]
        key: String,
    },
    /// Decode an OMEMO `<encrypted>` element (either version), or verify a `<bundle>` and show
    /// its fingerprint.
    Omemo {
        /// The element's XML.
        xml: String,
    },
}

/// `olmo matrix ...`
#[derive(Debug, Subcommand)]
pub enum MatrixCommand {
    /// Decrypt room events with key exports: one JSON line per input event on stdout.
    ///
    /// Reads `/messages` and `/sync` responses, the Synapse admin API's room messages, rows of
    /// the `event_json` table, bare events, as JSON arrays, JSON lines or concatenated JSON,
    /// recognised by their shape and read as a stream (a dump of any size is never held
    /// whole). Each output line has a `status`: `decrypted` (with the plaintext `event`),
    /// `unencrypted` (the event as it was), or `failed` with a `reason` (no_session,
    /// unknown_index, withheld, replay, bad_signature, sender_mismatch, malformed, no_room).
    /// A summary of the failures by reason goes to stderr.
    Decrypt(DecryptArgs),
    /// Import a key export file into a store.
    ImportKeys(ImportKeysArgs),
    /// Write the room keys of a store as a key export file (all rooms, or one).
    ExportKeys(ExportKeysArgs),
    /// Count what a store holds: room keys by room, replay records, withheld notices.
    Stats(StatsArgs),
    /// Run a bot answering in encrypted rooms (the reference for bot authors).
    Bot(olmo_matrix_client::bot::BotArgs),
}

/// `olmo xmpp ...`
#[derive(Debug, Subcommand)]
pub enum XmppCommand {
    /// Run an OMEMO bot answering OMEMO 2 and 0.3 messages (the reference for bot authors).
    Bot(olmo_xmpp_client::BotArgs),
}

/// Where a passphrase comes from: never the command line, where `ps` shows it to everyone.
#[derive(Debug, Clone, Args)]
pub struct PassphraseArgs {
    /// Read the key file's passphrase from this environment variable.
    #[arg(long, value_name = "VAR", default_value = "OLMO_PASSPHRASE")]
    pub passphrase_env: String,
    /// Read the key file's passphrase from this file's first line instead.
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
}

/// A store: `sqlite:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// An SQLite database file (created on first use).
    Sqlite(PathBuf),
}

/// The store option of the commands that keep state.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: `sqlite:PATH`. Its records are sealed under the key in the environment
    /// variable OLMO_STORE_KEY (32 bytes, base64) or, without it, in the file PATH.key
    /// (created, readable by you only, on first use).
    #[arg(long, value_name = "sqlite:PATH", value_parser = store_arg)]
    pub store: StoreSpec,
}

/// `olmo matrix decrypt`
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Room events to decrypt (files; `-` or nothing for stdin).
    #[arg(value_name = "EVENTS")]
    pub inputs: Vec<PathBuf>,
    /// A key export file to import first (may be repeated).
    #[arg(long = "keys", value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Keep the imported keys and the replay record in a store (`sqlite:PATH`), so a second
    /// run needs no import and an interrupted run can be resumed.
    #[arg(long, value_name = "sqlite:PATH", value_parser = store_arg)]
    pub store: Option<StoreSpec>,
    /// The room of events that do not name theirs (a `/messages` dump of one room).
    #[arg(long, value_name = "ROOM_ID")]
    pub room: Option<String>,
    /// Write the lines to this file instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Continue an interrupted run: keep the complete lines already in --output, skip as many
    /// input events, append the rest. Needs --store (the replay record of the first part).
    #[arg(long, requires = "output", requires = "store")]
    pub resume: bool,
    /// Events decrypted per commit: a larger batch loads each session once for more events,
    /// a smaller one commits (and writes lines) more often.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// No progress bar or counts on stderr (the summary is still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `olmo matrix import-keys`
#[derive(Debug, Args)]
pub struct ImportKeysArgs {
    /// The key export file (`-----BEGIN MEGOLM SESSION DATA-----`).
    pub file: PathBuf,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `olmo matrix export-keys`
#[derive(Debug, Args)]
pub struct ExportKeysArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Only this room's keys.
    #[arg(long, value_name = "ROOM_ID")]
    pub room: Option<String>,
    /// PBKDF2 rounds protecting the file (Element writes 500,000; nio 100,000).
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub rounds: u32,
    /// Write the file here instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// `olmo matrix stats`
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Parses `sqlite:PATH`.
fn store_arg(text: &str) -> Result<StoreSpec, String> {
    match text.split_once(':') {
        Some(("sqlite", path)) if !path.is_empty() => Ok(StoreSpec::Sqlite(PathBuf::from(path))),
        Some(("sqlite", _)) => Err("the path after `sqlite:` is empty".to_owned()),
        Some((scheme, _)) => Err(format!(
            "unknown store kind `{scheme}` (this build knows `sqlite:PATH`)"
        )),
        None => Err("expected `sqlite:PATH`".to_owned()),
    }
}

/// Accepts standard base64 (padded or not), naming the first character that is not.
fn base64_arg(text: &str) -> Result<String, String> {
    let body = text.trim_end_matches('=');
    if let Some((position, bad)) = body
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '+' || *c == '/'))
    {
        return Err(format!(
            "not base64: character {:?} at position {} (base64 uses A-Z a-z 0-9 + / and = at the end)",
            bad,
            position + 1
        ));
    }
    if body.is_empty() {
        return Err("empty".to_owned());
    }
    if body.len() % 4 == 1 {
        return Err(format!(
            "not base64: {} characters cannot be a whole number of bytes",
            body.len()
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn base64_errors_say_where() {
        let error = base64_arg("not base64!!").unwrap_err();
        assert!(
            error.contains("' '") && error.contains("position 4"),
            "{error}"
        );
        assert!(base64_arg("AAAA").is_ok());
        assert!(base64_arg("AAA=").is_ok());
    }

    #[test]
    fn store_specs() {
        assert_eq!(
            store_arg("sqlite:a.db"),
            Ok(StoreSpec::Sqlite(PathBuf::from("a.db")))
        );
        assert!(store_arg("postgres://x").unwrap_err().contains("postgres"));
        assert!(store_arg("a.db").is_err());
    }
}
