//! A self-contained SVG percentile plot: latency against percentile on HdrHistogram's
//! `1/(1-p)` axis (so 90%, 99%, 99.9% ... are evenly spaced), one line per series, latency on a
//! log axis because one ramp spans from a fraction of a microsecond to milliseconds.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::output::Report;
use super::series::format_rate;

const WIDTH: f64 = 1100.0;
const HEIGHT: f64 = 600.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 64.0;
/// Points per series along the percentile axis.
const POINTS_PER_SERIES: usize = 240;
/// Colours of the lines, in series order (then repeated).
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf",
];

/// The plot of every series of `report`.
pub fn percentile_plot(report: &Report) -> String {
    let lines: Vec<(String, Vec<(f64, f64)>)> = report
        .series
        .iter()
        .map(|s| {
            let name = s.rate_target.map_or_else(|| s.label.clone(), |r| format!("{}/s", format_rate(r)));
            (name, curve(&s.latency_ns))
        })
        .collect();
    let subtitle = format!("{} — {}", report.latency_is, report.machine.describe());
    plot(&report.title, &subtitle, &lines)
}

/// Points (log10 of 1/(1-p), latency in µs) of one histogram, up to its last recorded value.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    // Beyond 1/(1-p) = count the histogram has no more resolution: that point is the max.
    let x_max = (h.len() as f64).log10().max(0.1);
    let mut points: Vec<(f64, f64)> = (0..POINTS_PER_SERIES)
        .map(|k| {
            let x = x_max * k as f64 / POINTS_PER_SERIES as f64;
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q) as f64 / 1_000.0)
        })
        .collect();
    points.push((x_max, h.max() as f64 / 1_000.0));
    points
}

fn plot(title: &str, subtitle: &str, lines: &[(String, Vec<(f64, f64)>)]) -> String {
    let all = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut y_lo, mut y_hi, mut x_hi) = (f64::MAX, f64::MIN, 1.0f64);
    for &(x, y) in all {
        let y = y.max(0.001);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
        x_hi = x_hi.max(x);
    }
    if y_lo > y_hi {
        (y_lo, y_hi) = (0.1, 1.0);
    }
    let (dec_lo, dec_hi) = (y_lo.log10().floor(), y_hi.log10().ceil().max(y_lo.log10().floor() + 1.0));
    let x_decades = x_hi.ceil().max(1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + x / x_decades * plot_w;
    let sy = |y: f64| TOP + plot_h - (y.max(0.001).log10() - dec_lo) / (dec_hi - dec_lo) * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{}</text>"##,
        escape(title)
    );
    let _ =
        writeln!(svg, r##"<text x="{LEFT}" y="40" font-size="11" fill="#555">{}</text>"##, escape(subtitle));
    // Horizontal grid: decades of latency, with 2 and 5 in between.
    let mut decade = dec_lo;
    while decade <= dec_hi {
        for (m, strong) in [(1.0, true), (2.0, false), (5.0, false)] {
            let v = m * 10f64.powf(decade);
            if v.log10() > dec_hi + 1e-9 {
                continue;
            }
            let y = sy(v);
            let stroke = if strong { "#ccc" } else { "#eee" };
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{stroke}"/>"##,
                LEFT + plot_w
            );
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
                LEFT - 6.0,
                y + 4.0,
                format_tick(v)
            );
        }
        decade += 1.0;
    }
    // Vertical grid: 0%, 90%, 99%, ...
    for d in 0..=(x_decades as u32) {
        let x = sx(f64::from(d));
        let label = match d {
            0 => "0%".to_owned(),
            1 => "90%".to_owned(),
            2 => "99%".to_owned(),
            d => format!("99.{}%", "9".repeat(d as usize - 2)),
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ccc"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            svg,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#333">{label}</text>"##,
            TOP + plot_h + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile (axis: 1/(1-p), log)</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 16.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency, µs (log)</text>"##,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#333"/>"##
    );
    for (k, (name, points)) in lines.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let mut path = String::new();
        for (j, &(x, y)) in points.iter().enumerate() {
            let _ = write!(path, "{}{:.1},{:.1}", if j == 0 { "M" } else { " L" }, sx(x), sy(y));
        }
        let _ = writeln!(svg, r##"<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>"##);
        let ly = TOP + 14.0 + 20.0 * k as f64;
        let lx = LEFT + plot_w + 14.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/>"##,
            lx + 22.0
        );
        let _ = writeln!(svg, r##"<text x="{:.1}" y="{:.1}">{}</text>"##, lx + 28.0, ly + 4.0, escape(name));
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_tick(us: f64) -> String {
    if us >= 1.0 {
        format!("{us:.0}")
    } else {
        let s = format!("{us:.3}");
        s.trim_end_matches('0').to_owned()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_is_one_svg_with_a_line_per_series() {
        let mut h = super::super::series::latency_histogram();
        for v in 1..10_000u64 {
            h.record(v * 100).unwrap();
        }
        let svg = plot("t <1>", "s", &[("a".into(), curve(&h)), ("b".into(), curve(&h))]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.contains("99.9%"));
    }
}
