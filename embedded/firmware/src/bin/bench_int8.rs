//! Instructions per int8 LSTM or GRU step (`QLayer::step`: the full-integer step of `tinyrnn::quant` on
//! an int8 input), for `bench.sh`: the model of `bench_f32` (shape from `BENCH_MODEL`) quantized
//! by build.rs with the core's scheme, stepped `firmware::BENCH_STEPS` times from a running
//! state; see `firmware::bench` for the method and the line it prints. On Cortex-M4 the dot
//! products run on SXTB16/SMLAD (`cfg(tinyrnn_arm_dsp)`), on the M0 the portable loops.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use firmware::{bench, exit};

#[allow(dead_code)]
mod model {
    include!(concat!(env!("OUT_DIR"), "/bench_qmodel.rs"));
}
use model::{H, I, MODEL, NAME};

/// Working memory of one step: at least `MODEL.layer.scratch_len()` words (<= I + H).
type Scratch = [u32; I + H];

/// One int8 step of the layer: what is measured.
#[inline(never)]
fn step(x: &[i8; I], h: &mut [i8; H], c: &mut [i16; H], scratch: &mut Scratch) -> bool {
    MODEL.layer.step(x, h, c, scratch).is_ok()
}

#[entry]
fn main() -> ! {
    let (mut h, mut c, mut scratch) = ([0i8; H], [0i16; H], [0u32; I + H]);
    // The input of bench_f32 (k % 7 · 0.25 - 0.75), quantized by the model.
    let xf: [f32; I] = core::array::from_fn(|k| (k % 7) as f32 * 0.25 - 0.75);
    let mut x = [0i8; I];
    let mut ok = MODEL.check().is_ok() && MODEL.quantize_input(&xf, &mut x).is_ok();
    ok &= bench(NAME, "int8", I, H, (MODEL.layer.cell.gates() * H * (I + H)) as u32, &mut || {
        ok &= step(core::hint::black_box(&x), &mut h, &mut c, &mut scratch);
    });
    exit(ok)
}
