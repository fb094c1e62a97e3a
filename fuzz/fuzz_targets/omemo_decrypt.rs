//! Fuzz target `omemo_decrypt`: see [`olmo_fuzz::check_omemo_decrypt`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_omemo_decrypt(data));
