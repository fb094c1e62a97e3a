//! Fuzz target `restore_session`: see [`olmo_fuzz::check_restore_session`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_restore_session(data));
