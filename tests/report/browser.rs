//! The HTML report and the landing page in a real browser: headless Chromium (Debian's `chromium`) opens
//! the page from a file, takes a screenshot that must not be blank, logs no console
//! message at all (the page has no script, and its Content-Security-Policy turns any
//! attempted fetch into a console message), and prints it on A4 pages. Under a
//! pull-request lead-time start, the report's "Where lead time goes" section
//! draws a stacked bar per scope in the stages' colours.
//!
//! Skipped with a notice when `chromium` is not installed, unless `CI=true`, where a
//! missing browser fails the test (`.ci/run` installs it).

use crate::report_fixture;

use dora_collector::config::Config;
use dora_collector::report::{self, generate, render, Format, ReportRequest, ReportWindow};
use dora_collector::store::SqliteStore;
use report_fixture::{Fixture, GENERATED_AT, UNTIL};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "chromium";
/// The screenshot size.
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 1600;
/// How long Chromium may take before it is killed: a guard against a hung browser,
/// not a performance check (a screenshot takes about a second).
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(120);
/// A4 in PDF points (Chromium writes 594.96 × 841.92).
const A4_POINTS: (f64, f64) = (595.0, 842.0);

/// Whether Chromium can run. When it cannot: panics if `CI=true`, else skips.
fn chromium_available() -> bool {
    let available = Command::new(CHROMIUM)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is required when CI=true (Debian: apt-get install chromium)");
        }
        eprintln!("SKIPPED: chromium not found; the HTML report was not opened in a browser");
    }
    available
}

/// Runs headless Chromium on `page` with `extra` arguments; returns its stderr.
fn run_chromium(page: &Path, extra: &[String]) -> String {
    run_chromium_output(page, extra).1
}

/// The page's DOM as Chromium built it (`--dump-dom`): what it parsed, SVG
/// included.
fn dump_dom(page: &Path) -> String {
    let (dom, log) = run_chromium_output(page, &["--dump-dom".to_owned()]);
    assert!(console_messages(&log).is_empty(), "{log}");
    dom
}

/// Runs headless Chromium on `page` with `extra` arguments; returns its stdout
/// and stderr.
fn run_chromium_output(page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile directory");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let reader = read_all(Box::new(child.stderr.take().expect("stderr")));
    let out_reader = read_all(Box::new(child.stdout.take().expect("stdout")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > CHROMIUM_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = reader.join().expect("stderr reader");
    let out = out_reader.join().expect("stdout reader");
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    (out, log)
}

/// The console messages in a Chromium log (`...:INFO:CONSOLE:12] "text", source: ...`;
/// older builds write `CONSOLE(12)`).
fn console_messages(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Screenshots `page`; returns the console messages and the path of the PNG.
fn screenshot(page: &Path, dir: &Path) -> (Vec<String>, PathBuf) {
    let png = dir.join("screenshot.png");
    let log = run_chromium(
        page,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={WIDTH},{HEIGHT}"),
        ],
    );
    let messages = console_messages(&log)
        .into_iter()
        .map(str::to_owned)
        .collect();
    (messages, png)
}

/// `(width, height, distinct RGBA colours)` of a PNG.
fn colours(png: &Path) -> (u32, u32, usize) {
    let file = std::io::BufReader::new(std::fs::File::open(png).expect("the screenshot exists"));
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buffer).expect("one frame");
    let channels = info.color_type.samples();
    let pixels: HashSet<Vec<u8>> = buffer[..info.buffer_size()]
        .chunks(channels)
        .map(<[u8]>::to_vec)
        .collect();
    (info.width, info.height, pixels.len())
}

fn write_page(dir: &Path, name: &str, html: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, html).expect("write the page");
    path
}

fn fixture_html(window: &str) -> String {
    let fixture = Fixture::new();
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let request = ReportRequest {
        window: ReportWindow::parse(window).unwrap(),
        until: UNTIL,
        team: None,
        generated_at: GENERATED_AT,
    };
    let built = generate(&store, &fixture.config(), &request).unwrap();
    render(&built, Format::Html).unwrap()
}

/// The fixture's report under `lead_time_start = "pr_first_commit"` (lead-time
/// stages measured), and its HTML.
fn fixture_report_with_stages(window: &str) -> (report::Report, String) {
    let fixture = Fixture::new();
    let text = report_fixture::config_text(&fixture.store_path()).replace(
        "poll_interval = \"5m\"\n",
        "poll_interval = \"5m\"\nlead_time_start = \"pr_first_commit\"\n",
    );
    let config = Config::from_toml_str(&text, report_fixture::lookup).unwrap();
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let request = ReportRequest {
        window: ReportWindow::parse(window).unwrap(),
        until: UNTIL,
        team: None,
        generated_at: GENERATED_AT,
    };
    let built = generate(&store, &config, &request).unwrap();
    let html = render(&built, Format::Html).unwrap();
    (built, html)
}

/// The page of `html` (its head, with the style sheet and the policy) with
/// only the section headed `heading` in its body.
fn section_page(html: &str, heading: &str) -> String {
    let body = html.find("<body>").expect("a body") + "<body>".len();
    let start = html
        .find(&format!("<section>\n<h2>{heading}</h2>"))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    let end =
        start + html[start..].find("</section>").expect("the section ends") + "</section>".len();
    format!("{}{}</body></html>", &html[..body], &html[start..end])
}

