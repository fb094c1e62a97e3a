//! Fuzz target `megolm_message_decode`: see [`olmo_fuzz::run_megolm`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    olmo_fuzz::run_megolm("megolm_message_decode", data);
});
