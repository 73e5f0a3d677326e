//! The report as Markdown that pastes cleanly into a wiki page or a GitHub issue:
//! headings, pipe tables and lists only, no HTML.
//!
//! The text is the template `templates/report.md` over the view model (`view`); the
//! template engine Markdown-escapes every value it prints ([`escape`], via
//! [`crate::templates`]), so text from outside (team names, sync errors) cannot
//! break a table or add markup.

use super::view::View;
use crate::report::model::Report;
use crate::report::ReportError;

pub use crate::templates::escape_markdown as escape;

/// The text's template.
pub(super) const TEMPLATE: &str = "report.md";

/// Renders `report` as GitHub-flavoured Markdown.
pub fn render(report: &Report) -> Result<String, ReportError> {
    super::render_template(TEMPLATE, "markdown", &View::new(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_tables_intact() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<script>"), "\\<script\\>");
        assert_eq!(escape("line\nbreak"), "line break");
        assert_eq!(escape("acme/web-app_2"), "acme/web-app\\_2");
    }
}
