//! Footprint of the int8 LSTM(28 -> 128) + Linear(128 -> 10) classifier: the classifier firmware's
//! pseudo-random model quantized by build.rs with the core's scheme (`tinyrnn::quant`), run on
//! one 28-step sequence with the full-integer step (`QModel::step`: input quantization, the
//! integer LSTM step, the head); prints the logits, the parameter bytes (the quantized model's
//! arrays: it is a `QModel` of slices, so its symbol is not its size) and the stack one step
//! uses. Links against the small map (256K flash, 16K RAM): it fits the microbit too.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use firmware::{Line, exit, stack_used, stroke_row as row};
use tinyrnn::quant::QState;

#[allow(dead_code)]
mod model {
    include!(concat!(env!("OUT_DIR"), "/classifier_qmodel.rs"));
}
use model::{H, I, MODEL, O};

#[entry]
fn main() -> ! {
    let mut line = Line::new();
    let (l, hd) = (&MODEL.layer, &MODEL.head);
    let bytes = l.w_ih.len() + l.w_hh.len() + 4 * (l.mul_ih.len() + l.mul_hh.len() + l.b_ih.len() + l.b_hh.len())
        + hd.weight.len()
        + 4 * (hd.scale.len() + hd.bias.len());
    line.str("classifier int8 firmware: LSTM(").uint(I as u32).str(" -> ").uint(H as u32);
    line.str(") + Linear(-> ").uint(O as u32).str(")").print();
    line.str("parameter bytes: ").uint(bytes as u32).print();
    let mut ok = MODEL.check().is_ok();
    let mut state = QState::<H>::zero();
    let mut y = [0.0f32; O];
    let x0 = row(0);
    let stack = stack_used(&mut || match MODEL.step::<I, H, O>(&x0, &mut state) {
        Ok(v) => y = v,
        Err(_) => ok = false,
    });
    for t in 1..28 {
        match MODEL.step::<I, H, O>(&row(t), &mut state) {
            Ok(v) => y = v,
            Err(_) => ok = false,
        }
    }
    let mut best = 0;
    for (k, &v) in y.iter().enumerate() {
        line.str("logit ").uint(k as u32).str(" = ").f32(v).print();
        if v > y[best] {
            best = k;
        }
    }
    line.str("class ").uint(best as u32).print();
    line.str("stack of one step: ");
    match stack {
        Some(bytes) => line.uint(bytes as u32).str(" bytes"),
        None => line.str("overflow"),
    };
    line.print();
    ok &= y.iter().all(|v| v.is_finite()) && stack.is_some();
    line.str(if ok { "classifier int8 firmware: ok" } else { "classifier int8 firmware: FAILED" }).print();
    exit(ok)
}
