//! PNG plots (plotters, bitmap backend). Text uses DejaVu Sans from Debian's `fonts-dejavu-core`.
//!
//! What every panel gets, whatever the run length:
//! - ticks chosen here, not by plotters ([`linear_axis`], [`log_axis`]): a step of 1, 2 or 5 times
//!   a power of ten, labelled with as many decimals as the step needs (so neighbouring labels
//!   differ and none reads "-0"), whole numbers on count axes (update, epoch, step) and on
//!   integer data; log axes labelled at decades, or at 1-2-5 within a decade when the range is
//!   short;
//! - the x axis from the data's first x (from 0 when the data start in the first half of the
//!   range), and a right margin wide enough for the last label;
//! - markers on short series (at most [`MARKERS_UP_TO`] points), so one epoch is a dot, not
//!   nothing; reference levels (two points at one y: chance, a baseline) dashed ([`is_reference`]);
//! - the legend in the corner of the plot with the least data under it, or, when every corner
//!   is taken, in headroom added above the data ([`legend_corner`]);
//! - a labelled vertical marker where [`Panel::vline`] is set ([`Panel::vline_label`]).
//!
//! Output is deterministic: the same panels give the same PNG bytes.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line on a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (x, y) points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Line colour.
    pub color: RGBColor,
}

/// Where a panel's legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Legend {
    /// The corner with the least data under it; headroom above the data when none is free.
    #[default]
    Auto,
    /// Top left of the plot area.
    UpperLeft,
    /// Top right of the plot area.
    UpperRight,
    /// Bottom left of the plot area.
    LowerLeft,
    /// Bottom right of the plot area.
    LowerRight,
    /// No legend.
    Hidden,
}

/// One chart.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// Caption.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// A vertical marker (e.g. where the warm-up ends).
    pub vline: Option<f64>,
    /// Text beside the vertical marker, at the top of the plot (e.g. "free-running from here");
    /// empty for none.
    pub vline_label: String,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Legend placement.
    pub legend: Legend,
}

/// Colours for successive series.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Series with at most this many points are drawn with a marker at every point.
pub const MARKERS_UP_TO: usize = 20;

/// The points (update, value) of a metrics log: column 0 against column `col`, skipping rows
/// where either does not parse.
pub fn log_column<const N: usize>(log: &[[String; N]], col: usize) -> Vec<(f64, f64)> {
    log.iter()
        .filter_map(|r| Some((r[0].parse().ok()?, r[col].parse().ok()?)))
        .collect()
}

/// The panel [`draw_loss`] draws: one unlabelled training-loss curve against the update, on a
/// logarithmic y axis. Set `vline` and `vline_label` on it to mark a change of training mode.
pub fn loss_panel(title: &str, y_label: &str, points: Vec<(f64, f64)>) -> Panel {
    Panel {
        title: title.into(),
        x_label: "update".into(),
        y_label: y_label.into(),
        log_y: true,
        series: vec![Series {
            label: String::new(),
            points,
            color: PALETTE[0],
        }],
        ..Panel::default()
    }
}

/// A single-panel plot of one training-loss curve against the update, on a logarithmic y axis
/// (700 x 400).
pub fn draw_loss(path: &Path, title: &str, y_label: &str, points: Vec<(f64, f64)>) -> Result<()> {
    draw(path, &[loss_panel(title, y_label, points)], 1, (700, 400))
}

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = FONT_PATHS
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                "plots need the DejaVu Sans font: apt-get install fonts-dejavu-core".to_string()
            })?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "DejaVuSans.ttf is not a valid font".to_string())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

// ---------------------------------------------------------------------------------------------
// Axes: ranges, tick positions and tick labels (pure functions, tested in host/tests/plots.rs).

/// One axis: its range, labelled ticks and unlabelled grid lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Lower end of the range.
    pub lo: f64,
    /// Upper end of the range.
    pub hi: f64,
    /// Logarithmic.
    pub log: bool,
    /// Labelled tick positions, ascending, all within `lo..=hi`.
    pub ticks: Vec<f64>,
    /// One label per tick.
    pub labels: Vec<String>,
    /// Light grid lines between the ticks.
    pub minor: Vec<f64>,
}

