//! The hand-written analysis of `BENCHMARKS.md`, which survives regeneration: everything
//! from a line containing [`BEGIN`] to the next line containing [`END`], markers included.
//! A page without it gets a placeholder block, so the next run has markers to keep.

pub const BEGIN: &str = "<!-- analysis:begin -->";
pub const END: &str = "<!-- analysis:end -->";

/// The block(s) to carry over from the previous page (`None` when there is none), in order.
pub fn preserved(previous: Option<&str>) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut inside = false;
    for line in previous.unwrap_or("").lines() {
        if line.contains(BEGIN) {
            inside = true;
        }
        if inside {
            kept.push(line);
        }
        if line.contains(END) {
            inside = false;
        }
    }
    // The script always treated an empty capture as "no analysis yet".
    if kept.iter().all(|l| l.is_empty()) {
        return format!("{BEGIN}\n_No analysis yet._\n{END}");
    }
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analysis_between_the_markers_is_kept_with_them() {
        let page = "# t\n\n## Analysis\n\n<!-- analysis:begin -->\nP1 is *disk*-bound.\n\n- see P1 floor\n\
<!-- analysis:end -->\ntrailer\n";
        assert_eq!(
            preserved(Some(page)),
            "<!-- analysis:begin -->\nP1 is *disk*-bound.\n\n- see P1 floor\n<!-- analysis:end -->"
        );
    }

    #[test]
    fn a_page_without_markers_or_no_page_gets_the_placeholder() {
        let placeholder = "<!-- analysis:begin -->\n_No analysis yet._\n<!-- analysis:end -->";
        assert_eq!(preserved(None), placeholder);
        assert_eq!(preserved(Some("# colmena benchmarks\n")), placeholder);
    }

    #[test]
    fn an_unterminated_block_runs_to_the_end_of_the_page() {
        assert_eq!(
            preserved(Some("x\n<!-- analysis:begin -->\nnotes\n")),
            "<!-- analysis:begin -->\nnotes"
        );
    }
}
