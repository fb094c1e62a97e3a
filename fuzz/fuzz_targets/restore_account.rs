//! Fuzz target `restore_account`: see [`olmo_fuzz::check_restore_account`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_restore_account(data));
