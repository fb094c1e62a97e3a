//! The bot as a program of its own (the tests start, stop and kill it); `olmo xmpp bot` runs
//! the same [`olmo_xmpp_client::run`].

use clap::Parser;
use olmo_xmpp_client::{BotArgs, run};

fn main() -> std::process::ExitCode {
    match run(BotArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("olmo xmpp bot: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