/// The fill colour of each stage in the report's style sheet.
const STAGE_COLOURS: [(&str, [u8; 3]); 4] = [
    ("coding", [0x09, 0x69, 0xda]),
    ("pickup", [0xbf, 0x87, 0x00]),
    ("review", [0x82, 0x50, 0xdf]),
    ("deploy", [0x1a, 0x7f, 0x37]),
];

/// Horizontal bands of a PNG holding the stages' colours, top to bottom: for
/// each run of pixel rows where some stage colour fills at least
/// `min_pixels` pixels of a row, the stages seen in it.
fn stage_bands(png: &Path, min_pixels: usize) -> Vec<Vec<&'static str>> {
    let file = std::io::BufReader::new(std::fs::File::open(png).expect("the screenshot exists"));
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buffer).expect("one frame");
    let channels = info.color_type.samples();
    let row_bytes = info.width as usize * channels;
    let mut bands: Vec<Vec<&'static str>> = Vec::new();
    let mut in_band = false;
    for row in buffer[..info.buffer_size()].chunks(row_bytes) {
        let seen: Vec<&'static str> = STAGE_COLOURS
            .iter()
            .filter(|(_, rgb)| {
                row.chunks(channels)
                    .filter(|pixel| pixel[..3] == rgb[..])
                    .count()
                    >= min_pixels
            })
            .map(|(stage, _)| *stage)
            .collect();
        match (seen.is_empty(), in_band) {
            (true, _) => in_band = false,
            (false, false) => {
                bands.push(seen);
                in_band = true;
            }
            (false, true) => {
                let band = bands.last_mut().expect("a band");
                for stage in seen {
                    if !band.contains(&stage) {
                        band.push(stage);
                    }
                }
                band.sort_by_key(|s| STAGE_COLOURS.iter().position(|(n, _)| n == s));
            }
        }
    }
    bands
}

/// "Where lead time goes" in the browser: the section is in the DOM Chromium
/// built, with its four stage names; and its chart draws the legend, then one
/// bar per scope (the organisation, then each team) stacked of exactly the
/// stages that scope has a median for, each in its colour and wide enough to
/// see (the fixture's shortest, 30 minutes of coding, is about 2 % of the
/// longest bar).
#[test]
fn where_lead_time_goes_draws_a_stacked_bar_per_scope() {
    if !chromium_available() {
        return;
    }
    let (built, html) = fixture_report_with_stages("30d");
    let dir = tempfile::tempdir().unwrap();
    let page = write_page(dir.path(), "report.html", &html);
    let (messages, _) = screenshot(&page, dir.path());
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    let dom = dump_dom(&page);
    assert!(dom.contains("<h2>Where lead time goes</h2>"), "{dom}");
    for name in ["Coding", "Pickup", "Review", "Deploy"] {
        assert!(dom.contains(&format!(">{name}</text>")), "{name}: {dom}");
    }

    let section = write_page(
        dir.path(),
        "stages.html",
        &section_page(&html, "Where lead time goes"),
    );
    let (messages, png) = screenshot(&section, dir.path());
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    let measured = |stages: &[report::StageMedian]| -> Vec<&'static str> {
        stages
            .iter()
            .filter(|s| s.median_seconds.is_some())
            .map(|s| s.stage.label())
            .collect()
    };
    let mut expected = vec![vec!["coding", "pickup", "review", "deploy"]];
    expected.push(measured(built.summary.lead_time_stages.as_ref().unwrap()));
    for team in &built.teams {
        expected.extend(team.lead_time_stages.as_deref().map(measured));
    }
    assert_eq!(expected.len(), 4, "legend, organisation and two teams");
    assert_eq!(expected[1].len(), 4, "the organisation has every stage");
    // At least 8 pixels of a row: a legend square is 12 units (about 19 pixels).
    assert_eq!(stage_bands(&png, 8), expected);

    // The check can fail: without the pickup colour, no band has pickup.
    let uncoloured =
        section_page(&html, "Where lead time goes").replace("svg .pickup { fill: #bf8700; }", "");
    let page = write_page(dir.path(), "uncoloured.html", &uncoloured);
    let (_, png) = screenshot(&page, dir.path());
    let bands = stage_bands(&png, 8);
    assert_eq!(bands.len(), expected.len(), "{bands:?}");
    assert!(bands.iter().all(|b| !b.contains(&"pickup")), "{bands:?}");
}

#[test]
fn the_report_opens_without_console_messages_and_is_not_blank() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = write_page(dir.path(), "report.html", &fixture_html("30d"));
    let (messages, png) = screenshot(&page, dir.path());
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    let (width, height, distinct) = colours(&png);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    // Text, badges in four colours, two charts: far more than a blank page's one.
    assert!(distinct > 16, "the screenshot has {distinct} colours");
}

