//! The HTML page's weekly bar charts as numbers: where each bar, grid line and label
//! goes (SVG user units, written with one decimal) and what it reads. The template
//! (`report.html`) writes the SVG elements from these; no markup is built here.
//!
//! Rendering only: coordinates are scaled from the report's values, nothing else is
//! derived.

use super::text;
use crate::report::model::{Report, TrendWeek};
use serde::Serialize;

/// Chart size in SVG user units (it scales with the page).
const CHART_WIDTH: f64 = 520.0;
const CHART_HEIGHT: f64 = 200.0;
/// Room for the axis labels around the plot.
const CHART_LEFT: f64 = 44.0;
const CHART_RIGHT: f64 = 8.0;
const CHART_TOP: f64 = 26.0;
const CHART_BOTTOM: f64 = 28.0;
/// The share of a week's slot its bar fills.
const BAR_FILL: f64 = 0.7;
/// A lead-time chart whose largest week is at least this long is drawn in days,
/// otherwise in hours.
const CHART_DAYS_FROM_SECONDS: f64 = 2.0 * 86_400.0;
/// The grid lines, as fractions of the plot's height (the scale is written at each).
const GRID_FRACTIONS: [f64; 2] = [0.5, 1.0];
/// The gap between the plot's left edge and the scale's labels.
const SCALE_GAP: f64 = 4.0;
/// How far below a grid line its label's baseline is (about half the text height).
const SCALE_BASELINE_OFFSET: f64 = 4.0;
/// Where the unit is written, top left.
const UNIT_X: f64 = 2.0;
const UNIT_BASELINE: f64 = 11.0;
/// The gap between a bar's top (or the axis, for an absent week) and its label.
const VALUE_LABEL_GAP: f64 = 3.0;
/// How far below the axis the week labels' baseline is.
const WEEK_LABEL_OFFSET: f64 = 16.0;

/// A coordinate as written in the SVG: one decimal.
fn coordinate(value: f64) -> String {
    format!("{value:.1}")
}

/// One bar chart of one value per week; an absent week shows a dash on the axis.
#[derive(Debug, Serialize)]
pub(super) struct Chart {
    caption: &'static str,
    /// `caption (unit)`, the SVG's accessible name.
    aria_label: String,
    /// The SVG's `<title>`: every week's value.
    title: String,
    /// `0 0 width height`.
    view_box: String,
    /// The CSS classes of the bars.
    bar_class: &'static str,
    /// What the values are in (`deployments`, `hours`, `days`), written top left.
    unit: &'static str,
    unit_x: String,
    unit_baseline: String,
    /// The plot's left and right edges.
    left: String,
    right: String,
    /// Where the scale's labels end (they are right-aligned).
    scale_x: String,
    /// The axis's height.
    base: String,
    grid: Vec<GridLine>,
    weeks: Vec<WeekBar>,
}

#[derive(Debug, Serialize)]
struct GridLine {
    y: String,
    label_y: String,
    label: String,
}

#[derive(Debug, Serialize)]
struct WeekBar {
    /// The middle of the week's slot.
    middle: String,
    /// The week's label (`03-31`) and its baseline.
    label: String,
    label_y: String,
    /// The bar; absent for a week without a value.
    bar: Option<Bar>,
    /// The value's label baseline (above the bar, or above the axis when absent).
    value_y: String,
}

#[derive(Debug, Serialize)]
struct Bar {
    x: String,
    y: String,
    width: String,
    height: String,
    label: String,
}

#[derive(Clone, Copy)]
enum ChartUnit {
    Count,
    Hours,
    Days,
}

impl ChartUnit {
    /// The plotted number for a value.
    fn scale(self, value: f64) -> f64 {
        match self {
            ChartUnit::Count => value,
            ChartUnit::Hours => value / 3_600.0,
            ChartUnit::Days => value / 86_400.0,
        }
    }

