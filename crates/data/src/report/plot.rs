//! PNG figures without text: axis titles, ticks and legends live in `report.md`
//! captions, so rendering needs no font (none is installed where this runs).

use std::path::Path;

use plotters::prelude::*;

use crate::refine::ProcessError;

const SIZE: (u32, u32) = (720, 320);
/// Users / first series.
pub const BLUE: RGBColor = RGBColor(52, 101, 164);
/// Interactions / second series.
pub const ORANGE: RGBColor = RGBColor(230, 126, 34);

fn plot_err(path: &Path) -> impl Fn(String) -> ProcessError + '_ {
    move |message| ProcessError::Plot {
        path: path.to_path_buf(),
        message,
    }
}

/// Bars for one or more series side by side; `log_y` draws log10(1 + count).
pub fn bars(path: &Path, series: &[(&[f64], RGBColor)], log_y: bool) -> Result<(), ProcessError> {
    let err = plot_err(path);
    let n = series
        .iter()
        .map(|(s, _)| s.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |v: f64| {
        if log_y {
            (1.0 + v.max(0.0)).log10()
        } else {
            v.max(0.0)
        }
    };
    let ymax = series
        .iter()
        .flat_map(|(s, _)| s.iter().map(|&v| scale(v)))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.05;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
        .map_err(|e| err(e.to_string()))?;
    let k = series.len().max(1) as f64;
    for (j, (values, color)) in series.iter().enumerate() {
        let w = 0.8 / k;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x0 = i as f64 + 0.1 + j as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w, scale(v))], color.filled())
            }))
            .map_err(|e| err(e.to_string()))?;
    }
    axes(&mut chart, n as f64, ymax).map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// A curve from `(0,0)` to `(1,1)` with the diagonal for reference (Lorenz curve).
pub fn lorenz(path: &Path, points: &[(f64, f64)]) -> Result<(), ProcessError> {
    let err = plot_err(path);
    let root = BitMapBackend::new(path, (360, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| err(e.to_string()))?;
    axes(&mut chart, 1.0, 1.0).map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

type Chart<'a> = ChartContext<
    'a,
    BitMapBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn axes(chart: &mut Chart<'_>, xmax: f64, ymax: f64) -> Result<(), String> {
    chart
        .draw_series(LineSeries::new(
            [(0.0, ymax), (0.0, 0.0), (xmax, 0.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    Ok(())
}
