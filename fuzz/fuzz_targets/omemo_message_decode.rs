//! Fuzz target `omemo_message_decode`: see [`olmo_fuzz::check_omemo_message_decode`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_omemo_message_decode(data));
