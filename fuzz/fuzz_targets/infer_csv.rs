//! The input CSV of `tinyrnn infer`: `host::infer::parse_inputs`, for a model of 1 to 8 inputs
//! (drawn from the first byte). Whatever is accepted is whole steps of finite numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, csv)) = data.split_first() else {
        return;
    };
    let i = 1 + usize::from(first % 8);
    if let Ok(x) = host::infer::parse_inputs(csv, "fuzz input", i) {
        assert!(!x.is_empty() && x.len() % i == 0);
        assert!(x.iter().all(|v| v.is_finite()));
    }
});
