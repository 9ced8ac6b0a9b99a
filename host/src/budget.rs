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
//! Workspace sizes follow `net.rs` (`workspace`) and the core's `LstmCache::len` /
//! `RnnCache::len`: per (step, batch row) an LSTM keeps 4H gates pre- and post-activation, the
//! gate gradients, `c`, `tanh(c)`, `h` (15H) and the host's `dh` (H); an RNN 3H + H. The
//! estimate is checked against the real allocation in the tests below.

use anyhow::{Result, bail};

use crate::net::CellKind;

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

/// Scalars of a workspace of `steps` x `batch` for a cell of hidden size `hidden` (see
/// `net.rs` and the module doc).
pub fn workspace_floats(cell: CellKind, steps: u128, batch: u128, hidden: u128) -> u128 {
    let (per_row, state, units_per_panel) = match cell {
        CellKind::Lstm => (16, 6, 8),
        CellKind::Rnn => (4, 3, PANEL),
    };
    // The packed recurrent weights: `lstm_packed_len` / `rnn_packed_len` of the core.
    let panels = hidden.div_ceil(units_per_panel);
    sum(&[
        product(&[steps, batch, per_row, hidden]),
        product(&[state, batch, hidden]),
        product(&[panels, PANEL, hidden.saturating_add(1)]),
    ])
}

/// Floating-point operations of one step of one batch row through a cell of `input` inputs and
/// `hidden` units, forward only: two per multiply-add of the gate matrices, about 20 per gate
/// activation, and a fixed 100 for the step's overhead (which dominates tiny cells).
pub fn step_ops(cell: CellKind, input: u128, hidden: u128) -> u128 {
    let gates = crate::modelfile::core_cell(cell).gates() as u128;
    sum(&[
        product(&[2, gates, hidden, input.saturating_add(hidden)]),
        product(&[20, gates, hidden]),
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
    use tinyrnn::{LstmModel, RnnModel};

    /// The workspace estimate is within 2x of (and never under) the scalars really allocated.
    #[test]
    fn workspace_estimate_matches_allocation() {
        fn case<N: Net<1, 1>>(cell: CellKind, h: usize) {
            for (steps, batch) in [(1, 1), (10, 4), (100, 64)] {
                let real = N::workspace(steps, batch, Outputs::EveryStep).floats() as u128;
                let est = workspace_floats(cell, steps as u128, batch as u128, h as u128);
                assert!(
                    est >= real && est <= 2 * real,
                    "{cell:?} H={h} T={steps} B={batch}: estimate {est}, real {real}"
                );
            }
        }
        case::<LstmModel<1, 1, 1>>(CellKind::Lstm, 1);
        case::<LstmModel<1, 32, 1>>(CellKind::Lstm, 32);
        case::<LstmModel<1, 256, 1>>(CellKind::Lstm, 256);
        case::<RnnModel<1, 1, 1>>(CellKind::Rnn, 1);
        case::<RnnModel<1, 64, 1>>(CellKind::Rnn, 64);
        case::<RnnModel<1, 256, 1>>(CellKind::Rnn, 256);
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
        let w = workspace_floats(CellKind::Lstm, u64::MAX as u128, u64::MAX as u128, 256);
        assert_eq!(w, u128::MAX);
    }
}
