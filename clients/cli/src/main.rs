//! `olmo`: a demonstration of the engine, and the tools its users need (`olmo --help`).

use std::process::ExitCode;

use clap::Parser;

mod args;
mod inspect;
mod matrix;
mod megolm_demo;
mod migrate;
mod olm_demo;
mod omemo_demo;
mod xmpp_demo;

use args::{Cli, Command, Inspect, MatrixCommand, XmppCommand};

/// mimalloc rather than the system allocator: decrypting a dump allocates and frees millions of
/// small buffers (events, plaintexts, records), and glibc's malloc spent a sixth of the run
/// merging and splitting chunks (perf, 100,000 events).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Help and version go to stdout with status 0; usage errors to stderr with status 2.
    let cli = Cli::parse();
    let result = match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Inspect(what)) => match what {
            Inspect::PreKey { body } => inspect::olm(0, &body),
            Inspect::Normal { body } => inspect::olm(1, &body),
            Inspect::Megolm { body } => inspect::megolm(&body),
            Inspect::RoomKey { key } => inspect::room_key(&key),
            Inspect::Omemo { xml } => inspect::omemo(&xml),
        },
        Some(Command::MigrateAccount) => migrate::migrate_account(),
        Some(Command::Matrix(command)) => match command {
            MatrixCommand::Decrypt(args) => matrix::decrypt::run(&args),
            MatrixCommand::ImportKeys(args) => matrix::keys::import(&args),
            MatrixCommand::ExportKeys(args) => matrix::keys::export(&args),
            MatrixCommand::Stats(args) => matrix::keys::stats(&args),
            MatrixCommand::Bot(args) => {
                olmo_matrix_client::bot::run(args).map_err(|e| e.to_string())
            }
        },
        Some(Command::Xmpp(command)) => match command {
            XmppCommand::Bot(args) => olmo_xmpp_client::run(args).map_err(|e| e.to_string()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("olmo: {error}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> Result<(), String> {
    olm_demo::run();
    megolm_demo::run();
    omemo_demo::run();
    xmpp_demo::run().map_err(|error| format!("the XMPP machine demonstration failed: {error}"))?;
    println!(
        "\nTools: olmo inspect | olmo migrate-account | olmo matrix decrypt ... (olmo --help)"
    );
    Ok(())
}
