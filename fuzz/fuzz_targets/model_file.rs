//! A safetensors model file, through the one model-file reader on the bytes: the float reader
//! (`ModelFile::parse`, which `infer`, `export` and resume share) and the int8 reader
//! (`QuantModel::parse`, the same for int8 files). A model either accepts must run two steps.
#![no_main]

use host::infer::DynModel;
use host::modelfile::ModelFile;
use host::quant::QuantModel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = ModelFile::parse(data, "fuzz input", &[]) {
        let model = DynModel::from_file(file).expect("an accepted file is a model");
        let (i, h, o) = model.sizes();
        assert!(i >= 1 && h >= 1 && o >= 1);
        let mut state = model.zero_state();
        let y = model
            .run(&vec![0.5; 2 * i], &mut state)
            .expect("a loaded model runs");
        assert_eq!(y.len(), 2 * o);
    }
    if let Ok((model, _)) = QuantModel::parse(data, "fuzz input") {
        let (i, h, o) = model.sizes();
        assert!(i >= 1 && h >= 1 && o >= 1);
        let mut state = model.zero_state();
        let y = model
            .run(&vec![0.5; 2 * i], &mut state)
            .expect("a loaded int8 model runs");
        assert_eq!(y.len(), 2 * o);
    }
});