impl Axis {
    /// The label of a tick position (empty when `v` is not a tick).
    pub fn label_of(&self, v: f64) -> String {
        let tol = |t: f64| {
            if self.log {
                1e-9 * t.abs()
            } else {
                1e-9 * (self.hi - self.lo).abs()
            }
        };
        self.ticks
            .iter()
            .position(|&t| (t - v).abs() <= tol(t))
            .map(|i| self.labels[i].clone())
            .unwrap_or_default()
    }

    /// `v`'s position on the axis in 0..1 (linear in `v` or in `log10 v`).
    pub fn unit(&self, v: f64) -> f64 {
        let t = |v: f64| {
            if self.log {
                v.max(f64::MIN_POSITIVE).log10()
            } else {
                v
            }
        };
        (t(v) - t(self.lo)) / (t(self.hi) - t(self.lo))
    }
}

/// An [`Axis`] as a plotters coordinate: its own mapping (linear or log10) and its own ticks.
struct Ticked(Axis);

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let u = self.0.unit(*v);
        let len = f64::from(limit.1 - limit.0);
        if !u.is_finite() {
            return if u > 0.0 { limit.1 } else { limit.0 };
        }
        limit.0 + (len * u + 1e-3 * len.signum()).trunc() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.0.minor.clone()
        } else {
            self.0.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.0.lo..self.0.hi
    }
}

/// `v` with `decimals` decimals; never "-0", "-0.0", ...
pub fn format_fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
        _ => s,
    }
}

/// The decimals that tell apart ticks `step` apart (0 for a step of 1 or more).
pub fn decimals_for(step: f64) -> usize {
    let e = (step.abs().log10() + 1e-9).floor();
    if e >= 0.0 { 0 } else { (-e) as usize }
}

/// A tick step of 1, 2 or 5 times a power of ten (at least 1 when `integer`) that puts at most
/// `max_ticks` ticks in `lo..=hi`.
pub fn nice_step(lo: f64, hi: f64, max_ticks: usize, integer: bool) -> f64 {
    let span = (hi - lo).abs().max(f64::MIN_POSITIVE);
    let max_ticks = max_ticks.max(2);
    let mut e = (span / max_ticks as f64).log10().floor() as i32 - 1;
    loop {
        for m in [1.0, 2.0, 5.0] {
            let step = m * 10f64.powi(e);
            if integer && step < 1.0 {
                continue;
            }
            if count_ticks(lo, hi, step) <= max_ticks {
                return step;
            }
        }
        e += 1;
    }
}

fn tick_range(lo: f64, hi: f64, step: f64) -> (i64, i64) {
    let eps = 1e-9;
    (
        (lo / step - eps).ceil() as i64,
        (hi / step + eps).floor() as i64,
    )
}

fn count_ticks(lo: f64, hi: f64, step: f64) -> usize {
    let (a, b) = tick_range(lo, hi, step);
    (b - a + 1).max(0) as usize
}

/// A linear axis over `lo..hi`: at most `max_ticks` ticks at multiples of [`nice_step`], labelled
/// with [`decimals_for`] the step; whole numbers when `integer`.
pub fn linear_axis(lo: f64, hi: f64, max_ticks: usize, integer: bool) -> Axis {
    let step = nice_step(lo, hi, max_ticks, integer);
    let (a, b) = tick_range(lo, hi, step);
    let ticks: Vec<f64> = (a..=b).map(|i| i as f64 * step).collect();
    let d = decimals_for(step);
    let labels = ticks.iter().map(|&v| format_fixed(v, d)).collect();
    let (ma, mb) = tick_range(lo, hi, step / 2.0);
    let minor = (ma..=mb)
        .filter(|i| i % 2 != 0)
        .map(|i| i as f64 * step / 2.0)
        .collect();
    Axis {
        lo,
        hi,
        log: false,
        ticks,
        labels,
        minor,
    }
}

/// Labels for ticks at 1, 2 or 5 times powers of ten: plain decimals when all lie within
/// 1e-4..=1e5, else all as `2e-6` (and 1 to 9 as themselves).
pub fn log_labels(ticks: &[f64]) -> Vec<String> {
    let decade = |v: f64| (v.log10() + 1e-9).floor() as i32;
    if ticks.iter().all(|&v| (-4..=5).contains(&decade(v))) {
        ticks
            .iter()
            .map(|&v| format_fixed(v, (-decade(v)).max(0) as usize))
            .collect()
    } else {
        ticks
            .iter()
            .map(|&v| {
                let k = decade(v);
                let m = format_fixed(v / 10f64.powi(k), 0);
                if k == 0 { m } else { format!("{m}e{k}") }
            })
            .collect()
    }
}

