//! The sine model quantized to int8 (`tinyrnn quantize`, src/qmodel.rs from `tinyrnn export
//! --rust`), run step by step with the full-integer step: warmed up on the 30 true samples of
//! `qgolden::WARMUP`, then generating 70 samples by feeding back its own predictions. Each is
//! compared with the host's (`qgolden::EXPECTED`, computed by `tinyrnn export --golden` with the
//! same integer code): the run exits 0 only if every one is the same f32, bit for bit.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use firmware::{Line, exit, stack_used};
use tinyrnn::quant::QState;

#[allow(dead_code)]
#[path = "../qmodel.rs"]
mod qmodel; // generated: tinyrnn export --rust (from an int8 file)
#[path = "../qgolden.rs"]
mod qgolden; // generated: tinyrnn export --golden (from the same file)

use qgolden::{EXPECTED, WARMUP};
use qmodel::{H, I, MODEL, O};

#[entry]
fn main() -> ! {
    let mut state = QState::<H>::zero(); // the caller owns the recurrent state
    let mut line = Line::new();
    line.str("sine int8 firmware: LSTM(1 -> ").uint(H as u32).str(") + Linear, int8").print();
    let mut ok = MODEL.check().is_ok();
    let mut y = [0.0f32; O];
    let mut step = |x: &[f32; I], y: &mut [f32; O]| match MODEL.step::<I, H, O>(x, &mut state) {
        Ok(v) => *y = v,
        Err(_) => ok = false,
    };
    let first = [WARMUP[0]];
    let stack = stack_used(&mut || step(&first, &mut y));
    for &x in &WARMUP[1..] {
        step(&[x], &mut y);
    }
    let mut bad = 0u32;
    for (k, &want) in EXPECTED.iter().enumerate() {
        if k > 0 {
            let x = [y[0]];
            step(&x, &mut y);
        }
        let same = y[0].to_bits() == want.to_bits();
        if !same {
            bad += 1;
        }
        line.str("t=")
            .uint((WARMUP.len() + k) as u32)
            .str(" device=")
            .f32(y[0])
            .str(" host=")
            .f32(want)
            .str(if same { "" } else { "  MISMATCH" })
            .print();
    }
    line.str("stack of one step: ");
    match stack {
        Some(bytes) => line.uint(bytes as u32).str(" bytes"),
        None => line.str("overflow"),
    };
    line.print();
    line.str("int8 samples not bit-identical to the host's: ").uint(bad).str(" of ").uint(EXPECTED.len() as u32).print();
    ok &= bad == 0 && stack.is_some();
    line.str(if ok { "sine int8 firmware: ok" } else { "sine int8 firmware: FAILED" }).print();
    exit(ok)
}
