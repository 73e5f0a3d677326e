//! The report as one self-contained HTML page: inline CSS, inline SVG charts (weekly
//! deployments, weekly median lead time), level badges, print-friendly layout (A4,
//! table rows and cards never split across pages, table headings repeated).
//!
//! Nothing is fetched: no external font, script, style sheet or image, and the
//! page's Content-Security-Policy (`default-src 'none'`) forbids it, so a mistake
//! shows as a blocked request in the browser console (which the tests watch).
//! There is no JavaScript.
//!
//! The page is the template `templates/report.html` over the view model (`view`,
//! with the charts' coordinates from `chart`); the template engine HTML-escapes
//! every value it prints ([`crate::templates`]), so no text from outside can add
//! markup.

use super::view::View;
use crate::report::model::Report;
use crate::report::ReportError;
use serde::Serialize;

pub use crate::templates::escape_html as escape;

/// The page's Content-Security-Policy: inline styles, nothing else. Also sent as a
/// header by the live page.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// The page's template.
pub(super) const TEMPLATE: &str = "report.html";

/// Links to the same page over other windows (the live page's window selector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowLink {
    /// `30d`.
    pub label: String,
    /// A relative URL, such as `?window=30d`.
    pub href: String,
    /// This is the window shown.
    pub current: bool,
}

/// Options of the HTML page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlOptions {
    /// A window selector; empty for a file.
    pub window_links: Vec<WindowLink>,
}

/// What `report.html` reads: the view model and the page's own parts.
#[derive(Serialize)]
struct Page<'a> {
    #[serde(flatten)]
    view: View<'a>,
    content_security_policy: &'static str,
    window_links: &'a [WindowLink],
}

/// Renders `report` as one HTML page.
pub fn render(report: &Report, options: &HtmlOptions) -> Result<String, ReportError> {
    super::render_template(
        TEMPLATE,
        "html",
        &Page {
            view: View::new(report),
            content_security_policy: CONTENT_SECURITY_POLICY,
            window_links: &options.window_links,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