/// A log axis over `lo..hi` (both > 0): ticks at decades (every n-th decade to keep at most
/// `max_ticks`) when the range holds three or more, else at 1, 2 and 5 times the decades, else
/// at linear steps within the range; grid lines at 2..9 times each decade.
pub fn log_axis(lo: f64, hi: f64, max_ticks: usize) -> Axis {
    let (a, b) = (lo.log10(), hi.log10());
    let eps = 1e-9;
    let (d0, d1) = ((a - eps).ceil() as i32, (b + eps).floor() as i32);
    let inside = |v: f64| v >= lo * (1.0 - eps) && v <= hi * (1.0 + eps);
    let mut minor = Vec::new();
    for k in (a.floor() as i32)..=(b.ceil() as i32) {
        for m in 2..=9 {
            let v = f64::from(m) * 10f64.powi(k);
            if inside(v) {
                minor.push(v);
            }
        }
    }
    let decades = (d1 - d0 + 1).max(0) as usize;
    let mut ticks: Vec<f64> = Vec::new();
    for k in (a.floor() as i32)..=(b.ceil() as i32) {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            if inside(v) {
                ticks.push(v);
            }
        }
    }
    if decades >= 3 || ticks.len() > max_ticks + 1 {
        let stride = decades.div_ceil(max_ticks.max(2)) as i32;
        ticks = (d0..=d1)
            .filter(|k| k.rem_euclid(stride) == 0)
            .map(|k| 10f64.powi(k))
            .collect();
        if ticks.len() < 2 {
            ticks = vec![10f64.powi(d0), 10f64.powi(d1)];
        }
        if stride > 1 {
            minor = (d0..=d1)
                .map(|k| 10f64.powi(k))
                .filter(|v| !ticks.contains(v))
                .collect();
        }
        let labels = log_labels(&ticks);
        return Axis {
            lo,
            hi,
            log: true,
            ticks,
            labels,
            minor,
        };
    }
    if ticks.len() >= 3 {
        minor.retain(|v| !ticks.contains(v));
        let labels = log_labels(&ticks);
        return Axis {
            lo,
            hi,
            log: true,
            ticks,
            labels,
            minor,
        };
    }
    // Less than about half a decade: linear steps read best.
    let lin = linear_axis(lo, hi, max_ticks, false);
    Axis {
        lo,
        hi,
        log: true,
        minor: lin.minor,
        ticks: lin.ticks,
        labels: lin.labels,
    }
}

/// Whether an axis called `label` counts things (updates, epochs, steps, blanks), so that its
/// ticks are whole numbers.
pub fn counts(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    ["update", "epoch", "step", "blanks"]
        .iter()
        .any(|w| l.starts_with(w))
}

/// The x range of data spanning `lo..=hi`: from 0 when the data start in the first half of
/// `0..hi`, else from `lo`; a single x gets one unit either side (from 0 if that is below 0 and
/// x is not).
pub fn x_range(lo: f64, hi: f64) -> (f64, f64) {
    if hi - lo <= 1e-12 * lo.abs().max(1.0) {
        let (a, b) = (lo - 1.0, hi + 1.0);
        return (if lo >= 0.0 && a < 0.0 { 0.0 } else { a }, b);
    }
    if lo >= 0.0 && lo <= 0.5 * hi {
        (0.0, hi)
    } else {
        (lo, hi)
    }
}

/// The y range of data spanning `lo..=hi`: 5% of the span either side (in log10 on a log
/// axis); a constant gets a visible range around it (at least 1 either side for integers).
pub fn y_range(lo: f64, hi: f64, log: bool, integer: bool) -> (f64, f64) {
    if log {
        let (a, b) = (lo.log10(), hi.log10());
        let pad = ((b - a) * 0.05).max(0.05);
        return (10f64.powf(a - pad), 10f64.powf(b + pad));
    }
    let span = hi - lo;
    if span <= 1e-12 * lo.abs().max(hi.abs()).max(1e-300) {
        let mut pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        if integer {
            pad = pad.max(1.0);
        }
        let (a, b) = (lo - pad, hi + pad);
        // A count that stays at 0 should not show a negative range.
        return (if lo >= 0.0 && a < 0.0 { -0.05 * b } else { a }, b);
    }
    let pad = span * 0.05;
    (lo - pad, hi + pad)
}

// ---------------------------------------------------------------------------------------------
// Legend placement.

