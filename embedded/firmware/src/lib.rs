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
            let q = if r > half || (r == half && q & 1 == 1) { q + 1 } else { q };
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
