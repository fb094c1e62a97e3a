//! Fuzz target `omemo_bundle`: see [`olmo_fuzz::check_omemo_bundle`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_omemo_bundle(data));
