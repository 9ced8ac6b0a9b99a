//! Up-front size checks: a run whose flags would need more memory or time than is sensible is
//! refused with one line naming the flags, before anything is allocated or written, instead of
//! an allocation abort or a run that would not end.
//!
//! Each task estimates its largest buffers (bytes held at once) and its work (floating-point
//! operations of the whole run) from its flags, in `u128` with saturating arithmetic, so that no
//! flag value can overflow the estimate into a small number. The limits:
//! - memory: half of this machine's physical RAM (`sysconf(_SC_PHYS_PAGES) * _SC_PAGESIZE`);
//! - work: [`MAX_OPS`] floating-point operations, months of one machine's time.
//!
//! Workspace sizes follow `net.rs` (`workspace`) and the core's `Cache::len`: per (step, batch
//! row), layer and direction an LSTM keeps 4H pre-activations, 4H gates, `tanh(c)`, `c`, `h` and
//! 4H gradient rows (15H), a GRU 11H, an RNN 3H; the packed weights and the state come on top.
//! The estimate is checked against the real allocation in the tests below.

use anyhow::{Result, bail};

use tinyrnn::Spec;
use tinyrnn::cell::CellKind as Kind;

/// Output columns of a packed weight panel (the core's `kernels::PANEL`).
const PANEL: u128 = tinyrnn::kernels::PANEL as u128;

/// Work above which a run is refused: 10^18 floating-point operations, months at the 10^11
/// per second of a fast machine (the default runs need 10^14 to 10^16).
pub const MAX_OPS: u128 = 1_000_000_000_000_000_000;

/// Bytes of an `f32`.
pub const F32: u128 = 4;

