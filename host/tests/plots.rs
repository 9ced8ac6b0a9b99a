//! Plot structure, not pixels: tick positions and labels on linear and log axes, ranges, legend
//! corners, which series get markers; and that the same panels give the same PNG bytes.

use host::plot::{
    self, Axis, Corner, Legend, PALETTE, Panel, Series, format_fixed, has_markers, is_reference,
    legend_corner, linear_axis, log_axis, x_range, y_range,
};

/// Ranges a run can produce: tiny and huge spans, negative, straddling 0, around 1.
fn linear_ranges() -> Vec<(f64, f64)> {
    let mut out = vec![
        (-1e-7, 1e-7),
        (-0.05, 1.05),
        (0.0, 515.0),
        (0.0, 1.03),
        (-1.7, 2.6),
        (0.2985, 0.3545),
        (1000.0, 1100.0),
        (-3.0, -2.9),
        (0.0, 3150.0),
        (1e-5, 3e-5),
    ];
    for k in -6..6 {
        for m in [1.0, 1.3, 2.7, 4.9, 7.7] {
            let span = m * 10f64.powi(k);
            out.push((-0.37 * span, 0.81 * span));
            out.push((0.1 * span, 1.1 * span));
        }
    }
    out
}

fn log_ranges() -> Vec<(f64, f64)> {
    let mut out = vec![
        (0.0033, 0.55),
        (1.6, 2.5),
        (0.85, 4.6),
        (2e-4, 0.9),
        (1e-6, 1.0),
        (8e-6, 0.2),
        (0.31, 0.39),
        (1e-12, 1e3),
    ];
    for k in -8..4 {
        for f in [1.05, 1.5, 3.0, 12.0, 150.0, 2e4] {
            let lo = 1.7 * 10f64.powi(k);
            out.push((lo, lo * f));
        }
    }
    out
}

fn never_negative_zero(label: &str) {
    assert!(
        !(label.starts_with('-') && label[1..].bytes().all(|b| b == b'0' || b == b'.')),
        "negative zero label {label:?}"
    );
}

/// Ticks inside the range, ascending, labelled, labels distinct and never "-0".
fn check_axis(a: &Axis, what: &str) {
    assert!(a.ticks.len() >= 2, "{what}: {a:?}");
    assert_eq!(a.ticks.len(), a.labels.len(), "{what}");
    for w in a.ticks.windows(2) {
        assert!(w[0] < w[1], "{what}: ticks not ascending {a:?}");
    }
    let tol = 1e-9 * (a.hi - a.lo).abs();
    for &t in &a.ticks {
        assert!(
            t >= a.lo - tol && t <= a.hi + tol,
            "{what}: tick {t} out of {a:?}"
        );
    }
    for (i, l) in a.labels.iter().enumerate() {
        never_negative_zero(l);
        assert!(!l.is_empty(), "{what}");
        assert!(
            !a.labels[..i].contains(l),
            "{what}: neighbouring labels read the same: {:?}",
            a.labels
        );
        assert_eq!(a.label_of(a.ticks[i]), *l, "{what}");
    }
}

#[test]
fn format_fixed_never_writes_negative_zero() {
    for (v, decimals) in [(-0.0, 4), (-1e-9, 4), (-0.04, 1), (-0.0004, 3), (0.0, 4)] {
        for d in 0..decimals {
            let s = format_fixed(v, d);
            never_negative_zero(&s);
            assert_eq!(s.parse::<f64>().unwrap(), 0.0, "{v} {d}: {s}");
        }
    }
    assert_eq!(format_fixed(-0.5, 1), "-0.5");
    assert_eq!(format_fixed(500.0, 0), "500");
}

#[test]
fn linear_ticks_are_labelled_distinct_and_in_range() {
    for (lo, hi) in linear_ranges() {
        for max in [4, 6, 7] {
            let a = linear_axis(lo, hi, max, false);
            check_axis(&a, &format!("linear {lo}..{hi} max {max}"));
            assert!(a.ticks.len() <= max, "{a:?}");
            // A label reads back as its tick, to within the step's precision.
            let step = a.ticks[1] - a.ticks[0];
            for (t, l) in a.ticks.iter().zip(&a.labels) {
                let back: f64 = l.parse().expect("plain number");
                assert!((back - t).abs() <= step * 1e-6, "{l} for {t}");
            }
        }
    }
}

#[test]
fn count_axes_have_whole_number_ticks() {
    let a = linear_axis(0.0, 1.03, 7, true);
    assert_eq!(a.ticks, [0.0, 1.0]);
    assert_eq!(a.labels, ["0", "1"]);
    let a = linear_axis(0.0, 515.0, 7, true);
    assert_eq!(a.labels, ["0", "100", "200", "300", "400", "500"]);
    let a = linear_axis(-0.5, 20.6, 7, true);
    assert!(a.labels.iter().all(|l| !l.contains('.')), "{a:?}");
    assert!(plot::counts("update") && plot::counts("epoch") && plot::counts("blanks N"));
    assert!(!plot::counts("t") && !plot::counts("accuracy"));
}

#[test]
fn a_constant_count_gets_a_readable_axis() {
    // The curriculum panel of a short memory run: N = 0 at every logged update.
    let (lo, hi) = y_range(0.0, 0.0, false, true);
    assert!((-0.1..0.0).contains(&lo) && hi >= 1.0, "{lo}..{hi}");
    let a = linear_axis(lo, hi, 6, true);
    check_axis(&a, "constant N = 0");
    assert_eq!(a.labels[0], "0");
    // A constant non-zero value.
    let (lo, hi) = y_range(0.125, 0.125, false, false);
    check_axis(&linear_axis(lo, hi, 6, false), "constant 0.125");
}

