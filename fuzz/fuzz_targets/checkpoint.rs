//! A checkpoint, through `Trainer::resume` on a small LSTM (1 input, 4 hidden, 1 output) with
//! Adam (so the optimizer state is read too) and the run id the seed was written with.
#![no_main]

use host::train::{OptimizerKind, Trainer};
use libfuzzer_sys::fuzz_target;
use tinyrnn::LstmModel;

fuzz_target!(|data: &[u8]| {
    let path = tinyrnn_fuzz::scratch_file(data);
    let model = host::net::boxed_zeroed::<LstmModel<1, 4, 1>>();
    let mut trainer = Trainer::new(model, OptimizerKind::Adam.build(1e-3, 0.0), None);
    let run_id = tinyrnn_fuzz::checkpoint_run_id();
    let _ = trainer.resume::<serde_json::Value>(&path, &run_id);
});
