//! Fuzz target `matrix_dump`: see [`olmo_fuzz::check_matrix_dump`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    olmo_fuzz::check_matrix_dump(data);
});
