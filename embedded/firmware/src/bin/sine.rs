//! The sine model exported from `tinyrnn sine` (src/model.rs), run step by step with a
//! caller-owned state: warmed up on the 30 true samples of `golden::WARMUP`, then generating 70
//! samples by feeding back its own predictions. Each is printed beside the host's value
//! (`golden::EXPECTED`, computed by `tinyrnn export --golden` with the same model and inputs);
//! the run exits 0 only if every one is within 1e-5 of it.
//!
//! Also reports the stack used by one `step` (measured by painting the stack).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use firmware::{Line, exit, stack_used};
use tinyrnn::LstmState;

#[allow(dead_code)]
#[path = "../model.rs"]
mod model; // generated: tinyrnn export --rust
#[path = "../golden.rs"]
mod golden; // generated: tinyrnn export --golden

use golden::{EXPECTED, WARMUP};
use model::{H, MODEL};

/// Largest accepted |device - host|.
const TOL: f32 = 1e-5;

#[entry]
fn main() -> ! {
    let mut state = LstmState::<H>::zero(); // the caller owns the recurrent state
    let mut line = Line::new();
    line.str("sine firmware: LSTM(1 -> ")
        .uint(H as u32)
        .str(") + Linear, ")
        .uint(core::mem::size_of_val(&MODEL) as u32)
        .str(" bytes of weights in flash")
        .print();

    // Warm-up on the true samples; the first step's stack use is measured.
    let mut y = [0.0f32];
    let first = WARMUP[0];
    let stack = stack_used(&mut || y = MODEL.step(&[first], &mut state));
    for &x in &WARMUP[1..] {
        y = MODEL.step(&[x], &mut state);
    }

    // Generation: every prediction is the next input.
    let mut max_diff = 0.0f32;
    let mut bad = 0u32;
    for (k, &want) in EXPECTED.iter().enumerate() {
        if k > 0 {
            y = MODEL.step(&y, &mut state);
        }
        let diff = (y[0] - want).abs();
        let ok = diff <= TOL; // false for NaN
        if !ok {
            bad += 1;
        }
        if !(diff <= max_diff) {
            max_diff = diff;
        }
        line.str("t=")
            .uint((WARMUP.len() + k) as u32)
            .str(" device=")
            .f32(y[0])
            .str(" host=")
            .f32(want)
            .str(if ok { "" } else { "  MISMATCH" })
            .print();
    }

    line.str("stack of one step: ");
    match stack {
        Some(bytes) => line.uint(bytes as u32).str(" bytes"),
        None => line.str("overflow"),
    };
    line.print();
    line.str("max |device - host| = ")
        .f32(max_diff)
        .str(" over ")
        .uint(EXPECTED.len() as u32)
        .str(" generated samples (limit 0.00001)")
        .print();
    if bad == 0 {
        line.str("sine firmware: ok").print();
    } else {
        line.str("sine firmware: FAILED: ")
            .uint(bad as u32)
            .str(" samples differ from the host")
            .print();
    }
    exit(bad == 0)
}
