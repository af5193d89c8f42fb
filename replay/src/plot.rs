//! The equity curve as a self-contained SVG, written as text.
//!
//! `f64` appears only here and only for pixel coordinates; every label is formatted from the
//! integer amounts. Rust prints floats exactly and IEEE arithmetic is the same everywhere, so
//! the same curve always gives the same bytes.

use std::fmt::Write;

use crate::report::format_money;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 400.0;
const MARGIN_LEFT: f64 = 110.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 40.0;

/// Escapes text for an SVG text node or attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration in the largest unit it fills, with three decimals ("12.345 s", "250.000 µs"),
/// from integers.
fn format_duration(ns: u64) -> String {
    let (unit_ns, unit) = match ns {
        0..1_000 => return format!("{ns} ns"),
        1_000..1_000_000 => (1_000, "µs"),
        1_000_000..1_000_000_000 => (1_000_000, "ms"),
        _ => (1_000_000_000, "s"),
    };
    format!("{}.{:03} {unit}", ns / unit_ns, ns % unit_ns * 1_000 / unit_ns)
}

/// An SVG of total PnL (price units) over flow time: `points` are (timestamp ns, equity), oldest
/// first. The x axis is time since the first point, the y axis spans the curve and zero.
pub fn equity_svg(title: &str, points: &[(u64, i128)], money_decimals: u32) -> String {
    let t0 = points.first().map_or(0, |p| p.0);
    let t1 = points.last().map_or(0, |p| p.0).max(t0);
    let lo = points.iter().map(|p| p.1).min().unwrap_or(0).min(0);
    let hi = points.iter().map(|p| p.1).max().unwrap_or(0).max(0);
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    // With one distinct time (or value) everything sits at the left (or on the zero line).
    let x = |t: u64| {
        let span = t1 - t0;
        let frac = if span == 0 { 0.0 } else { (t - t0) as f64 / span as f64 };
        MARGIN_LEFT + frac * plot_w
    };
    let y = |v: i128| {
        let span = hi - lo;
        let frac = if span == 0 { 0.5 } else { (v - lo) as f64 / span as f64 };
        MARGIN_TOP + (1.0 - frac) * plot_h
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"monospace\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(svg, "<text x=\"{MARGIN_LEFT}\" y=\"24\" font-size=\"14\">{}</text>", escape(title));
    // Frame and zero line.
    let _ = writeln!(
        svg,
        "<rect x=\"{MARGIN_LEFT}\" y=\"{MARGIN_TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>"
    );
    let zero = y(0);
    let _ = writeln!(
        svg,
        "<line x1=\"{MARGIN_LEFT}\" y1=\"{zero:.2}\" x2=\"{:.2}\" y2=\"{zero:.2}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>",
        MARGIN_LEFT + plot_w
    );
    // Axes: gridlines and labels at fifths of each span (the extremes of the curve and of time
    // among them), zero labelled on its own line, and a title on each axis.
    const TICKS: i128 = 5;
    let label_x = MARGIN_LEFT - 6.0;
    let base_y = MARGIN_TOP + plot_h + 18.0;
    for i in 0..=TICKS {
        let value = lo + (hi - lo) * i / TICKS;
        let vy = y(value);
        if i > 0 && i < TICKS {
            let _ = writeln!(
                svg,
                "<line x1=\"{MARGIN_LEFT}\" y1=\"{vy:.2}\" x2=\"{:.2}\" y2=\"{vy:.2}\" stroke=\"#eee\"/>",
                MARGIN_LEFT + plot_w
            );
        }
        if value != 0 && (vy - zero).abs() > 10.0 {
            let _ = writeln!(
                svg,
                "<text x=\"{label_x}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>",
                vy + 4.0,
                escape(&format_money(value, money_decimals))
            );
        }
        let t = t0 + (t1 - t0) * i as u64 / TICKS as u64;
        let tx = x(t);
        let anchor = match i {
            0 => "start",
            TICKS => "end",
            _ => "middle",
        };
        let _ = writeln!(
            svg,
            "<text x=\"{tx:.2}\" y=\"{base_y}\" text-anchor=\"{anchor}\">{}</text>",
            format_duration(t - t0)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{label_x}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>",
        zero + 4.0,
        escape(&format_money(0, money_decimals))
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\">flow time (from the first recorded command)</text>",
        MARGIN_LEFT + plot_w / 2.0,
        base_y + 18.0
    );
    let _ = writeln!(
        svg,
        "<text transform=\"translate(14 {:.2}) rotate(-90)\" text-anchor=\"middle\">PnL, fees included (quote currency)</text>",
        MARGIN_TOP + plot_h / 2.0
    );
    // The curve, as steps: equity holds its value until the next sample.
    if !points.is_empty() {
        let mut path = String::with_capacity(points.len() * 24);
        let mut prev_y = None;
        for &(t, v) in points {
            let (px, py) = (x(t), y(v));
            match prev_y {
                None => {
                    let _ = write!(path, "M{px:.2},{py:.2}");
                }
                Some(prev) => {
                    let _ = write!(path, " L{px:.2},{prev:.2} L{px:.2},{py:.2}");
                }
            }
            prev_y = Some(py);
        }
        let _ = writeln!(svg, "<path d=\"{path}\" fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"1.5\"/>");
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_is_well_formed_and_escapes_its_title() {
        let one = i128::from(engine::PRICE_UNITS_PER_ONE);
        let svg = equity_svg("a<b & c", &[(0, 0), (1_500_000_000, 2 * one), (3_000_000_000, -one)], 2);
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b &amp; c"));
        assert!(svg.contains(">2.00<") && svg.contains(">-1.00<") && svg.contains(">0.00<"));
        assert!(svg.contains(">3.000 s<"));
        assert!(svg.contains(">1.200 s<"), "time ticks at fifths of the span");
        assert!(svg.contains(">flow time") && svg.contains(">PnL, fees included"), "axis titles");
        assert_eq!(format_duration(999), "999 ns");
        assert_eq!(format_duration(250_000), "250.000 µs");
        assert_eq!(format_duration(1_234_567), "1.234 ms");
        assert_eq!(svg.matches("<path").count(), 1);
    }

    #[test]
    fn an_empty_or_flat_curve_still_draws() {
        assert!(equity_svg("x", &[], 2).ends_with("</svg>\n"));
        let flat = equity_svg("x", &[(5, 0), (5, 0)], 2);
        assert!(flat.contains("M110.00,200.00"), "{flat}");
    }
}
