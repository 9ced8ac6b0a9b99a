//! An IDX file as it is read gzip-compressed: `host::idx::gunzip` with the reader's own cap
//! (a gzip bomb must stop there), then the IDX parsers on what it gives.
#![no_main]

use host::idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = idx::gunzip(data, "fuzz input", idx::MAX_BYTES) {
        assert!(raw.len() as u64 <= idx::MAX_BYTES);
        tinyrnn_fuzz::check_idx(&raw);
    }
});
