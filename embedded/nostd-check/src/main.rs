//! `nostd-check`: runs the `tinyrnn` core in a binary that has no `std`, no `alloc` and no libc.
//!
//! Builds an `LstmModel<1, 8, 1>` (f32) with weights `0.1 * cos(k)` over its flat parameter buffer,
//! feeds it a fixed input sequence through `model.step` (the default SIMD kernels) and, side by
//! side, through `lstm.step_with::<Naive>` plus `head.forward_with::<Naive>`, prints both outputs
//! and exits 0 if they agree within 1e-5 (outputs, h and c), 1 otherwise; a panic exits 101.
//!
//! Everything libc or the Rust runtime would normally provide is here: `_start`, the `mem*`
//! functions the compiler emits calls to, the panic handler, `rust_eh_personality` (the prebuilt
//! `core` is compiled with unwinding; a dev build references it), and the `write` / `exit_group`
//! syscalls. x86-64 Linux only.
#![no_std]
#![no_main]

use core::arch::{asm, naked_asm};
use core::panic::PanicInfo;

use tinyrnn::{LstmModel, LstmState, Naive, Params};

const H: usize = 8;
type Model = LstmModel<1, H, 1>;

/// Fixed input sequence.
const XS: [f32; 8] = [0.5, -0.25, 1.0, 0.0, -1.0, 0.75, 2.0, -0.5];
/// Largest |simd - naive| accepted (FMA in the SIMD kernels may change the last bits).
const TOL: f32 = 1e-5;

// ---------------------------------------------------------------------------------------------
// The program

fn run(out: &mut Out) -> i32 {
    let mut model = Model::zeroed();
    // w[k] = 0.1 * cos(k), k = 0, 1, ... over the flat buffer, by the Chebyshev recurrence
    // cos(k + 1) = 2 cos(1) cos(k) - cos(k - 1) (no libm needed, exact to ~1e-13 in f64).
    let two_cos1 = 2.0 * 0.540_302_305_868_139_8_f64;
    let (mut prev, mut cur) = (0.540_302_305_868_139_8_f64, 1.0_f64); // cos(-1), cos(0)
    let flat = model.as_flat_mut();
    let n_params = flat.len();
    for w in flat.iter_mut() {
        *w = (0.1 * cur) as f32;
        let next = two_cos1 * cur - prev;
        prev = cur;
        cur = next;
    }

    out.str("nostd-check: LstmModel<1, 8, 1> f32, ");
    out.uint(n_params as u64);
    out.str(" params, w[k] = 0.1*cos(k)\n");

    let mut s_simd = LstmState::<H>::zero();
    let mut s_naive = LstmState::<H>::zero();
    let mut max_diff = 0.0_f32;
    let mut max_abs_y = 0.0_f32;
    let mut finite = true;
    for (t, &x) in XS.iter().enumerate() {
        // Default kernels (Simd for f32), through the embedded inference API.
        let y_simd = model.step(&[x], &mut s_simd);
        // Naive twins of both layers.
        model.lstm.step_with::<Naive>(&[x], &mut s_naive);
        let mut y_naive = [[0.0_f32; 1]];
        if model
            .head
            .forward_with::<Naive>(&[s_naive.h], &mut y_naive)
            .is_err()
        {
            out.str("nostd-check: FAIL: head.forward_with returned an error\n");
            return 1;
        }
        let y_naive = y_naive[0];

        let mut d = diff(y_simd[0], y_naive[0]);
        for i in 0..H {
            d = max(d, diff(s_simd.h[i], s_naive.h[i]));
            d = max(d, diff(s_simd.c[i], s_naive.c[i]));
            finite &= s_simd.h[i].is_finite() && s_simd.c[i].is_finite();
        }
        finite &= y_simd[0].is_finite() && y_naive[0].is_finite();
        max_diff = max(max_diff, d);
        max_abs_y = max(max_abs_y, abs(y_simd[0]));

        out.str("  t=");
        out.uint(t as u64);
        out.str(" x=");
        out.float(x, 2);
        out.str(" y_simd=");
        out.float(y_simd[0], 7);
        out.str(" y_naive=");
        out.float(y_naive[0], 7);
        out.str(" max|d|(y,h,c)=");
        out.float(d, 9);
        out.str("\n");
    }
    out.str("  h_final=[");
    for (i, &h) in s_simd.h.iter().enumerate() {
        if i > 0 {
            out.str(", ");
        }
        out.float(h, 6);
    }
    out.str("]\n  max |simd - naive| = ");
    out.float(max_diff, 9);
    out.str(" (tolerance ");
    out.float(TOL, 5);
    out.str(")\n");

    if !finite {
        out.str("nostd-check: FAIL: non-finite value\n");
        1
    } else if max_diff > TOL {
        out.str("nostd-check: FAIL: Simd and Naive kernels disagree\n");
        1
    } else if max_abs_y < 1e-3 {
        out.str("nostd-check: FAIL: outputs are all ~0 (model not exercised)\n");
        1
    } else {
        out.str("nostd-check: ok\n");
        0
    }
}

