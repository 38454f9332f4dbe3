//! The run report's charts, drawn with `plotters` into SVG strings that the
//! page inlines: throughput and latency over time with the fault windows
//! shaded and numbered, and each partition's acknowledged, lost and
//! duplicated values over time.

use faultline_checker::availability::FaultWindow;
use faultline_checker::op::OpType;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::series::{PartitionLines, Scatter, Series, Span, Steps};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 300;
const SMALL_HEIGHT: u32 = 200;
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws one chart into an SVG string.
fn svg(width: u32, height: u32, draw: impl FnOnce(&Area<'_>) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(out)
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

/// The colour of an op's line or point: hue by `f`, shade by outcome.
pub fn color(f: &str, outcome: OpType) -> RGBColor {
    match (f, outcome) {
        ("send", OpType::Ok) => RGBColor(31, 119, 180),
        ("send", OpType::Fail) => RGBColor(214, 39, 40),
        ("send", _) => RGBColor(255, 127, 14),
        (_, OpType::Ok) => RGBColor(44, 160, 44),
        (_, OpType::Fail) => RGBColor(148, 103, 189),
        _ => RGBColor(140, 86, 75),
    }
}

/// A fault window's shade, by the kind of fault.
pub fn fault_color(fault: &str) -> RGBColor {
    match fault {
        "kill" => RGBColor(228, 26, 28),
        "pause" => RGBColor(152, 78, 163),
        "pause-fetchers" => RGBColor(0, 150, 136),
        "sink-outage" => RGBColor(166, 86, 40),
        f if f.starts_with("partition") => RGBColor(55, 126, 184),
        _ => RGBColor(120, 120, 120),
    }
}

/// Shades every lasting window and marks every instant, each numbered as
/// in the page's fault table (F1, F2, …).
fn shade<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    windows: &[FaultWindow],
    y: (f64, f64),
) -> anyhow::Result<()> {
    for (i, w) in windows.iter().enumerate() {
        let (a, b) = (w.start_ns as f64 / 1e9, w.end_ns as f64 / 1e9);
        let c = fault_color(&w.fault);
        let style = if w.is_instant() { c.stroke_width(1) } else { c.mix(0.15).filled() };
        let shape = if w.is_instant() {
            Rectangle::new([(a, y.0), (a, y.1)], style)
        } else {
            Rectangle::new([(a, y.0), (b, y.1)], style)
        };
        chart.draw_series(std::iter::once(shape)).map_err(plot_error)?;
        let label = Text::new(format!("F{}", i + 1), (a, y.1), (FONT, 11).into_font().color(&c));
        chart.draw_series(std::iter::once(label)).map_err(plot_error)?;
    }
    Ok(())
}

/// ok/fail/info sends and polls per second over time.
pub fn throughput(s: &Series, windows: &[FaultWindow]) -> anyhow::Result<String> {
    let ymax = s.rates.iter().flat_map(|r| r.per_s.iter().copied()).fold(1.0, f64::max) * 1.1;
    svg(WIDTH, HEIGHT, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(s.span.start_s..s.span.end_s, 0.0..ymax)
            .map_err(plot_error)?;
        chart.configure_mesh().x_desc("time (s)").y_desc("ops/s").light_line_style(WHITE).draw().map_err(plot_error)?;
        shade(&mut chart, windows, (0.0, ymax))?;
        for r in &s.rates {
            let c = color(r.f, r.outcome);
            let pts = r.per_s.iter().enumerate().map(|(i, &v)| (s.span.start_s + (i as f64 + 0.5) * s.bucket_s, v));
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("{} {}", r.f, r.outcome.as_str()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        }
        legend(&mut chart)
    })
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
        .map_err(plot_error)
}

/// Each drawn op's latency at its invoke time, on a log scale.
pub fn latency(s: &Scatter, span: Span, windows: &[FaultWindow]) -> anyhow::Result<String> {
    let lo = s.points.iter().map(|p| p.ms).fold(f64::MAX, f64::min).min(1.0) * 0.8;
    let hi = s.points.iter().map(|p| p.ms).fold(10.0, f64::max) * 1.25;
    svg(WIDTH, HEIGHT, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(span.start_s..span.end_s, (lo..hi).log_scale())
            .map_err(plot_error)?;
        let light = RGBColor(238, 238, 238);
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("latency (ms)")
            .light_line_style(light)
            .draw()
            .map_err(plot_error)?;
        shade(&mut chart, windows, (lo, hi))?;
        for f in ["send", "poll"] {
            for outcome in [OpType::Ok, OpType::Fail, OpType::Info] {
                let c = color(f, outcome);
                let pts: Vec<(f64, f64)> =
                    s.points.iter().filter(|p| p.f == f && p.outcome == outcome).map(|p| (p.t_s, p.ms)).collect();
                if pts.is_empty() {
                    continue;
                }
                chart
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, 2, c.mix(0.6).filled())))
                    .map_err(plot_error)?
                    .label(format!("{f} {}", outcome.as_str()))
                    .legend(move |(x, y)| Circle::new((x + 8, y), 3, c.filled()));
            }
        }
        legend(&mut chart)
    })
}

/// How many values were acknowledged by time `t`, from the step line.
fn acked_at(steps: &Steps, t: f64) -> f64 {
    let i = steps.partition_point(|&(s, _)| s <= t);
    if i == 0 { 0.0 } else { steps[i - 1].1 as f64 }
}

/// One partition's acknowledged values over time, with its lost and
/// duplicated ones marked where they were acknowledged.
pub fn partition(l: &PartitionLines, span: Span, windows: &[FaultWindow]) -> anyhow::Result<String> {
    let ymax = (l.acknowledged.last().map_or(0, |x| x.1).max(1) as f64) * 1.1;
    svg(WIDTH, SMALL_HEIGHT, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .caption(&l.partition, (FONT, 14))
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(span.start_s..span.end_s, 0.0..ymax)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("values")
            .light_line_style(WHITE)
            .draw()
            .map_err(plot_error)?;
        shade(&mut chart, windows, (0.0, ymax))?;
        let blue = RGBColor(31, 119, 180);
        let pts: Vec<(f64, f64)> = l.acknowledged.iter().map(|&(t, n)| (t, n as f64)).collect();
        chart
            .draw_series(LineSeries::new(pts, blue.stroke_width(2)))
            .map_err(plot_error)?
            .label("acknowledged")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], blue.stroke_width(2)));
        // Lost and duplicated values sit on the acknowledged line, where
        // they were acknowledged: visible whether there are 3 or 3000.
        for (name, times, c) in
            [("lost", &l.lost, RGBColor(214, 39, 40)), ("duplicated", &l.duplicated, RGBColor(255, 127, 14))]
        {
            if times.is_empty() {
                continue;
            }
            let on_line = times.iter().map(|&(t, _)| (t, acked_at(&l.acknowledged, t)));
            chart
                .draw_series(on_line.map(|p| Cross::new(p, 4, c.stroke_width(2))))
                .map_err(plot_error)?
                .label(format!("{name} ({})", times.last().map_or(0, |x| x.1)))
                .legend(move |(x, y)| Cross::new((x + 8, y), 4, c.stroke_width(2)));
        }
        legend(&mut chart)
    })
}
