//! A checkpoint, through `Trainer::resume` on a small LSTM (1 input, 4 hidden, 1 output) with
//! Adam (so the optimizer state is read too) and the run id the seed was written with: once as
//! the bytes are, and once with their checksum made right (`tinyrnn_fuzz::with_checksum`), so
//! that the checks behind the checksum (run id, update count, tensors, progress) are fuzzed too.
#![no_main]

use host::train::{OptimizerKind, RunCheck, Trainer};
use libfuzzer_sys::fuzz_target;
use tinyrnn::{CellKind, Spec};

fuzz_target!(|data: &[u8]| {
    let run_id = tinyrnn_fuzz::checkpoint_run_id();
    let run = RunCheck {
        id: &run_id,
        updates: 10,
        finished: false,
        extras: &[],
    };
    let fixed = tinyrnn_fuzz::with_checksum(data);
    for bytes in std::iter::once(data).chain(fixed.as_deref()) {
        let path = tinyrnn_fuzz::scratch_file(bytes);
        let Ok(model) = host::net::Net::new(Spec::new(CellKind::Lstm, 1, 4, 1)) else {
            return;
        };
        let mut trainer = Trainer::new(model, OptimizerKind::Adam.build(1e-3, 0.0), None);
        let _ = trainer.resume::<serde_json::Value>(&path, &run, |_, _, _| Ok(()));
    }
});
