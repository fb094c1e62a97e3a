//! `olmo matrix import-keys`, `export-keys` and `stats`.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use olmo::matrix::{ImportResult, Machine, MachineError};
use olmo::megolm::decrypt_key_export;
use olmo::store::{Backend, block_on};

use super::{open_sqlite, passphrase};
use crate::args::{ExportKeysArgs, ImportKeysArgs, StatsArgs};

/// `olmo matrix import-keys FILE --store ...`
pub fn import(args: &ImportKeysArgs) -> Result<(), String> {
    let machine = open_sqlite(&args.store.store)?;
    let passphrase = passphrase(&args.passphrase)?;
    let result = import_file(&machine, &args.file, &passphrase, true)?;
    report_import(&args.file, &result);
    Ok(())
}

/// Imports one key export file in one commit, with a progress bar on a terminal.
pub fn import_file<B: Backend>(
    machine: &Machine<B>,
    path: &Path,
    passphrase: &str,
    show_progress: bool,
) -> Result<ImportResult, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    let bar = (show_progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("importing keys {bar:40} {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(path.display().to_string());
        bar
    });
    let mut progress = |done: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let outcome =
        block_on(machine.import_room_keys(&text, passphrase, &mut progress, &mut rand::rng()));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outcome.map_err(|error| match error {
        // The machine says only "key export"; the file's own reader says what is wrong.
        MachineError::Json(_) => match decrypt_key_export(&text, passphrase) {
            Err(reason) => format!("the key file {}: {reason}", path.display()),
            Ok(_) => format!("the key file {}: {error}", path.display()),
        },
        error => format!("importing {}: {error}", path.display()),
    })
}

/// One line on stderr saying what an import did.
pub fn report_import(path: &Path, result: &ImportResult) {
    eprintln!(
        "olmo: {}: {} room keys, {} imported, {} already held or unusable",
        path.display(),
        result.total,
        result.imported,
        result.skipped
    );
}

/// `olmo matrix export-keys --store ... [--room ROOM]`
pub fn export(args: &ExportKeysArgs) -> Result<(), String> {
    let machine = open_sqlite(&args.store.store)?;
    let passphrase = passphrase(&args.passphrase)?;
    if passphrase.is_empty() {
        return Err("the passphrase is empty: choose one that protects the keys".to_owned());
    }
    let file = block_on(machine.export_room_keys(
        args.room.as_deref(),
        &passphrase,
        args.rounds,
        &mut rand::rng(),
    ))
    .map_err(|e| format!("exporting: {e}"))?;
    match &args.output {
        Some(path) => std::fs::write(path, file.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => std::io::stdout()
            .write_all(file.as_bytes())
            .map_err(|e| format!("writing to stdout: {e}")),
    }
}

/// `olmo matrix stats --store ...`
pub fn stats(args: &StatsArgs) -> Result<(), String> {
    let machine = open_sqlite(&args.store.store)?;
    let stats = block_on(machine.room_key_stats()).map_err(|e| format!("reading: {e}"))?;
    let sessions: usize = stats.sessions_by_room.values().sum();
    println!(
        "{} room keys in {} rooms, {} replay records, {} withheld",
        sessions,
        stats.sessions_by_room.len(),
        stats.replay_records,
        stats.withheld
    );
    for (room, count) in &stats.sessions_by_room {
        println!("  {room}  {count}");
    }
    Ok(())
}
