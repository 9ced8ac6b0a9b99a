//! What the firmware binaries share: text output over semihosting without `core::fmt` (its float
//! formatting alone is several KB of flash), the exit status, the panic handler, and a stack
//! painter that measures how much stack a call uses.
#![no_std]

use core::panic::PanicInfo;

use cortex_m as _; // the `critical-section-single-core` implementation
use cortex_m_semihosting::debug;

/// Ends the QEMU run with exit status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A panic ends the run with exit status 1 (and prints `panic` with the `print` feature).
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    Line::new().str("panic").print();
    exit(false)
}

/// Whether the `print` feature is on: without it every [`Line`] method is a no-op, so that no
/// formatting code is linked.
const PRINT: bool = cfg!(feature = "print");

/// One line of text, formatted by hand: integers and fixed-point floats only.
pub struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; 160],
            len: 0,
        }
    }

    /// Appends `s` (cut at the end of the buffer).
    pub fn str(&mut self, s: &str) -> &mut Self {
        if !PRINT {
            return self;
        }
        for &b in s.as_bytes() {
            self.byte(b);
        }
        self
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Appends `v` in decimal.
    pub fn uint(&mut self, mut v: u32) -> &mut Self {
        if !PRINT {
            return self;
        }
        let mut digits = [0u8; 10];
        let mut n = 0;
        for d in digits.iter_mut() {
            *d = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &d in digits.iter().take(n).rev() {
            self.byte(d);
        }
        self
    }

    /// Appends `v` rounded to 9 decimals, exactly (from its bits, with integer shifts, multiplies
    /// and 32-bit divisions only). |v| >= 2^24 prints as `big`, non-finite values as `nan` /
    /// `inf` / `-inf`.
    pub fn f32(&mut self, v: f32) -> &mut Self {
        if !PRINT {
            return self;
        }
        if v.is_nan() {
            return self.str("nan");
        }
        let bits = v.to_bits();
        if bits >> 31 == 1 {
            self.str("-");
        }
        if v.is_infinite() {
            return self.str("inf");
        }
        let (exp, frac) = ((bits >> 23) & 0xff, bits & 0x7f_ffff);
        // |v| = m * 2^-shift exactly, m < 2^24.
        let (m, shift) = if exp == 0 {
            (frac, 149)
        } else {
            (frac | 0x80_0000, 150 - exp)
        };
        if exp >= 150 {
            return self.str("big");
        }
        let (mut int, rest) = if shift >= 32 {
            (0, m as u64)
        } else {
            (m >> shift, (m & ((1 << shift) - 1)) as u64)
        };
        // fraction = round(rest * 1e9 / 2^shift), ties to even; rest * 1e9 < 2^54.
        let mut fraction = 0u32;
        if shift < 64 {
            let scaled = rest * 1_000_000_000;
            let q = scaled >> shift;
            let r = scaled - (q << shift);
            let half = 1u64 << (shift - 1);
            let q = if r > half || (r == half && q & 1 == 1) {
                q + 1
            } else {
                q
            };
            fraction = q as u32;
            if fraction >= 1_000_000_000 {
                fraction -= 1_000_000_000;
                int += 1;
            }
        }
        self.uint(int).str(".");
        let mut p = 100_000_000;
        while p > 0 {
            self.byte(b'0' + ((fraction / p) % 10) as u8);
            p /= 10;
        }
        self
    }

    /// Writes the line and a newline to the host's stdout (nothing without the `print` feature).
    pub fn print(&mut self) {
        #[cfg(feature = "print")]
        {
            self.str("\n");
            if let Ok(mut out) = cortex_m_semihosting::hio::hstdout() {
                let _ = out.write_all(&self.buf[..self.len]);
            }
        }
        self.len = 0;
    }
}

unsafe extern "C" {
    /// End of `.bss` / `.uninit` (cortex-m-rt's linker script): the stack may grow down to here.
    static __sheap: u32;
}

const PAINT: u32 = 0xC0FF_EE55;

/// Runs `f` and returns the number of bytes of stack it used (its call frame included), measured
/// by painting all free stack below the current stack pointer with a pattern and finding the
/// lowest word that `f` overwrote. `None` if `f` used all of it (a stack overflow).
#[inline(never)]
pub fn stack_used(f: &mut dyn FnMut()) -> Option<usize> {
    // The call goes through an opaque pointer: `f` cannot be inlined into this frame.
    let f = core::hint::black_box(f);
    let sp = cortex_m::register::msp::read() as usize & !3;
    let bottom = (&raw const __sheap as usize + 3) & !3;
    // Paint [bottom, sp): below this function's own frame; the loop makes no calls.
    let mut p = bottom;
    while p < sp {
        // SAFETY: free RAM between the end of .bss and the stack pointer, word aligned.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    f();
    let mut p = bottom;
    // SAFETY: as above; reading it back.
    while p < sp && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    if p == bottom { None } else { Some(sp - p) }
}

// ---------------------------------------------------------------------------------------------
// Instruction counting (QEMU -icount shift=0: one guest instruction = 1 ns of virtual time)

/// SysTick registers: control and status, reload value, current value.
const SYST_CSR: *mut u32 = 0xE000_E010 as *mut u32;
const SYST_RVR: *mut u32 = 0xE000_E014 as *mut u32;
const SYST_CVR: *mut u32 = 0xE000_E018 as *mut u32;

/// Starts SysTick from the processor clock (CSR = CLKSOURCE | ENABLE, no interrupt), counting down
/// from 0xFFFFFF.
pub fn systick_start() {
    // SAFETY: the architected SysTick registers of every Cortex-M; nothing else uses SysTick.
    unsafe {
        core::ptr::write_volatile(SYST_CSR, 0);
        core::ptr::write_volatile(SYST_RVR, 0x00FF_FFFF);
        core::ptr::write_volatile(SYST_CVR, 0);
        core::ptr::write_volatile(SYST_CSR, 5);
    }
}

/// The current SysTick value (24 bits, counting down).
#[inline(always)]
pub fn systick_now() -> u32 {
    // SAFETY: as in `systick_start`.
    unsafe { core::ptr::read_volatile(SYST_CVR) }
}

/// Ticks from `start` to `end` (two `systick_now` values): the 24-bit modular difference of a
/// down-counter. The region must be shorter than 2^24 ticks.
#[inline(always)]
pub fn ticks(start: u32, end: u32) -> u32 {
    start.wrapping_sub(end) & 0x00FF_FFFF
}

/// Iterations of the calibration loop.
pub const CALIBRATION_LOOPS: u32 = 1_000_000;

/// SysTick ticks of `CALIBRATION_LOOPS` iterations of a 3-instruction loop (`subs`, `nop`,
/// `bne`): 3,000,000 instructions under `-icount shift=0` (75,000 ticks where one tick is 40
/// instructions, as on `mps2-an386`).
#[inline(never)]
pub fn calibrate() -> u32 {
    let t0 = systick_now();
    // SAFETY: a register-only loop.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "nop",
            "bne 2b",
            n = inout(reg) CALIBRATION_LOOPS => _,
            options(nomem, nostack)
        );
    }
    ticks(t0, systick_now())
}

