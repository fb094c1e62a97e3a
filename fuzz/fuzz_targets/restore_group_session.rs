//! Fuzz target `restore_group_session`: see [`olmo_fuzz::run_megolm`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    olmo_fuzz::run_megolm("restore_group_session", data);
});
