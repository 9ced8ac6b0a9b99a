//! The 2-layer GRU of `gru2` quantized by build.rs with the core's int8 scheme (`quantize_stack`,
//! `quantize_head`; `gru2_qmodel.rs`: a `tinyrnn::quant::QStack` of static slices in flash), run
//! with the full-integer step (`QStack::step`: input quantization, layer 0, layer 1 on layer 0's
//! int8 h, the head) over the same 40 inputs. Each output is compared with the host's
//! (`EXPECTED`, the same `QStack::step` run by build.rs): the run exits 0 only if every one is
//! the same f32, bit for bit.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use firmware::{Line, exit, stack_used};
use tinyrnn::quant::QStackState;

#[allow(dead_code)]
mod qmodel {
    include!(concat!(env!("OUT_DIR"), "/gru2_qmodel.rs"));
}
use qmodel::{EXPECTED, H, I, L, MODEL, O, X};

#[entry]
fn main() -> ! {
    let mut line = Line::new();
    line.str("gru2 int8 firmware: GRU(1 -> ").uint(H as u32).str(") x ").uint(L as u32).str(" + Linear, int8").print();
    let mut ok = MODEL.check().is_ok();
    let mut state = QStackState::<L, H>::zero(); // the caller owns the state: h and c per layer
    let mut y = [0f32; O];
    let mut step = |x: f32, y: &mut [f32; O]| match MODEL.step::<I, H, L, O>(&[x], &mut state) {
        Ok(v) => *y = v,
        Err(_) => ok = false,
    };
    let stack = stack_used(&mut || step(X[0], &mut y));
    let mut bad = 0u32;
    for (t, (&x, &want)) in X.iter().zip(&EXPECTED).enumerate() {
        if t > 0 {
            step(x, &mut y);
        }
        let same = y[0].to_bits() == want;
        if !same {
            bad += 1;
        }
        line.str("t=").uint(t as u32).str(" device=").f32(y[0]).str(" host=").f32(f32::from_bits(want))
            .str(if same { "" } else { "  MISMATCH" }).print();
    }
    line.str("stack of one step: ");
    match stack {
        Some(bytes) => line.uint(bytes as u32).str(" bytes"),
        None => line.str("overflow"),
    };
    line.print();
    line.str("int8 outputs not bit-identical to the host's: ").uint(bad).str(" of ").uint(X.len() as u32).print();
    ok &= bad == 0 && stack.is_some();
    line.str(if ok { "gru2 int8 firmware: ok" } else { "gru2 int8 firmware: FAILED" }).print();
    exit(ok)
}
