//! Draws the throughput harness's JSON as an SVG: enqueue throughput against commands in flight
//! (per backend), and drain throughput against worker processes. Hand-written SVG, no plotting
//! dependencies.
//!
//! `cargo run --release -p zrq-benches --bin plot -- results.json docs/benchmarks.svg [before.json]`
//!
//! With a second results file (a run before a change), its module figures are drawn dashed.

use std::error::Error;
use std::fmt::Write as _;

use zrq_benches::Report;

const W: f64 = 900.0;
const H: f64 = 420.0;
const COLORS: [(&str, &str); 4] = [
    ("xadd", "#7f7f7f"),
    ("module", "#d62728"),
    ("lua", "#1f77b4"),
    ("workers", "#2ca02c"),
];

struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

fn color(name: &str) -> &'static str {
    COLORS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("#000000", |(_, c)| c)
}

/// Rounds `max` up to a "nice" axis maximum.
fn nice(max: f64) -> f64 {
    let exp = 10f64.powf(max.max(1.0).log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * exp >= max {
            return step * exp;
        }
    }
    10.0 * exp
}

/// One panel at `x0` of width `w`: a categorical x axis (`ticks`), a linear y axis.
fn panel(
    svg: &mut String,
    x0: f64,
    w: f64,
    title: &str,
    xlabel: &str,
    ticks: &[u64],
    series: &[Series],
) {
    let (top, bottom, left, right) = (50.0, H - 60.0, x0 + 70.0, x0 + w - 20.0);
    let ymax = nice(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let xpos = |i: usize| {
        if ticks.len() <= 1 {
            (left + right) / 2.0
        } else {
            left + (right - left) * i as f64 / (ticks.len() - 1) as f64
        }
    };
    let ypos = |v: f64| bottom - (bottom - top) * v / ymax;
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="30" font-size="15" text-anchor="middle" font-weight="bold">{title}</text>"#,
        (left + right) / 2.0
    );
    for k in 0..=5 {
        let v = ymax * f64::from(k) / 5.0;
        let y = ypos(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}k</text>"##,
            left - 6.0,
            y + 4.0,
            (v / 1000.0).round()
        );
    }
    for (i, t) in ticks.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{t}</text>"#,
            xpos(i),
            bottom + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<line x1="{left:.1}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}" stroke="black"/><line x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{bottom:.1}" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{xlabel}</text>"#,
        (left + right) / 2.0,
        bottom + 38.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">per second</text>"#,
        x0 + 18.0,
        (top + bottom) / 2.0,
        x0 + 18.0,
        (top + bottom) / 2.0
    );
    for (k, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter_map(|(x, y)| {
                let i = ticks.iter().position(|t| *t as f64 == *x)?;
                Some(format!("{:.1},{:.1}", xpos(i), ypos(*y)))
            })
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2.5"{dash} points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{}"/>"#,
                s.color
            );
        }
        let ly = top + 4.0 + 18.0 * k as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"{dash}/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            left + 8.0,
            ly + 2.0,
            left + 28.0,
            ly + 2.0,
            s.color,
            left + 32.0,
            ly + 5.0,
            s.name
        );
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output, before) = match args.as_slice() {
        [input, output] => (input, output, None),
        [input, output, before] => (input, output, Some(before)),
        _ => return Err("usage: plot <results.json> <out.svg> [before.json]".into()),
    };
    let report: Report = serde_json::from_str(&std::fs::read_to_string(input)?)?;
    let before: Option<Report> = match before {
        Some(path) => Some(serde_json::from_str(&std::fs::read_to_string(path)?)?),
        None => None,
    };
    let mut enqueue: Vec<Series> = ["xadd", "module", "lua"]
        .iter()
        .map(|backend| Series {
            name: match *backend {
                "xadd" => "raw XADD".to_string(),
                "module" => "ZRQ.ENQUEUE (module)".to_string(),
                _ => "FCALL zrq_enqueue (Lua)".to_string(),
            },
            color: color(backend),
            dashed: false,
            points: report
                .measures
                .iter()
                .filter(|m| m.bench == "enqueue" && m.backend == *backend)
                .map(|m| (m.param as f64, m.value))
                .collect(),
        })
        .collect();
    let series = |r: &Report, bench: &str, backend: &str| -> Vec<(f64, f64)> {
        r.measures
            .iter()
            .filter(|m| m.bench == bench && m.backend == backend)
            .map(|m| (m.param as f64, m.value))
            .collect()
    };
    let mut workers = vec![Series {
        name: "module, worker processes".to_string(),
        color: color("workers"),
        dashed: false,
        points: series(&report, "scale_workers", "module"),
    }];
    if let Some(before) = &before {
        enqueue.push(Series {
            name: "ZRQ.ENQUEUE (module) before".to_string(),
            color: color("module"),
            dashed: true,
            points: series(before, "enqueue", "module"),
        });
        workers.push(Series {
            name: "before".to_string(),
            color: color("workers"),
            dashed: true,
            points: series(before, "scale_workers", "module"),
        });
    }
    let date = report
        .machine
        .iter()
        .find(|(k, _)| k == "date")
        .map_or("", |(_, v)| v.as_str());
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    panel(
        &mut svg,
        0.0,
        W * 0.55,
        "Enqueue throughput, one connection",
        "commands in flight (pipeline depth)",
        &[1, 16, 128],
        &enqueue,
    );
    panel(
        &mut svg,
        W * 0.55,
        W * 0.45,
        "Drain throughput (no-op jobs)",
        "worker processes",
        &[1, 2, 4],
        &workers,
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#555555">zrq throughput harness, {date}</text>"##,
        W - 10.0,
        H - 8.0
    );
    svg.push_str("</svg>\n");
    std::fs::write(output, svg)?;
    Ok(())
}
