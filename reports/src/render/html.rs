//! The picture report, `report.html`: the summary's outcomes, faults fired
//! per kind and error sites hit per engine file as bar charts, so a night's
//! run can be read at a glance in a browser or a CI artifact.
//!
//! One self-contained file: the charts are SVG drawn by `plotters` and
//! inlined, with no scripts, styles or fonts fetched from anywhere. Like
//! report.md it holds no wall-clock figure unless given a [`Timing`], so
//! the same results render the same page.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::seed_list;
use crate::summary::Summary;

/// Wall-clock figures of the run a report describes, shown when known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub seeds: u64,
    pub wall_secs: f64,
}

impl Timing {
    pub fn seeds_per_sec(&self) -> f64 {
        self.seeds as f64 / self.wall_secs.max(1e-9)
    }
}

/// Width of every chart, in pixels.
const WIDTH: u32 = 900;
/// Height of one bar's row.
const ROW: u32 = 22;
/// Most bars a chart shows; the rest are summed into one "others" bar.
const MOST_BARS: usize = 40;

/// "EIO at engine/src/spa.rs:261" → "engine/src/spa.rs"; a site without a
/// file keeps its whole name.
pub fn site_file(site: &str) -> &str {
    let at = site.rsplit_once(" at ").map_or(site, |(_, at)| at);
    at.rsplit_once(':')
        .filter(|(_, line)| line.chars().all(|c| c.is_ascii_digit()))
        .map_or(at, |(file, _)| file)
}