#[test]
fn an_empty_report_opens_too() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    drop(SqliteStore::open(&path).unwrap());
    let config = report_fixture::config(&path);
    let store = report::open_store(&path).unwrap();
    let request = ReportRequest {
        window: ReportWindow::parse("7d").unwrap(),
        until: UNTIL,
        team: None,
        generated_at: GENERATED_AT,
    };
    let html = render(&generate(&store, &config, &request).unwrap(), Format::Html).unwrap();
    let page = write_page(dir.path(), "empty.html", &html);
    let (messages, png) = screenshot(&page, dir.path());
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    assert!(colours(&png).2 > 1, "blank screenshot");
}

/// The checks above are only worth something if they can fail: a page that tries to
/// fetch an image (blocked by the same policy as the report's, so nothing leaves the
/// machine) must show a console message, and a blank page must count as blank.
#[test]
fn the_checks_catch_a_blocked_fetch_and_a_blank_page() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dora_collector::report::render::html::CONTENT_SECURITY_POLICY;
    let bad = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\"></head>\
         <body><p>x</p><img src=\"http://127.0.0.1:9/logo.png\"></body></html>"
    );
    let page = write_page(dir.path(), "bad.html", &bad);
    let (messages, _) = screenshot(&page, dir.path());
    assert!(
        messages.iter().any(|m| m.contains("127.0.0.1:9")),
        "the blocked fetch was not seen: {messages:#?}"
    );

    let blank = "<!doctype html><html><head><meta charset=\"utf-8\"></head><body></body></html>";
    let page = write_page(dir.path(), "blank.html", blank);
    let (messages, png) = screenshot(&page, dir.path());
    assert!(messages.is_empty());
    assert_eq!(colours(&png).2, 1, "a blank page has one colour");
}

#[test]
fn the_report_prints_on_a4_pages() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = write_page(dir.path(), "report.html", &fixture_html("30d"));
    let pdf = dir.path().join("report.pdf");
    let log = run_chromium(
        &page,
        &[
            "--no-pdf-header-footer".to_owned(),
            format!("--print-to-pdf={}", pdf.display()),
        ],
    );
    assert!(console_messages(&log).is_empty(), "{log}");
    let bytes = std::fs::read(&pdf).expect("the PDF exists");
    assert!(bytes.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&bytes);
    let boxes: Vec<(f64, f64)> = text
        .match_indices("/MediaBox [")
        .map(|(at, key)| {
            let rest = &text[at + key.len()..];
            let numbers: Vec<f64> = rest[..rest.find(']').unwrap()]
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            (numbers[2] - numbers[0], numbers[3] - numbers[1])
        })
        .collect();
    assert!(!boxes.is_empty(), "no page in the PDF");
    for (width, height) in boxes {
        assert!(
            (width - A4_POINTS.0).abs() < 1.0 && (height - A4_POINTS.1).abs() < 1.0,
            "a page of {width} × {height} points is not A4"
        );
    }
}

/// A frame as the daemon gives it, with every optional part shown.
fn full_frame() -> report::Frame {
    report::Frame {
        version: "1.2.3-test".to_owned(),
        simulated: true,
        ready: true,
        readiness: "every repository synced once over the lookback".to_owned(),
        snapshot: "Metrics evaluated at 2026-03-31T23:59:59Z".to_owned(),
        push_api: true,
        github_webhooks: true,
        grafana_url: Some("https://grafana.example.com".to_owned()),
        sources: vec![("acme/api".to_owned(), "GitHub (Deployments API)")],
        history: "history complete for 1 of 2 repositories, back to 2025-12-31T23:59:59Z at least"
            .to_owned(),
    }
}

#[test]
fn the_landing_page_opens_without_console_messages_and_is_not_blank() {
    if !chromium_available() {
        return;
    }
    let fixture = Fixture::new();
    let store = report::open_store(&fixture.store_path())
        .map(|store| Box::new(store) as Box<dyn dora_collector::store::Store>);
    let html = report::overview_page(
        store,
        &fixture.config(),
        UNTIL,
        ReportWindow::parse("30d").unwrap(),
        &full_frame(),
    )
    .unwrap();
    assert!(html.contains("<h2>Teams</h2>"), "{html}");
    let dir = tempfile::tempdir().unwrap();
    let page = write_page(dir.path(), "index.html", &html);
    let (messages, png) = screenshot(&page, dir.path());
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    let (width, height, distinct) = colours(&png);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    // Text, the demo banner, level badges and the status bar.
    assert!(distinct > 16, "the screenshot has {distinct} colours");
}

#[test]
fn the_landing_page_without_a_store_opens_too() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let config = report_fixture::config(&missing);
    let store = report::open_store(&missing)
        .map(|store| Box::new(store) as Box<dyn dora_collector::store::Store>);
    let html = report::overview_page(
        store,
        &config,
        UNTIL,
        ReportWindow::parse("7d").unwrap(),
        &report::Frame::unknown(),
    )
    .unwrap();
    assert!(html.contains("The store does not exist yet"), "{html}");
    assert!(!missing.exists(), "the page creates no store");
    let page = write_page(dir.path(), "index.html", &html);
    let (messages, png) = screenshot(&page, dir.path());
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    assert!(colours(&png).2 > 1, "blank screenshot");
}
