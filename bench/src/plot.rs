//! SVG plots of the reports (plotters, SVG backend only): the no-drop rate per case beside its
//! baseline (`throughput.svg`) and the no-drop rate against the number of sessions
//! (`scale.svg`), written next to the JSON.

use std::path::Path;

use plotters::prelude::*;

use crate::forward::{io, Error};
use crate::scale;
use crate::throughput::{self, Dut};

fn plot_err(path: &Path) -> impl FnOnce(String) -> Error + '_ {
    move |why| Error::Bpf {
        what: format!("plotting {}", path.display()),
        why,
    }
}

fn colour(d: Dut) -> RGBColor {
    match d {
        Dut::Baseline => RGBColor(150, 150, 150),
        Dut::V2 => RGBColor(31, 119, 180),
        Dut::V3 => RGBColor(214, 39, 40),
    }
}

/// Bars of the median no-drop Mpps per case (min–max whiskers), coloured by what ran on the
/// LNS, the ratio to the baseline above each L2TP bar.
pub fn throughput(r: &throughput::Report, path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
    }
    let e = |x: String| plot_err(path)(x);
    let n = r.cases.len().max(1);
    let top = r
        .cases
        .iter()
        .flat_map(|c| {
            [
                c.no_drop_mpps.map(|s| s.max),
                c.overload_mpps.map(|s| s.median),
            ]
        })
        .flatten()
        .fold(0.0f64, f64::max)
        .max(0.001)
        * 1.15;
    // Horizontal bars, first case on top: the case names read left to right.
    let height = (22 * n as u32 + 120).clamp(300, 2400);
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let names: Vec<String> = r.cases.iter().map(|c| c.name.clone()).collect();
    let y = |i: usize| (n - 1 - i) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "l2xdp-bench throughput: no-drop rate (loss ≤ {} %), {} ({})",
                r.loss_pct, r.date, r.machine.kernel
            ),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..top, -0.5f64..(n as f64 - 0.5))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| {
            let k = v.round();
            if (v - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                names.get(n - 1 - k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc(
            "Mpps at the sinks: bars no-drop (median, min–max), crosses delivered under overload",
        )
        .draw()
        .map_err(|x| e(x.to_string()))?;
    for d in [Dut::Baseline, Dut::V2, Dut::V3] {
        let c = colour(d);
        let bars: Vec<(usize, f64)> = r
            .cases
            .iter()
            .enumerate()
            .filter(|(_, k)| k.dut == d)
            .filter_map(|(i, k)| k.no_drop_mpps.map(|s| (i, s.median)))
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart
            .draw_series(
                bars.iter().map(|&(i, m)| {
                    Rectangle::new([(0.0, y(i) - 0.35), (m, y(i) + 0.35)], c.filled())
                }),
            )
            .map_err(|x| e(x.to_string()))?
            .label(match (d, r.mode) {
                (Dut::Baseline, throughput::Mode::Xdp) => "baseline: xdp_redirect_plain",
                (Dut::Baseline, throughput::Mode::Afxdp) => "baseline: raw AF_XDP forwarder",
                (Dut::V2, throughput::Mode::Xdp) => "L2TPv2 fast path",
                (Dut::V2, throughput::Mode::Afxdp) => "L2TPv2, AF_XDP mode",
                (Dut::V3, _) => "L2TPv3 fast path",
            })
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
    }
    chart
        .draw_series(r.cases.iter().enumerate().filter_map(|(i, k)| {
            k.no_drop_mpps.map(|s| {
                PathElement::new(vec![(s.min, y(i)), (s.max, y(i))], BLACK.stroke_width(1))
            })
        }))
        .map_err(|x| e(x.to_string()))?;
    chart
        .draw_series(r.cases.iter().enumerate().filter_map(|(i, k)| {
            k.overload_mpps
                .map(|s| Cross::new((s.median, y(i)), 4, BLACK.stroke_width(2)))
        }))
        .map_err(|x| e(x.to_string()))?
        .label("delivered under overload (unpaced), median")
        .legend(|(x, y)| Cross::new((x + 5, y), 4, BLACK.stroke_width(2)));
    chart
        .draw_series(r.cases.iter().enumerate().filter_map(|(i, k)| {
            match (k.dut, k.ratio, k.overload_ratio, k.no_drop_mpps) {
                (Dut::Baseline, ..) | (_, _, _, None) => None,
                (_, q, o, Some(s)) => Some(Text::new(
                    format!(
                        "ratio {} / overload {}",
                        q.map_or("-".into(), |q| format!("{:.2}", q.median)),
                        o.map_or("-".into(), |o| format!("{:.2}", o.median))
                    ),
                    (s.max + top * 0.01, y(i) + 0.3),
                    ("sans-serif", 10).into_font(),
                )),
            }
        }))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))?;
    Ok(())
}

/// No-drop Mpps against sessions installed (log scale), one line per case.
pub fn scale(r: &scale::Report, path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
    }
    let e = |x: String| plot_err(path)(x);
    let lo = r
        .points
        .iter()
        .map(|p| f64::from(p.sessions))
        .fold(f64::MAX, f64::min);
    let hi = r
        .points
        .iter()
        .map(|p| f64::from(p.sessions))
        .fold(1.0, f64::max);
    let (lo, hi) = if lo <= hi {
        (lo / 2.0, hi * 2.0)
    } else {
        (1.0, 10.0)
    };
    let top = r
        .points
        .iter()
        .flat_map(|p| &p.cases)
        .flat_map(|c| {
            [
                c.no_drop_mpps.map(|s| s.max),
                c.overload_mpps.map(|s| s.median),
            ]
        })
        .flatten()
        .fold(0.0f64, f64::max)
        .max(0.001)
        * 1.15;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "l2xdp-bench scale: no-drop rate vs sessions (64 B, L2TPv2), {}",
                r.date
            ),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..top)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("sessions installed (log)")
        .y_desc("Mpps (median): no-drop solid, overload dashed")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let names: Vec<String> = r
        .points
        .first()
        .map(|p| p.cases.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    for (k, name) in names.iter().enumerate() {
        let pts: Vec<(f64, f64)> = r
            .points
            .iter()
            .filter_map(|p| {
                p.cases
                    .iter()
                    .find(|c| &c.name == name)
                    .and_then(|c| c.no_drop_mpps)
                    .map(|s| (f64::from(p.sessions), s.median))
            })
            .collect();
        let c = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|x| e(x.to_string()))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(|x| e(x.to_string()))?;
        let over: Vec<(f64, f64)> = r
            .points
            .iter()
            .filter_map(|p| {
                p.cases
                    .iter()
                    .find(|c| &c.name == name)
                    .and_then(|c| c.overload_mpps)
                    .map(|s| (f64::from(p.sessions), s.median))
            })
            .collect();
        chart
            .draw_series(DashedLineSeries::new(over, 6, 4, c.stroke_width(1)))
            .map_err(|x| e(x.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))?;
    Ok(())
}
