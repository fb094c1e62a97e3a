//! Fuzz target `olm_session_decrypt`: see [`olmo_fuzz::check_session_decrypt`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_session_decrypt(data));