/// Error-site hits summed per engine file, most first (then by name).
pub fn sites_by_file(summary: &Summary) -> Vec<(String, u64)> {
    let mut files: BTreeMap<&str, u64> = BTreeMap::new();
    for site in &summary.error_sites {
        *files.entry(site_file(&site.name)).or_default() += site.count;
    }
    let mut rows: Vec<(String, u64)> = files.into_iter().map(|(f, n)| (f.to_string(), n)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart as an SVG element, bars top to bottom in the
/// order given.
fn bar_chart(title: &str, bars: &[(String, u64)]) -> Result<String, String> {
    let mut bars = bars.to_vec();
    if bars.len() > MOST_BARS {
        let others: u64 = bars[MOST_BARS - 1..].iter().map(|b| b.1).sum();
        let n = bars.len() - (MOST_BARS - 1);
        bars.truncate(MOST_BARS - 1);
        bars.push((format!("{n} others"), others));
    }
    let n = bars.len().max(1);
    let height = 70 + ROW * n as u32;
    let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(4);
    let label_px = (longest as u32 * 7 + 16).clamp(60, 420);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<std::io::Error>| format!("chart {title:?}: {e}");
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(label_px)
            // A segmented range a..b has a row for each of a..=b: n rows (two
            // for one bar: plotters draws no labels on an empty range).
            .build_cartesian_2d(
                0u64..max + max / 8 + 1,
                (0..(n - 1).max(1)).into_segmented(),
            )
            .map_err(draw)?;
        // Row i of the chart (counted from the bottom) shows bar n-1-i, so
        // the first bar is at the top.
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => bars
                .get(n.wrapping_sub(1).wrapping_sub(*i))
                .map_or_else(String::new, |b| b.0.clone()),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&label)
            .x_label_formatter(&|x| x.to_string())
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(draw)?;
        let colour = RGBColor(0x3b, 0x6e, 0xa8);
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, count))| {
                let row = n - 1 - i;
                let mut bar = Rectangle::new(
                    [
                        (0, SegmentValue::Exact(row)),
                        (*count, SegmentValue::Exact(row + 1)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(draw)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, count))| {
                Text::new(
                    format!(" {count}"),
                    (*count, SegmentValue::CenterOf(n - 1 - i)),
                    TextStyle::from(("sans-serif", 12).into_font())
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            }))
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

/// The page: `report.html`. `timing` adds the run's seeds per second.
pub fn render_html(summary: &Summary, timing: Option<Timing>) -> Result<String, String> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>zsim campaign report</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin-bottom: 1.5em; }}\n\
         td, th {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }}\n\
         figure {{ margin: 0 0 1.5em 0; }}\n\
         .bad {{ color: #a11; font-weight: bold; }}\n\
         </style>\n</head>\n<body>\n<h1>zsim campaign report</h1>\n<table>\n"
    );
    let counts = |map: &BTreeMap<String, u64>| {
        map.iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut facts = vec![
        (
            "seeds",
            format!("{} ({})", summary.seeds, summary.seed_span()),
        ),
        ("scenarios", counts(&summary.scenarios)),
        ("fault plans", counts(&summary.fault_specs)),
        (
            "runs without a violation",
            summary.without_violation.to_string(),
        ),
        ("runs with a violation", summary.with_violation.to_string()),
        ("error sites hit", summary.error_sites.len().to_string()),
    ];
    if let Some(t) = timing {
        facts.push((
            "seeds/s (wall clock)",
            format!(
                "{:.2} ({} seeds in {:.1} s)",
                t.seeds_per_sec(),
                t.seeds,
                t.wall_secs
            ),
        ));
    }
    for (name, value) in facts {
        let class = if name == "runs with a violation" && summary.with_violation > 0 {
            " class=\"bad\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td{class}>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    out.push_str("</table>\n");

    let outcomes: Vec<(String, u64)> = summary
        .outcomes
        .named()
        .iter()
        .map(|(name, n)| (name.to_string(), *n))
        .collect();
    let faults: Vec<(String, u64)> = summary
        .faults
        .iter()
        .map(|t| (t.name.clone(), t.count))
        .collect();
    let charts = [
        ("Step outcomes, over all runs", outcomes),
        ("Faults fired, by kind", faults),
        ("Error sites hit, by source file", sites_by_file(summary)),
    ];
    for (title, bars) in charts {
        let _ = writeln!(out, "<figure>\n{}\n</figure>", bar_chart(title, &bars)?);
    }

    if !summary.signatures.is_empty() {
        out.push_str("<h2>Violations</h2>\n<table>\n<tr><th>rule broken</th><th>runs</th><th>seeds</th></tr>\n");
        for s in &summary.signatures {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.signature),
                s.seeds.len(),
                escape(&seed_list(&s.seeds, super::SIGNATURE_SEEDS))
            );
        }
        out.push_str("</table>\n<p>Replay commands: report.md and failures/.</p>\n");
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn error_sites_are_grouped_by_the_file_that_made_them() {
        assert_eq!(
            site_file("EIO at engine/src/spa.rs:261"),
            "engine/src/spa.rs"
        );
        assert_eq!(
            site_file("ENOENT at engine/src/dsl/dataset.rs:70"),
            "engine/src/dsl/dataset.rs"
        );
        assert_eq!(site_file("no location"), "no location");
    }

    #[test]
    fn the_page_is_self_contained_and_the_same_every_time() {
        let summary = fixtures::grouped();
        let page = render_html(&summary, None).unwrap();
        assert_eq!(page, render_html(&summary, None).unwrap());
        assert_eq!(page.matches("<svg").count(), 3, "three charts");
        for fetch in ["http://", "https://", "<script", "<link", "src="] {
            // The SVG namespace is the one URL a page may name.
            let named = page.replace("http://www.w3.org/2000/svg", "");
            assert!(!named.contains(fetch), "{fetch} in the page");
        }
        for t in &summary.faults {
            assert!(page.contains(&t.name), "fault kind {}", t.name);
        }
        for (file, _) in sites_by_file(&summary) {
            assert!(page.contains(&escape(&file)), "{file}");
        }
        let timed = render_html(
            &summary,
            Some(Timing {
                seeds: 10,
                wall_secs: 4.0,
            }),
        )
        .unwrap();
        assert!(timed.contains("2.50 (10 seeds in 4.0 s)"));
    }
}