    fn axis(self) -> &'static str {
        match self {
            ChartUnit::Count => "deployments",
            ChartUnit::Hours => "hours",
            ChartUnit::Days => "days",
        }
    }

    fn label(self, plotted: f64) -> String {
        match self {
            ChartUnit::Count => format!("{plotted:.0}"),
            ChartUnit::Hours | ChartUnit::Days if plotted >= 10.0 => format!("{plotted:.0}"),
            ChartUnit::Hours | ChartUnit::Days => format!("{plotted:.1}"),
        }
    }
}

/// The trend's two charts: deployments per week and the weekly median lead time.
pub(super) fn trend_charts(report: &Report) -> Vec<Chart> {
    let labels: Vec<String> = report
        .trend
        .iter()
        .map(|w| text::month_day(w.end))
        .collect();
    let deployments: Vec<Option<f64>> = report
        .trend
        .iter()
        .map(|w| Some(w.deployments as f64))
        .collect();
    let lead: Vec<Option<f64>> = report
        .trend
        .iter()
        .map(|w: &TrendWeek| w.lead_time_median_seconds)
        .collect();
    let largest = lead.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let lead_unit = if largest >= CHART_DAYS_FROM_SECONDS {
        ChartUnit::Days
    } else {
        ChartUnit::Hours
    };
    vec![
        chart(
            "Deployments per week",
            &labels,
            &deployments,
            ChartUnit::Count,
            "bar",
        ),
        chart(
            "Median lead time per week",
            &labels,
            &lead,
            lead_unit,
            "bar lead",
        ),
    ]
}

fn chart(
    caption: &'static str,
    labels: &[String],
    values: &[Option<f64>],
    unit: ChartUnit,
    bar_class: &'static str,
) -> Chart {
    let plotted: Vec<Option<f64>> = values.iter().map(|v| v.map(|v| unit.scale(v))).collect();
    let top = plotted.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let top = if top > 0.0 { top } else { 1.0 };
    let plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT;
    let plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM;
    let base = CHART_TOP + plot_height;
    let slot = plot_width / labels.len().max(1) as f64;
    let bar = slot * BAR_FILL;

    let description: Vec<String> = labels
        .iter()
        .zip(&plotted)
        .map(|(label, value)| match value {
            Some(v) => format!("{label}: {}", unit.label(*v)),
            None => format!("{label}: none"),
        })
        .collect();
    let grid = GRID_FRACTIONS
        .iter()
        .map(|fraction| {
            let y = base - plot_height * fraction;
            GridLine {
                y: coordinate(y),
                label_y: coordinate(y + SCALE_BASELINE_OFFSET),
                label: unit.label(top * fraction),
            }
        })
        .collect();
    let weeks = labels
        .iter()
        .zip(&plotted)
        .enumerate()
        .map(|(i, (label, value))| {
            let x = CHART_LEFT + slot * i as f64 + (slot - bar) / 2.0;
            let height = value.map_or(0.0, |v| plot_height * (v / top));
            WeekBar {
                middle: coordinate(x + bar / 2.0),
                label: label.clone(),
                label_y: coordinate(base + WEEK_LABEL_OFFSET),
                bar: value.map(|v| Bar {
                    x: coordinate(x),
                    y: coordinate(base - height),
                    width: coordinate(bar),
                    height: coordinate(height),
                    label: unit.label(v),
                }),
                value_y: coordinate(base - height - VALUE_LABEL_GAP),
            }
        })
        .collect();
    Chart {
        caption,
        aria_label: format!("{caption} ({})", unit.axis()),
        title: format!("{caption} in {}: {}", unit.axis(), description.join(", ")),
        view_box: format!("0 0 {CHART_WIDTH} {CHART_HEIGHT}"),
        bar_class,
        unit: unit.axis(),
        unit_x: coordinate(UNIT_X),
        unit_baseline: UNIT_BASELINE.to_string(),
        left: CHART_LEFT.to_string(),
        right: coordinate(CHART_WIDTH - CHART_RIGHT),
        scale_x: coordinate(CHART_LEFT - SCALE_GAP),
        base: coordinate(base),
        grid,
        weeks,
    }
}