#[test]
fn log_ticks_are_labelled_distinct_and_in_range() {
    for (lo, hi) in log_ranges() {
        let a = log_axis(lo, hi, 7);
        check_axis(&a, &format!("log {lo}..{hi}"));
        assert!(a.log);
        assert!(a.ticks.len() <= 8, "{a:?}");
    }
}

#[test]
fn log_ticks_are_decades_or_one_two_five() {
    // Under three decades: 1, 2, 5 times the decades.
    let a = log_axis(0.0033, 0.55, 7);
    assert_eq!(
        a.labels,
        ["0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5"]
    );
    // Six decades: the decades only, written alike.
    let a = log_axis(1e-6 * 0.9, 1.1, 7);
    assert_eq!(
        a.labels,
        ["1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1", "1"]
    );
    // Twelve decades: every other decade at most seven labels.
    let a = log_axis(1e-12, 1e3, 7);
    assert!(a.ticks.len() <= 7 && a.ticks.len() >= 4, "{a:?}");
    // Less than half a decade: linear steps, still labelled.
    let a = log_axis(1.6, 2.5, 7);
    assert!(a.ticks.len() >= 3, "{a:?}");
}

#[test]
fn x_starts_at_zero_when_the_data_start_near_it() {
    assert_eq!(x_range(100.0, 500.0), (0.0, 500.0));
    assert_eq!(x_range(0.5, 1.0), (0.0, 1.0));
    assert_eq!(x_range(1000.0, 1100.0), (1000.0, 1100.0));
    assert_eq!(x_range(1.0, 1.0), (0.0, 2.0));
    assert_eq!(x_range(-3.0, 4.0), (-3.0, 4.0));
}

#[test]
fn the_legend_goes_to_the_emptiest_corner() {
    let size = (0.3, 0.25);
    // Nothing drawn: the preferred corner.
    assert_eq!(legend_corner(&[], size), (Corner::UpperRight, 0));
    // A loss curve falling from the upper left to the lower right leaves two corners free.
    let mut falling = Vec::new();
    plot::sample_polyline(&[(0.0, 1.0), (0.2, 0.3), (1.0, 0.0)], 0.01, &mut falling);
    let (c, n) = legend_corner(&falling, size);
    assert_eq!((c, n), (Corner::UpperRight, 0));
    // An accuracy curve rising to the upper right: the lower right is free.
    let rising: Vec<(f64, f64)> = (0..=100)
        .map(|i| {
            let x = f64::from(i) / 100.0;
            (x, 1.0 - (-5.0 * x).exp() * 0.9)
        })
        .collect();
    let (c, n) = legend_corner(&rising, size);
    assert_eq!(n, 0);
    assert!(matches!(c, Corner::LowerRight), "{c:?}");
    // Every corner taken: the least taken.
    let mut busy = Vec::new();
    for &(x, y, k) in &[
        (0.05, 0.95, 3),
        (0.95, 0.95, 5),
        (0.05, 0.05, 1),
        (0.95, 0.05, 2),
    ] {
        busy.extend(std::iter::repeat_n((x, y), k));
    }
    assert_eq!(legend_corner(&busy, size), (Corner::LowerLeft, 1));
}

#[test]
fn short_series_get_markers_and_reference_levels_are_dashed() {
    let s = |points: Vec<(f64, f64)>| Series {
        label: "s".into(),
        points,
        color: PALETTE[0],
    };
    assert!(has_markers(&s(vec![(1.0, 0.9)])), "one epoch: one dot");
    assert!(has_markers(&s((0..20)
        .map(|i| (f64::from(i), 0.5))
        .collect())));
    assert!(!has_markers(&s((0..21)
        .map(|i| (f64::from(i), 0.5))
        .collect())));
    assert!(!has_markers(&s(vec![])));
    let chance = s(vec![(0.0, 0.125), (500.0, 0.125)]);
    assert!(is_reference(&chance) && !has_markers(&chance));
    assert!(!is_reference(&s(vec![(0.0, 0.1), (1.0, 0.2)])));
}

fn edge_panels() -> Vec<Panel> {
    let series = |label: &str, points: Vec<(f64, f64)>, i: usize| Series {
        label: label.into(),
        points,
        color: PALETTE[i],
    };
    vec![
        Panel {
            title: "one epoch".into(),
            x_label: "epoch".into(),
            y_label: "accuracy".into(),
            series: vec![
                series("training", vec![(0.5, 0.30)], 0),
                series("validation", vec![(1.0, 0.35)], 1),
            ],
            ..Panel::default()
        },
        Panel {
            title: "log with zeros and a marker".into(),
            x_label: "update".into(),
            y_label: "loss".into(),
            log_y: true,
            vline: Some(300.0),
            vline_label: "free-running from here".into(),
            series: vec![series(
                "",
                (0..=50)
                    .map(|i| (f64::from(i) * 10.0, 0.5 / f64::from(i)))
                    .collect(),
                0,
            )],
            ..Panel::default()
        },
        Panel {
            title: "nothing".into(),
            legend: Legend::LowerLeft,
            ..Panel::default()
        },
    ]
}

#[test]
fn the_same_panels_give_the_same_png_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    plot::draw(&a, &edge_panels(), 2, (400, 260)).expect("draw a");
    plot::draw(&b, &edge_panels(), 2, (400, 260)).expect("draw b");
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(a.len() > 1000);
    assert!(
        a == b,
        "PNG bytes differ between two draws of the same panels"
    );
    // To look at them: TINYRNN_PLOTS_OUT=dir cargo test --release -p host --test plots
    if let Some(out) = std::env::var_os("TINYRNN_PLOTS_OUT") {
        let path = std::path::Path::new(&out).join("edge-panels.png");
        plot::draw(&path, &edge_panels(), 2, (400, 260)).expect("draw");
    }
}
