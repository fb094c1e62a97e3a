//! Fuzz target `key_export_file`: see [`olmo_fuzz::check_key_export_file`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_key_export_file(data));