/// Steps per measurement.
pub const BENCH_STEPS: u32 = 100;

/// Measures one step function and prints
/// `bench-device model=<name> precision=<p> i=<I> h=<H> instructions_per_step=<N> macs=<M>
/// stack_bytes=<S> calibration_ticks=<C>` (`bench.sh` adds the target and the sizes):
/// `BENCH_STEPS` calls of `step`, each timed on its own (so that no region nears 2^24 ticks) and
/// summed, minus as many calls of an empty closure through the same `dyn` call (the timing's own
/// instructions), scaled by the calibration (3,000,000 instructions in `calibrate()` ticks), divided
/// by `BENCH_STEPS`. The stack is that of the first call (`stack_used`). Returns false if the stack
/// measurement overflowed.
pub fn bench(
    name: &str,
    precision: &str,
    i: usize,
    h: usize,
    macs: u32,
    step: &mut dyn FnMut(),
) -> bool {
    systick_start();
    let calib = calibrate();
    let stack = stack_used(step);
    let run = |f: &mut dyn FnMut()| -> u64 {
        let f = core::hint::black_box(f);
        let mut total = 0u64;
        for _ in 0..BENCH_STEPS {
            let t0 = systick_now();
            f();
            total += ticks(t0, systick_now()) as u64;
        }
        total
    };
    let work = run(step);
    let empty = run(&mut || {});
    let instructions = (work.saturating_sub(empty) * 3 * CALIBRATION_LOOPS as u64
        + calib as u64 / 2)
        / calib as u64;
    let per_step = (instructions + BENCH_STEPS as u64 / 2) / BENCH_STEPS as u64;
    let mut line = Line::new();
    line.str("bench-device model=")
        .str(name)
        .str(" precision=")
        .str(precision)
        .str(" i=")
        .uint(i as u32)
        .str(" h=")
        .uint(h as u32)
        .str(" instructions_per_step=")
        .uint(per_step as u32)
        .str(" macs=")
        .uint(macs)
        .str(" stack_bytes=")
        .uint(stack.unwrap_or(0) as u32)
        .str(" calibration_ticks=")
        .uint(calib)
        .print();
    stack.is_some()
}

/// Row `t` of a synthetic image for the classifier firmware: a diagonal stroke three pixels wide
/// (1 on the diagonal, falling linearly to 0).
pub fn stroke_row<const I: usize>(t: usize) -> [f32; I] {
    core::array::from_fn(|j| {
        let d = j.abs_diff(t);
        if d < 3 { 1.0 - d as f32 / 3.0 } else { 0.0 }
    })
}
