//! SVG plots of a report: throughput by system, latency CDFs, and scaling
//! from one core to two.

use crate::report::Report;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// Ten distinguishable colours (the "tab10" set), so lines rarely repeat one.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn plot_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow!("plotting: {error:?}")
}

/// Writes `pps.svg`, `latency_cdf.svg` (when there are latencies) and
/// `scaling.svg` (when a scenario ran on 1 and 2 cores).
pub fn write_all(report: &Report, dir: &Path) -> Result<()> {
    throughput(report, &dir.join("pps.svg"))?;
    if report.points.iter().any(|p| !p.latency_cdf.is_empty()) {
        latency_cdf(report, &dir.join("latency_cdf.svg"))?;
    }
    if report.points.iter().any(|p| p.cores == 2) {
        scaling(report, &dir.join("scaling.svg"))?;
    }
    Ok(())
}

/// The system's name, with its backend when that is not the tap.
fn system_label(point: &crate::results::Point) -> String {
    match point.backend {
        crate::scenario::Backend::Tap => point.system.name().to_owned(),
        backend => format!("{} ({})", point.system.name(), backend.name()),
    }
}

/// Horizontal bars of packets per second, one per (scenario, cores,
/// system), on a log scale; labels read left of the axis.
fn throughput(report: &Report, path: &Path) -> Result<()> {
    // Colour by system, so each system reads the same across scenarios.
    let bars: Vec<(String, f64, usize)> = report
        .points
        .iter()
        .filter_map(|p| {
            let label = format!("{} {}c {}", p.scenario, p.cores, system_label(p));
            p.pps.map(|pps| (label, pps.max(1.0), p.system as usize))
        })
        .collect();
    let count = bars.len().max(1);
    let root = SVGBackend::new(path, (900, 120 + 36 * count as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let top = bars.iter().map(|(_, pps, _)| *pps).fold(10.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption("packets per second (log scale)", ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(260)
        .build_cartesian_2d((100f64..top).log_scale(), 0f64..count as f64)
        .map_err(plot_error)?;
    let labels: Vec<String> = bars.iter().map(|(label, _, _)| label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(count * 2 + 1)
        .y_label_formatter(&|y| {
            // Bar i spans [count - i - 1, count - i]; label its middle.
            let from_top = count as f64 - y - 0.5;
            let index = from_top.round();
            if (from_top - index).abs() < 0.01 && index >= 0.0 {
                labels.get(index as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("packets per second")
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(index, (_, pps, system))| {
            let color = PALETTE[system % PALETTE.len()];
            let bottom = (count - index - 1) as f64;
            Rectangle::new(
                [(100.0, bottom + 0.15), (*pps, bottom + 0.85)],
                color.filled(),
            )
        }))
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// Latency CDFs: one line per (scenario, system, cores) with latencies.
fn latency_cdf(report: &Report, path: &Path) -> Result<()> {
    let series: Vec<(String, &Vec<(f64, u64)>)> = report
        .points
        .iter()
        .filter(|p| !p.latency_cdf.is_empty())
        .map(|p| {
            (
                format!("{} {}c {}", p.scenario, p.cores, system_label(p)),
                &p.latency_cdf,
            )
        })
        .collect();
    let slowest = series
        .iter()
        .flat_map(|(_, cdf)| cdf.iter().map(|(_, ns)| *ns))
        .max()
        .unwrap_or(1000);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("round-trip latency CDF", ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (1f64..(slowest as f64 / 1e3).max(2.0) * 1.5).log_scale(),
            0f64..100f64,
        )
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("latency (µs, log scale)")
        .y_desc("percentile")
        .draw()
        .map_err(plot_error)?;
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(label, cdf)| {
            let points = cdf
                .iter()
                .map(|(percent, ns)| ((*ns as f64 / 1e3).max(1.0), *percent))
                .collect();
            (label.clone(), points)
        })
        .collect();
    draw_labelled_lines(&mut chart, &lines, 1)?;
    root.present().map_err(plot_error)
}

/// Packets per second at 1 and 2 cores, one line per (scenario, system).
fn scaling(report: &Report, path: &Path) -> Result<()> {
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for point in &report.points {
        let Some(pps) = point.pps else { continue };
        let label = format!("{} {}", point.scenario, system_label(point));
        match lines.iter_mut().find(|(l, _)| *l == label) {
            Some((_, values)) => values.push((f64::from(point.cores), pps)),
            None => lines.push((label, vec![(f64::from(point.cores), pps)])),
        }
    }
    lines.retain(|(_, values)| values.len() > 1);
    let top = lines
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(_, pps)| *pps))
        .fold(10.0, f64::max)
        * 1.2;
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("scaling from 1 to 2 cores", ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.8f64..2.2f64, 0f64..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_labels(3)
        .x_desc("cores")
        .y_desc("pps")
        .draw()
        .map_err(plot_error)?;
    draw_labelled_lines(&mut chart, &lines, 2)?;
    root.present().map_err(plot_error)
}

/// Draws one coloured line per `(label, points)` and the legend naming them.
fn draw_labelled_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: &[(String, Vec<(f64, f64)>)],
    width: u32,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (index, (label, points)) in lines.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(width),
            ))
            .map_err(plot_error)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}