/// What a run needs, estimated from its flags.
#[derive(Debug, Clone, Default)]
pub struct Need {
    /// Bytes of the buffers held at once.
    pub bytes: u128,
    /// The flags `bytes` grows with, `(name, value)`, named in the error.
    pub bytes_flags: Vec<(&'static str, u128)>,
    /// Floating-point operations of the whole run.
    pub ops: u128,
    /// The flags `ops` grows with.
    pub ops_flags: Vec<(&'static str, u128)>,
}

/// The product of `factors`, saturating at `u128::MAX`.
pub fn product(factors: &[u128]) -> u128 {
    factors.iter().fold(1u128, |p, &f| p.saturating_mul(f))
}

/// The sum of `terms`, saturating at `u128::MAX`.
pub fn sum(terms: &[u128]) -> u128 {
    terms.iter().fold(0u128, |s, &t| s.saturating_add(t))
}

/// Scalars of a workspace of `steps` x `batch` for a model of shape `spec` (the core's
/// `Cache::len` plus the state and carries of `net.rs`, in saturating arithmetic).
pub fn workspace_floats(spec: &Spec, steps: u128, batch: u128) -> u128 {
    let h = spec.hidden as u128;
    let d = spec.directions() as u128;
    let g = spec.cell.gates() as u128;
    // Per (step, row) and hidden unit of one direction: h_t, c_t, the cell's cache, the
    // gradient rows (twice for a GRU).
    let (per_unit, units_per_panel) = match spec.cell {
        Kind::Lstm => (1 + 1 + 9 + 4, Some(8)),
        Kind::Gru => (1 + 4 + 6, None),
        Kind::RnnTanh => (1 + 1 + 1, Some(PANEL)),
        Kind::RnnRelu => (1 + 1 + 1, None),
    };
    let n = product(&[steps, batch, h]);
    let layer = |input: u128| {
        // The packed (LSTM, tanh RNN) or transposed (GRU) weights of the forward steps.
        let packed = match (spec.cell, units_per_panel) {
            (Kind::Gru, _) => product(&[g, h, sum(&[input, h])]),
            (_, Some(u)) => product(&[h.div_ceil(u), PANEL, sum(&[h, 1, input])]),
            _ => 0,
        };
        let dir = sum(&[
            product(&[n, per_unit]),
            product(&[2, batch, h]),
            packed,
            product(&[g, h]),
        ]);
        // Both directions' outputs side by side and their gradient halves, then dL/d output.
        let extra = if d == 2 { product(&[4, n]) } else { 0 };
        sum(&[product(&[d, dir]), extra, product(&[d, n])])
    };
    let width = product(&[d, h]);
    let layers = sum(&[
        layer(spec.input as u128),
        product(&[(spec.layers as u128).saturating_sub(1), layer(width)]),
    ]);
    let state = product(&[spec.layers as u128, d, batch, h]);
    sum(&[layers, product(&[4, state])])
}

/// Floating-point operations of one step of one batch row through a model of shape `spec`,
/// forward only: two per multiply-add of the gate matrices, about 20 per gate activation, and a
/// fixed 100 for the step's overhead (which dominates tiny cells).
pub fn step_ops(spec: &Spec) -> u128 {
    let (g, h) = (spec.cell.gates() as u128, spec.hidden as u128);
    let dirs = spec.directions() as u128;
    let layer = |input: u128| {
        product(&[
            dirs,
            sum(&[
                product(&[2, g, h, input.saturating_add(h)]),
                product(&[20, g, h]),
            ]),
        ])
    };
    sum(&[
        layer(spec.input as u128),
        product(&[
            (spec.layers as u128).saturating_sub(1),
            layer(product(&[dirs, h])),
        ]),
        100,
    ])
}

/// Physical memory of this machine in bytes, if the system says.
pub fn physical_memory() -> Option<u128> {
    // SAFETY: sysconf reads a system constant; it has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u128 * size as u128)
}

/// `bytes` in binary units ("1.5 TiB").
pub fn human(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut k = 0;
    while v >= 1024.0 && k + 1 < units.len() {
        v /= 1024.0;
        k += 1;
    }
    match k {
        0 => format!("{bytes} bytes"),
        _ => format!("{v:.1} {}", units[k]),
    }
}

/// `items` joined as "a, b and c" (`last` = "and") or "a, b or c".
fn join(items: &[String], last: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

/// "--batch 8 with --length 100 and --hidden 32", and "--batch, --length or --hidden".
fn named(flags: &[(&str, u128)]) -> (String, String) {
    let with: Vec<String> = flags.iter().map(|(f, v)| format!("{f} {v}")).collect();
    let names: Vec<String> = flags.iter().map(|(f, _)| f.to_string()).collect();
    let listed = match with.split_first() {
        None => "these flags".to_string(),
        Some((first, [])) => first.clone(),
        Some((first, rest)) => format!("{first} with {}", join(rest, "and")),
    };
    (listed, join(&names, "or"))
}

/// Refuses `need` if it exceeds half of `ram` bytes or [`MAX_OPS`].
pub fn check_against(need: &Need, ram: Option<u128>) -> Result<()> {
    if let Some(ram) = ram
        && need.bytes > ram / 2
    {
        let (flags, lower) = named(&need.bytes_flags);
        bail!(
            "{flags} needs {} of memory, more than half of this machine's {}; lower {lower}",
            human(need.bytes),
            human(ram)
        );
    }
    if need.ops > MAX_OPS {
        let (flags, lower) = named(&need.ops_flags);
        bail!(
            "{flags} needs about {:.1e} floating-point operations, more than {:.0e} (months of \
             computing); lower {lower}",
            need.ops as f64,
            MAX_OPS as f64
        );
    }
    Ok(())
}

/// Refuses `need` if it exceeds half of this machine's RAM or [`MAX_OPS`].
pub fn check(need: &Need) -> Result<()> {
    check_against(need, physical_memory())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Net, Outputs};

    /// The workspace estimate is within 2x of (and never under) the scalars really allocated.
    #[test]
    fn workspace_estimate_matches_allocation() {
        for cell in Kind::ALL {
            for (h, layers, bidirectional) in [
                (1, 1, false),
                (32, 2, true),
                (256, 1, false),
                (64, 3, false),
            ] {
                let spec = Spec {
                    cell,
                    input: 3,
                    hidden: h,
                    layers,
                    bidirectional,
                    output: 1,
                };
                let net = Net::new(spec).unwrap();
                for (steps, batch) in [(1, 1), (10, 4), (100, 64)] {
                    let real = net.workspace(steps, batch, Outputs::EveryStep).floats() as u128;
                    let est = workspace_floats(&spec, steps as u128, batch as u128);
                    assert!(
                        est >= real && est <= 2 * real,
                        "{cell} H={h} x{layers} T={steps} B={batch}: estimate {est}, real {real}"
                    );
                }
            }
        }
    }

    #[test]
    fn refusal_names_the_flags_and_the_bytes() {
        let need = Need {
            bytes: 1 << 41,
            bytes_flags: vec![("--batch", 4294967295), ("--length", 100)],
            ops: 0,
            ops_flags: vec![("--steps", 1 << 60)],
        };
        let e = check_against(&need, Some(16 << 30))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--batch 4294967295 with --length 100 needs 2.0 TiB of memory, more than half of \
             this machine's 16.0 GiB; lower --batch or --length"
        );
        assert!(check_against(&need, Some(1 << 43)).is_ok());
        let slow = Need {
            ops: MAX_OPS + 1,
            ..need
        };
        let e = check_against(&slow, Some(1 << 43)).unwrap_err().to_string();
        assert!(
            e.starts_with("--steps 1152921504606846976 needs about 1.0e18 floating-point"),
            "{e}"
        );
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(product(&[u128::MAX, 2]), u128::MAX);
        let spec = Spec::new(Kind::Lstm, 1, 256, 1);
        let w = workspace_floats(&spec, u64::MAX as u128, u64::MAX as u128);
        assert_eq!(w, u128::MAX);
    }
}
