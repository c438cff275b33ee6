//! The scale scenario's SVG plot (plotters, SVG backend only): the no-drop rate against the
//! number of sessions (`scale.svg`), written next to the JSON.

use std::path::Path;

use plotters::prelude::*;

use super::Report;
use crate::common::{io, plot_err, Error};

/// No-drop Mpps against sessions installed (log scale), one line per case.
pub fn scale(r: &Report, path: &Path) -> Result<(), Error> {
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
                r.header.date
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