/// A corner of the plot area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    /// Top right.
    UpperRight,
    /// Top left.
    UpperLeft,
    /// Bottom right.
    LowerRight,
    /// Bottom left.
    LowerLeft,
}

impl Corner {
    /// All corners in order of preference (ties go to the first).
    pub const ALL: [Corner; 4] = [
        Corner::UpperRight,
        Corner::UpperLeft,
        Corner::LowerRight,
        Corner::LowerLeft,
    ];

    /// Whether the unit-square point `(x, y)` (y up) lies in a box of `size` at this corner.
    pub fn contains(self, size: (f64, f64), (x, y): (f64, f64)) -> bool {
        let in_x = match self {
            Corner::UpperLeft | Corner::LowerLeft => x <= size.0,
            Corner::UpperRight | Corner::LowerRight => x >= 1.0 - size.0,
        };
        let in_y = match self {
            Corner::UpperLeft | Corner::UpperRight => y >= 1.0 - size.1,
            Corner::LowerLeft | Corner::LowerRight => y <= size.1,
        };
        in_x && in_y && (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)
    }
}

/// The corner whose box of `size` (fractions of the plot area) covers the fewest of `samples`
/// (points in the unit square, y up), and how many it covers.
pub fn legend_corner(samples: &[(f64, f64)], size: (f64, f64)) -> (Corner, usize) {
    Corner::ALL
        .iter()
        .map(|&c| (c, samples.iter().filter(|&&p| c.contains(size, p)).count()))
        .min_by_key(|&(_, n)| n)
        .expect("four corners")
}

