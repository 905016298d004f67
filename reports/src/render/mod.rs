//! A [`Summary`](crate::summary::Summary) as people read it: the markdown
//! and HTML reports a report directory keeps, and the short text summary
//! commands print.
//!
//! None holds wall-clock figures (the HTML page only when handed a
//! [`Timing`]), so the same results always render the same text.

use std::fmt::Write;

mod html;
mod markdown;
mod text;

pub use html::{Timing, render_html, site_file, sites_by_file};
pub use markdown::render_markdown;
pub use text::render_text;

/// How many seeds a signature row (and the list of lost runs) names.
const SIGNATURE_SEEDS: usize = 8;

/// `1, 5, 9` or `1, 5, 9, ... (12 in all)`.
fn seed_list(seeds: &[u64], most: usize) -> String {
    let mut text = seeds
        .iter()
        .take(most)
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if seeds.len() > most {
        let _ = write!(text, ", ... ({} in all)", seeds.len());
    }
    text
}

/// How many runs stopped early, and which.
fn lost_runs(seeds: &[u64]) -> String {
    if seeds.is_empty() {
        return "0".to_string();
    }
    format!(
        "{} (seeds {})",
        seeds.len(),
        seed_list(seeds, SIGNATURE_SEEDS)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_seed_lists_are_cut_short() {
        assert_eq!(seed_list(&[1, 2, 3, 4], 2), "1, 2, ... (4 in all)");
        assert_eq!(seed_list(&[1, 2], 2), "1, 2");
        assert_eq!(lost_runs(&[]), "0");
        assert_eq!(lost_runs(&[4, 9]), "2 (seeds 4, 9)");
    }
}
