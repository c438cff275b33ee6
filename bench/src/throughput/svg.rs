//! The throughput scenario's SVG plot (plotters, SVG backend only): the no-drop rate per case
//! beside its baseline (`throughput.svg`), written next to the JSON.

use std::path::Path;

use plotters::prelude::*;

use super::{Dut, Mode, Report};
use crate::common::{io, plot_err, Error};

fn colour(d: Dut) -> RGBColor {
    match d {
        Dut::Baseline => RGBColor(150, 150, 150),
        Dut::V2 => RGBColor(31, 119, 180),
        Dut::V3 => RGBColor(214, 39, 40),
    }
}

/// Bars of the median no-drop Mpps per case (min–max whiskers), coloured by what ran on the
/// LNS, the ratio to the baseline above each L2TP bar.
pub fn throughput(r: &Report, path: &Path) -> Result<(), Error> {
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
                r.loss_pct, r.header.date, r.header.machine.kernel
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
            .label(match (d, r.header.mode) {
                (Dut::Baseline, Mode::Xdp) => "baseline: xdp_redirect_plain",
                (Dut::Baseline, Mode::Afxdp) => "baseline: raw AF_XDP forwarder",
                (Dut::V2, Mode::Xdp) => "L2TPv2 fast path",
                (Dut::V2, Mode::Afxdp) => "L2TPv2, AF_XDP mode",
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