fn diff(a: f32, b: f32) -> f32 {
    // NaN compares as a failure.
    let d = abs(a - b);
    if d.is_nan() { f32::INFINITY } else { d }
}

fn abs(v: f32) -> f32 {
    f32::from_bits(v.to_bits() & 0x7fff_ffff)
}

fn max(a: f32, b: f32) -> f32 {
    if b > a { b } else { a }
}

// ---------------------------------------------------------------------------------------------
// Output: a fixed buffer, a tiny number formatter, the raw `write` syscall

struct Out {
    buf: [u8; 4096],
    len: usize,
}

impl Out {
    const fn new() -> Self {
        Out {
            buf: [0; 4096],
            len: 0,
        }
    }

    fn bytes(&mut self, s: &[u8]) {
        for &b in s {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn uint(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&digits[i..]);
    }

    /// Fixed-point with `decimals` digits after the point, rounded half up (enough for values of
    /// moderate size; larger magnitudes print as "big").
    fn float(&mut self, v: f32, decimals: u32) {
        if v.is_nan() {
            return self.str("NaN");
        }
        if v.is_sign_negative() {
            self.str("-");
        }
        let a = abs(v) as f64;
        if a.is_infinite() {
            return self.str("inf");
        }
        let scale = 10u64.pow(decimals);
        if a >= 1e9 {
            return self.str("big");
        }
        let scaled = (a * scale as f64 + 0.5) as u64;
        self.uint(scaled / scale);
        if decimals > 0 {
            self.str(".");
            let mut frac = scaled % scale;
            let mut digits = [b'0'; 20];
            for i in (0..decimals as usize).rev() {
                digits[i] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            self.bytes(&digits[..decimals as usize]);
        }
    }

    fn flush(&mut self) {
        write_all(1, &self.buf[..self.len]);
        self.len = 0;
    }
}

fn write_all(fd: usize, mut s: &[u8]) {
    while !s.is_empty() {
        let r = unsafe { sys_write(fd, s.as_ptr(), s.len()) };
        if r <= 0 {
            return;
        }
        s = &s[r as usize..];
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime: entry point, syscalls, panic handler

/// Process entry: the kernel jumps here with argc at [rsp]. Clear the frame pointer, align the
/// stack to 16 bytes as the SysV ABI requires before a call, and never return.
///
/// # Safety
/// Only the kernel may call this, as the process's first instruction.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {entry}",
        "ud2",
        entry = sym entry,
    )
}

extern "C" fn entry(_initial_sp: *const usize) -> ! {
    let mut out = Out::new();
    let code = run(&mut out);
    out.flush();
    exit_group(code)
}

unsafe fn sys_write(fd: usize, buf: *const u8, len: usize) -> isize {
    let ret: isize;
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") 1isize => ret, // SYS_write
            in("rdi") fd,
            in("rsi") buf,
            in("rdx") len,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn exit_group(code: i32) -> ! {
    unsafe {
        asm!(
            "syscall",
            in("rax") 231usize, // SYS_exit_group
            in("rdi") code as isize,
            options(noreturn, nostack),
        )
    }
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    write_all(2, b"nostd-check: panic\n");
    exit_group(101)
}

/// Referenced by the prebuilt (unwinding) `core` in unoptimised builds; never called, since every
/// profile here aborts on panic.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

// ---------------------------------------------------------------------------------------------
// The memory functions the compiler lowers copies, fills and comparisons to. Written with
// `rep movsb` / `rep stosb` and volatile loads so that LLVM cannot turn their bodies back into
// calls to themselves. The direction flag is clear on entry to any function (SysV ABI).

/// # Safety
/// `dst` must be valid for `n` bytes of writes, `src` for `n` bytes of reads; no overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dst
}

/// # Safety
/// `dst` must be valid for `n` bytes of writes, `src` for `n` bytes of reads; may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // dst before src, or no overlap: a forward copy is correct.
        unsafe { memcpy(dst, src, n) }
    } else {
        // dst inside (src, src + n): copy backwards.
        unsafe {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dst.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack),
            );
        }
        dst
    }
}

/// # Safety
/// `dst` must be valid for `n` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    dst
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes of reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes of reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    unsafe { memcmp(a, b, n) }
}
