//! An IDX file as it is read raw: `host::idx::parse_images` and `parse_labels`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tinyrnn_fuzz::check_idx(data));
