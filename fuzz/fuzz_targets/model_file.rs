//! A safetensors model file, through today's two readers that take a path: `DynModel::load`
//! (infer) and `export::read`. A model `infer` accepts must run a step. When the one model-file
//! reader lands (`host::modelfile::ModelFile::parse(bytes, source, extras)`), call it on `data`
//! directly instead (no scratch file).
#![no_main]

use host::{export, infer::DynModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = tinyrnn_fuzz::scratch_file(data);
    if let Ok(model) = DynModel::load(&path) {
        let (i, _, o) = model.sizes();
        let mut state = model.zero_state();
        let y = model
            .run(&vec![0.5; 2 * i], &mut state)
            .expect("a loaded model runs");
        assert_eq!(y.len(), 2 * o);
    }
    if let Ok(m) = export::read(&path) {
        assert!(m.i >= 1 && m.h >= 1 && m.o >= 1);
    }
});
