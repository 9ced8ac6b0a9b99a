//! * Memory maps: `sine` links against `memory/small` (256K flash at 0x0, 16K RAM at
//!   0x20000000: fits the Cortex-M4F `mps2-an386` and the Cortex-M0 `microbit` under QEMU, and
//!   real parts of that size); `classifier` against `memory/large` (1M flash, 64K RAM, inside
//!   `mps2-an386`'s 4 MB SSRAM1 at 0x0 and 4 MB SSRAM2&3 at 0x20000000): its 329 KB of weights do
//!   not fit 256K.
//! * `bench_model.rs` in OUT_DIR: the same kind of model for the timing firmware (`bench_*` bins,
//!   `bench.sh`), of the shape `BENCH_MODEL` names: `sine` (LSTM(1 -> 32) + Linear(32 -> 1), the
//!   default; 256K/16K map) or `classifier` (LSTM(28 -> 128) + Linear(128 -> 10); 1M/64K map).
//! * `classifier_model.rs` in OUT_DIR: an LSTM(28 -> 128) + Linear(128 -> 10) with pseudo-random
//!   weights, written in the same form as `tinyrnn export` (for the footprint measurement only;
//!   1 MB of source is not worth committing).
use std::fmt::Write as _;
use std::path::PathBuf;

/// The timing firmware, one bin per precision (each measures its step with `firmware::bench`).
const BENCH_BINS: &[&str] = &["bench_f32"];

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    for (bin, map) in [("sine", "small"), ("kernels", "small"), ("classifier", "large")] {
        let dir = here.join("memory").join(map);
        println!("cargo:rustc-link-arg-bin={bin}=-L{}", dir.display());
        println!("cargo:rerun-if-changed={}", dir.join("memory.x").display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("classifier_model.rs"), classifier(28, 128, 10)).unwrap();

    // The timing firmware (bench.sh): the model shape named by BENCH_MODEL (default `sine`),
    // linked against the map its weights fit.
    println!("cargo:rerun-if-env-changed=BENCH_MODEL");
    let name = std::env::var("BENCH_MODEL").unwrap_or_else(|_| "sine".into());
    let (i, h, o) = match name.as_str() {
        "sine" => (1, 32, 1),
        "classifier" => (28, 128, 10),
        other => panic!("BENCH_MODEL={other}: expected sine or classifier"),
    };
    let mut src = classifier(i, h, o);
    let _ = writeln!(src, "pub const NAME: &str = {name:?};");
    std::fs::write(out.join("bench_model.rs"), src).unwrap();
    let map = if 4 * (4 * h * (i + h + 2) + o * (h + 1)) > 200 * 1024 {
        "large"
    } else {
        "small"
    };
    for bin in BENCH_BINS {
        println!(
            "cargo:rustc-link-arg-bin={bin}=-L{}",
            here.join("memory").join(map).display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// LSTM(i -> h) + Linear(h -> o) as Rust source, weights from U(-1/sqrt(h), 1/sqrt(h)) (xorshift).
fn classifier(i: usize, h: usize, o: usize) -> String {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let k = 1.0 / (h as f32).sqrt();
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
        (2.0 * u - 1.0) * k
    };
    let mut row = |n: usize| {
        let v: Vec<String> = (0..n).map(|_| format!("{:?}", next())).collect();
        format!("[{}]", v.join(", "))
    };
    let mut s = String::new();
    let _ = writeln!(s, "use tinyrnn::{{Linear, Lstm, LstmModel}};");
    let _ = writeln!(
        s,
        "pub const I: usize = {i};\npub const H: usize = {h};\npub const O: usize = {o};"
    );
    let _ = writeln!(
        s,
        "pub static MODEL: LstmModel<I, H, O> = LstmModel {{ lstm: Lstm {{"
    );
    for (name, cols) in [("weight_ih", i), ("weight_hh", h)] {
        let gates: Vec<String> = (0..4)
            .map(|_| {
                format!(
                    "[{}]",
                    (0..h).map(|_| row(cols)).collect::<Vec<_>>().join(",\n")
                )
            })
            .collect();
        let _ = writeln!(s, "{name}: [{}],", gates.join(",\n"));
    }
    for name in ["bias_ih", "bias_hh"] {
        let gates: Vec<String> = (0..4).map(|_| row(h)).collect();
        let _ = writeln!(s, "{name}: [{}],", gates.join(",\n"));
    }
    let w: Vec<String> = (0..o).map(|_| row(h)).collect();
    let _ = writeln!(
        s,
        "}}, head: Linear {{ weight: [{}], bias: {} }} }};",
        w.join(",\n"),
        row(o)
    );
    s
}
