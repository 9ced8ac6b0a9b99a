//! A 2-layer GRU, f32: GRU(1 -> 16) x 2 + Linear(16 -> 1) with pseudo-random weights (build.rs,
//! `gru2_model.rs`: the core's `Spec` and flat parameter buffer in flash), run with the core's
//! run-time engine (`tinyrnn::Model::step`: per layer a matrix product and the GRU's pointwise
//! step) over 40 inputs sin(0.3 t) from the zero state. Each output is compared with the host's
//! (`EXPECTED`, computed by build.rs with the same `Model::step`): the run exits 0 only if every
//! one is within 1e-5.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use firmware::{Line, exit, stack_used};
use tinyrnn::Model;

#[allow(dead_code)]
mod model {
    include!(concat!(env!("OUT_DIR"), "/gru2_model.rs"));
}
use model::{EXPECTED, H, L, O, PARAMS, SCRATCH, SPEC, X};

#[entry]
fn main() -> ! {
    let mut line = Line::new();
    line.str("gru2 firmware: GRU(1 -> ").uint(H as u32).str(") x ").uint(L as u32).str(" + Linear, f32").print();
    let Ok(m) = Model::new(SPEC, &PARAMS) else {
        line.str("gru2 firmware: FAILED: model shape").print();
        exit(false)
    };
    // The caller owns the state ((L, H): h per layer; a GRU has no c) and the scratch.
    let (mut h, mut scratch, mut y) = ([0f32; L * H], [0f32; SCRATCH], [0f32; O]);
    let mut ok = true;
    let mut step = |x: f32, y: &mut [f32; O]| {
        ok &= m.step(&[x], &mut h, &mut [], &mut scratch, y).is_ok();
    };
    let stack = stack_used(&mut || step(X[0], &mut y));
    let (mut bad, mut worst) = (0u32, 0f32);
    for (t, (&x, &want)) in X.iter().zip(&EXPECTED).enumerate() {
        if t > 0 {
            step(x, &mut y);
        }
        let err = (y[0] - want).abs();
        worst = worst.max(err);
        let close = err <= 1e-5;
        if !close {
            bad += 1;
        }
        line.str("t=").uint(t as u32).str(" device=").f32(y[0]).str(" host=").f32(want)
            .str(if close { "" } else { "  MISMATCH" }).print();
    }
    line.str("stack of one step: ");
    match stack {
        Some(bytes) => line.uint(bytes as u32).str(" bytes"),
        None => line.str("overflow"),
    };
    line.print();
    line.str("largest |device - host|: ").f32(worst).str("; outputs beyond 1e-5: ").uint(bad).str(" of ").uint(X.len() as u32).print();
    ok &= bad == 0 && stack.is_some();
    line.str(if ok { "gru2 firmware: ok" } else { "gru2 firmware: FAILED" }).print();
    exit(ok)
}