/// Points along the polyline `pts` (unit square) no further apart than `spacing`.
pub fn sample_polyline(pts: &[(f64, f64)], spacing: f64, out: &mut Vec<(f64, f64)>) {
    if let Some(&p) = pts.first() {
        out.push(p);
    }
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let n = ((len / spacing).ceil() as usize).clamp(1, 1000);
        for i in 1..=n {
            let f = i as f64 / n as f64;
            out.push((x0 + (x1 - x0) * f, y0 + (y1 - y0) * f));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Drawing.

const MARGIN: u32 = 8;
/// Room right of the plot area for half of the last x label.
const MARGIN_RIGHT: u32 = 24;
const X_LABEL_AREA: u32 = 38;
const Y_LABEL_AREA: u32 = 58;
const CAPTION_PX: u32 = 18;
const LABEL_PX: u32 = 12;

/// Whether `s` is a reference level (chance, a baseline): two points at the same y, drawn
/// dashed and without markers.
pub fn is_reference(s: &Series) -> bool {
    matches!(s.points.as_slice(), [a, b] if a.1 == b.1 && a.0 != b.0)
}

/// Whether `s` is drawn with a marker at every point: short series that are not references.
pub fn has_markers(s: &Series) -> bool {
    !is_reference(s) && (1..=MARKERS_UP_TO).contains(&s.points.len())
}

fn usable(panel: &Panel, p: (f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite() && (!panel.log_y || p.1 > 0.0)
}

fn integral(v: f64) -> bool {
    (v - v.round()).abs() < 1e-9
}

/// The x and y axes of a panel, before legend headroom.
fn axes(panel: &Panel) -> (Axis, (f64, f64), bool) {
    let pts = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&p| usable(panel, p))
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if let Some(v) = panel.vline.filter(|v| v.is_finite()) {
        (x0, x1) = (x0.min(v), x1.max(v));
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if y0 > y1 {
        (y0, y1) = if panel.log_y { (1e-3, 1.0) } else { (0.0, 1.0) };
    }
    let x_int = counts(&panel.x_label) || pts().all(|p| integral(p.0));
    let y_int = !panel.log_y && pts().all(|p| integral(p.1));
    let (mut lo, mut hi) = x_range(x0, x1);
    // Room for markers at either end.
    let marked = || {
        panel
            .series
            .iter()
            .filter(|s| has_markers(s))
            .flat_map(|s| s.points.iter().copied())
            .filter(|&p| usable(panel, p))
    };
    let pad = (hi - lo) * 0.03;
    let tol = 0.01 * (hi - lo);
    let (at_lo, at_hi) = (
        marked().any(|p| (p.0 - lo).abs() <= tol),
        marked().any(|p| (p.0 - hi).abs() <= tol),
    );
    if at_lo {
        lo -= pad;
    }
    if at_hi {
        hi += pad;
    }
    let x = linear_axis(lo, hi, 7, x_int);
    (x, y_range(y0, y1, panel.log_y, y_int), y_int)
}

fn y_axis(panel: &Panel, (lo, hi): (f64, f64), integer: bool) -> Axis {
    if panel.log_y {
        log_axis(lo, hi, 7)
    } else {
        linear_axis(lo, hi, 6, integer)
    }
}

/// Where the panel's legend and vertical-marker label go, and the y range that leaves room for
/// them.
struct Layout {
    x: Axis,
    y: Axis,
    legend: Option<SeriesLabelPosition>,
    /// The marker's label goes right of the line (else left).
    vlabel_right: bool,
}

fn layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Layout {
    let (x, (ylo, mut yhi), y_int) = axes(panel);
    let (w, h) = area.dim_in_pixel();
    let plot_w = w
        .saturating_sub(2 * MARGIN + MARGIN_RIGHT + Y_LABEL_AREA)
        .max(50) as f64;
    let plot_h = h
        .saturating_sub(2 * MARGIN + X_LABEL_AREA + CAPTION_PX + 10)
        .max(50) as f64;
    let font: TextStyle = ("sans-serif", LABEL_PX).into_font().into();
    let text = |s: &str| area.estimate_text_size(s, &font).unwrap_or((0, 0));
    let labelled: Vec<&Series> = panel
        .series
        .iter()
        .filter(|s| !s.label.is_empty())
        .collect();
    let legend_px = (!labelled.is_empty() && panel.legend != Legend::Hidden).then(|| {
        let tw = labelled.iter().map(|s| text(&s.label).0).max().unwrap_or(0);
        let line = text("Ag").1.max(LABEL_PX) as f64 * 1.25;
        (
            tw as f64 + 30.0 + 20.0 + 10.0,
            line * labelled.len() as f64 + 20.0 + 10.0,
        )
    });
    let vlabel_px = (panel.vline.is_some() && !panel.vline_label.is_empty()).then(|| {
        let (tw, th) = text(&panel.vline_label);
        (tw as f64 + 8.0, th as f64 + 8.0)
    });

    // Samples of the data (and of the marker line) in the unit square.
    let y0 = Axis {
        lo: ylo,
        hi: yhi,
        log: panel.log_y,
        ticks: vec![],
        labels: vec![],
        minor: vec![],
    };
    let mut data = Vec::new();
    for s in &panel.series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|&&p| usable(panel, p))
            .map(|&(px, py)| (x.unit(px), y0.unit(py)))
            .collect();
        sample_polyline(&pts, 0.01, &mut data);
    }
    let line_u = panel.vline.map(|v| x.unit(v));
    let mut with_line = data.clone();
    if let Some(u) = line_u {
        sample_polyline(&[(u, 0.0), (u, 1.0)], 0.01, &mut with_line);
    }

    let mut headroom: f64 = 0.0;
    // The legend: a free corner, else headroom above the data in an upper corner the marker
    // line does not cross.
    let mut legend_at: Option<(Corner, (f64, f64))> = None;
    if let Some((bw, bh)) = legend_px {
        let size = (bw / plot_w, bh / plot_h);
        let corner = match panel.legend {
            Legend::UpperLeft => Corner::UpperLeft,
            Legend::UpperRight => Corner::UpperRight,
            Legend::LowerLeft => Corner::LowerLeft,
            Legend::LowerRight => Corner::LowerRight,
            Legend::Auto | Legend::Hidden => {
                let (c, n) = legend_corner(&with_line, size);
                if n == 0 {
                    c
                } else {
                    headroom = size.1;
                    match line_u {
                        Some(u) if u >= 1.0 - size.0 && u > size.0 => Corner::UpperLeft,
                        _ => Corner::UpperRight,
                    }
                }
            }
        };
        legend_at = Some((corner, size));
    }
    // The marker's label: beside the line at the top, on the side clear of the legend; headroom
    // when data lie under it.
    let mut vlabel_right = true;
    if let (Some(u), Some((bw, bh))) = (line_u, vlabel_px) {
        let (bw, bh) = (bw / plot_w, bh / plot_h);
        let legend_x = match legend_at {
            Some((Corner::UpperLeft, (w, _))) => Some((0.0, w)),
            Some((Corner::UpperRight, (w, _))) => Some((1.0 - w, 1.0)),
            _ => None,
        };
        let fits = |(a, b): (f64, f64)| a >= 0.0 && b <= 1.0;
        let clear = |(a, b): (f64, f64)| legend_x.is_none_or(|(la, lb)| b < la || a > lb);
        let sides = if u <= 0.65 {
            [true, false]
        } else {
            [false, true]
        };
        let span = |right: bool| if right { (u, u + bw) } else { (u - bw, u) };
        vlabel_right = sides
            .iter()
            .copied()
            .find(|&r| fits(span(r)) && clear(span(r)))
            .or_else(|| sides.iter().copied().find(|&r| fits(span(r))))
            .unwrap_or(sides[0]);
        let (a, b) = span(vlabel_right);
        if data.iter().any(|p| p.0 >= a && p.0 <= b && p.1 >= 1.0 - bh) {
            headroom = headroom.max(bh);
        }
    }
    if headroom > 0.0 {
        // A new top so that the data fill (1 - headroom) of the height.
        let frac = (headroom + 6.0 / plot_h).min(0.5);
        yhi = if panel.log_y {
            let (a, b) = (ylo.log10(), yhi.log10());
            10f64.powf(a + (b - a) / (1.0 - frac))
        } else {
            ylo + (yhi - ylo) / (1.0 - frac)
        };
    }
    let legend = legend_at.map(|(c, _)| match c {
        Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
        Corner::UpperRight => SeriesLabelPosition::UpperRight,
        Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        Corner::LowerRight => SeriesLabelPosition::LowerRight,
    });
    let y = y_axis(panel, (ylo, yhi), y_int);
    Layout {
        x,
        y,
        legend,
        vlabel_right,
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let Layout {
        x,
        y,
        legend,
        vlabel_right,
    } = layout(area, panel);
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, ("sans-serif", CAPTION_PX))
        .margin(MARGIN)
        .margin_right(MARGIN_RIGHT)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA);
    let x_fmt = |v: &f64| x.label_of(*v);
    let y_fmt = |v: &f64| y.label_of(*v);
    let (ylo, yhi) = (y.lo, y.hi);
    let mut chart = builder
        .build_cartesian_2d(Ticked(x.clone()), Ticked(y.clone()))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style(("sans-serif", LABEL_PX))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(err)?;
    if let Some(v) = panel.vline {
        chart
            .draw_series(LineSeries::new(
                [(v, ylo), (v, yhi)],
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?;
        if !panel.vline_label.is_empty() {
            let right = !vlabel_right;
            let style = ("sans-serif", LABEL_PX)
                .into_font()
                .color(&BLACK.mix(0.75))
                .pos(Pos::new(
                    if right { HPos::Right } else { HPos::Left },
                    VPos::Top,
                ));
            let dx = if right { -4 } else { 4 };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((v, yhi))
                        + Text::new(panel.vline_label.clone(), (dx, 4), style),
                ))
                .map_err(err)?;
        }
    }
    for s in &panel.series {
        let color = s.color;
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&p| usable(panel, p))
            .collect();
        let markers = has_markers(s);
        if is_reference(s) {
            let drawn = chart
                .draw_series(DashedLineSeries::new(
                    pts.iter().copied(),
                    8,
                    5,
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            if !s.label.is_empty() {
                drawn.label(s.label.clone()).legend(move |(lx, ly)| {
                    EmptyElement::at((lx, ly))
                        + DashedPathElement::new([(0, 0), (20, 0)], 6, 3, color.stroke_width(2))
                });
            }
            continue;
        }
        let drawn = chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?;
        if !s.label.is_empty() {
            drawn.label(s.label.clone()).legend(move |(lx, ly)| {
                EmptyElement::at((lx, ly))
                    + PathElement::new([(0, 0), (16, 0)], color.stroke_width(2))
                    + Circle::new(
                        (8, 0),
                        3,
                        if markers {
                            color.filled()
                        } else {
                            TRANSPARENT.filled()
                        },
                    )
            });
        }
        if markers {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
    }
    if let Some(pos) = legend {
        chart
            .configure_series_labels()
            .position(pos)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", LABEL_PX))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Draws `panels` on a grid of `cols` columns into a PNG at `path`.
pub fn draw(path: &Path, panels: &[Panel], cols: usize, panel_size: (u32, u32)) -> Result<()> {
    register_font()?;
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (panel_size.0 * cols as u32, panel_size.1 * rows as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let areas = root.split_evenly((rows, cols));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel).with_context(|| format!("panel `{}`", panel.title))?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}
