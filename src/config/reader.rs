//! The loader's walk over a parsed TOML document, and the one definition of the
//! configuration schema: builds a [`Config`] or collects every problem in the file,
//! each with its key path and line.
//!
//! The document is parsed with `toml::de::DeTable`, which keeps the byte span of
//! every key and value. The walk asks each table for the keys of the schema, one by
//! one, deserializing each value on its own with the value type's serde
//! `Deserialize` (or a `deserialize_*` function of `values`); whatever a table holds
//! beyond the keys asked for is reported as unknown. Missing optional keys take the
//! defaults of `config::defaults`; missing required ones are reported. The rules
//! between values (`rules`) then run on what parsed.
//!
//! The walk is written by hand rather than derived because a serde derive stops at
//! the first error and cannot yield a partial value: here a bad value is one problem
//! and the walk goes on, and the rules see every element that parsed at its index in
//! the file.
//!
//! Beyond the schema, this module does not decide what is valid: value types and
//! `rules` do. It never quotes the token: after the walk, the token's text is
//! replaced by `[REDACTED]` in every message (a defence for a token pasted into some
//! other key).

use super::env;
use super::rules::{self, THRESHOLD_RULES};
use super::values::{
    deserialize_github_repo, deserialize_gitlab_path, deserialize_listen, deserialize_private_key,
    deserialize_storage_path, deserialize_storage_url, deserialize_token,
};
use super::{
    defaults, ApiUrl, AppPrivateKey, ApplicationName, ArgoCdApplicationConfig, ArgoCdConfig,
    ClientName, Config, DeploymentsConfig, DeploymentsFrom, Duration, Field, GithubApi,
    GithubAppConfig, GithubAuth, GithubConfig, GithubWebhookConfig, GitlabConfig,
    GitlabDeploymentsConfig, GitlabDeploymentsFrom, IngestClientConfig, IngestConfig,
    JenkinsConfig, JenkinsJobConfig, JenkinsUser, JobPath, LabelName, LogConfig, LogFormat,
    LogLevel, MetricsConfig, NamePattern, OrgName, OrganizationConfig, PagerDutyConfig,
    PagerDutyServiceConfig, Problem, ProjectConfig, PushRepositoryConfig, RepoPattern,
    RepositoryConfig, Seconds, ServerConfig, ServiceId, ServiceMapping, StorageConfig, TeamFrom,
    ThresholdsConfig, UnstableBuilds, Urgency, WebhooksConfig, MAX_PRIVATE_KEY_BYTES,
    MIN_INGEST_TOKEN_LEN, MIN_WEBHOOK_SECRET_LEN,
};
use crate::domain::{Environment, RepoName, Team, MAX_QUOTED_INPUT};
use crate::dora::LeadTimeStart;
use secrecy::ExposeSecret;
use secrecy::SecretString;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::env::VarError;
use std::io::Read as _;
use std::path::Path;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// Minimum similarity (normalized Damerau-Levenshtein, 0 to 1) between an unknown key
/// and a known one for "did you mean" to suggest it: close enough for a typo or a
/// missing underscore, far enough not to suggest unrelated keys.
const SUGGESTION_MIN_SIMILARITY: f64 = 0.7;

/// The shortest common prefix that counts as a likeness: shorter ones are chance.
const MIN_PREFIX_LEN: usize = 4;

/// A token shorter than this is not searched for in messages: replacing one or two
/// characters everywhere would garble every message and protect nothing.
const MIN_REDACTED_TOKEN_LEN: usize = 4;

const REDACTED: &str = "[REDACTED]";

/// How deep the expansion walk descends into nested values. The schema's deepest
/// value is four levels down (`github.repositories[0].deployments.from`), and the
/// TOML parser itself stops at about 80; anything deeper is refused by the schema
/// walk, whether or not its strings were expanded.
const MAX_EXPANSION_DEPTH: usize = 16;

/// The key whose value may hold line breaks: an App's PEM key.
const PRIVATE_KEY_PATH: &str = "github.private_key";

/// Parses `text`, expands `${NAME}` in its string values with `lookup`, and checks
/// the result.
pub(super) fn read<F>(text: &str, lookup: F) -> Result<Config, Vec<Problem>>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    let lines = LineIndex::new(text);
    let (mut root, errors) = DeTable::parse_recoverable(text);
    let syntax: Vec<(Problem, bool)> = errors
        .iter()
        .map(|error| syntax_problem(text, &lines, error))
        .collect();
    // A reference outside a string confuses the parser for the rest of its line:
    // that line's other errors are its echoes.
    let misplaced: Vec<Option<usize>> = syntax
        .iter()
        .filter(|(_, reference)| *reference)
        .map(|(problem, _)| problem.line)
        .collect();
    let mut problems: Vec<Problem> = syntax
        .into_iter()
        .filter(|(problem, reference)| *reference || !misplaced.contains(&problem.line))
        .map(|(problem, _)| problem)
        .collect();
    // What parsed is expanded even when something did not: a missing variable is
    // reported together with the syntax errors.
    let mut expander = Expander {
        lines: &lines,
        lookup: &lookup,
        problems: Vec::new(),
        expanded: HashMap::new(),
    };
    expander.table("", root.get_mut(), 0);
    problems.append(&mut expander.problems);
    if !problems.is_empty() {
        return Err(in_line_order(problems));
    }
    let mut walker = Walker::new(&lines);
    walker.expanded = expander.expanded;
    let root_table = Table::new(String::new(), root.get_ref());
    let config = walker.config(root_table);
    let mut tokens: Vec<&str> = Vec::new();
    let github_token = root
        .get_ref()
        .get("github")
        .and_then(|github| github.get_ref().as_table())
        .and_then(|github| github.get("token"))
        .and_then(|token| token.get_ref().as_str());
    tokens.extend(github_token);
    let private_key = root
        .get_ref()
        .get("github")
        .and_then(|github| github.get_ref().as_table())
        .and_then(|github| github.get("private_key"))
        .and_then(|key| key.get_ref().as_str());
    tokens.extend(private_key);
    for section in ["gitlab", "argocd", "jenkins"] {
        let token = root
            .get_ref()
            .get(section)
            .and_then(|table| table.get_ref().as_table())
            .and_then(|table| table.get("token"))
            .and_then(|token| token.get_ref().as_str());
        tokens.extend(token);
    }
    let pagerduty_token = root
        .get_ref()
        .get("pagerduty")
        .and_then(|pagerduty| pagerduty.get_ref().as_table())
        .and_then(|pagerduty| pagerduty.get("token"))
        .and_then(|token| token.get_ref().as_str());
    tokens.extend(pagerduty_token);
    let clients = root
        .get_ref()
        .get("ingest")
        .and_then(|ingest| ingest.get_ref().as_table())
        .and_then(|ingest| ingest.get("clients"))
        .and_then(|clients| clients.get_ref().as_array());
    for client in clients.into_iter().flatten() {
        let token = client
            .get_ref()
            .as_table()
            .and_then(|client| client.get("token"))
            .and_then(|token| token.get_ref().as_str());
        tokens.extend(token);
    }
    let webhook_secret = root
        .get_ref()
        .get("webhooks")
        .and_then(|webhooks| webhooks.get_ref().as_table())
        .and_then(|webhooks| webhooks.get("github"))
        .and_then(|github| github.get_ref().as_table())
        .and_then(|github| github.get("secret"))
        .and_then(|secret| secret.get_ref().as_str());
    tokens.extend(webhook_secret);
    // The password of storage.url, as written and decoded.
    let storage_passwords: Vec<String> = root
        .get_ref()
        .get("storage")
        .and_then(|storage| storage.get_ref().as_table())
        .and_then(|storage| storage.get("url"))
        .and_then(|url| url.get_ref().as_str())
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| url.password().map(str::to_owned))
        .map(|password| {
            let decoded = percent_encoding::percent_decode_str(&password)
                .decode_utf8_lossy()
                .into_owned();
            vec![password, decoded]
        })
        .unwrap_or_default();
    tokens.extend(storage_passwords.iter().map(String::as_str));
    let mut problems = walker.finish_problems(&tokens);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            // Every path that drops a value records why; this only guards against a
            // future reader forgetting to, so that an invalid file never passes.
            debug_assert!(
                !problems.is_empty(),
                "a value was dropped without a problem"
            );
            if problems.is_empty() {
                problems.push(Problem::at_line(
                    1,
                    "the configuration could not be read (a bug: please report it)".to_owned(),
                ));
            }
            Err(problems)
        }
    }
}

/// A TOML syntax error as a problem at its line, and whether it is a `${NAME}`
/// written where a value or key belongs (not inside a string), which is said so,
/// naming it.
fn syntax_problem(text: &str, lines: &LineIndex, error: &toml::de::Error) -> (Problem, bool) {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = lines.line_column(text, offset);
    let at = text.get(offset..).unwrap_or("");
    if let Some(name) = at
        .starts_with("${")
        .then(|| env::references(at).into_iter().next())
        .flatten()
        .filter(|name| at.starts_with(&format!("${{{name}}}")))
    {
        let problem = Problem::at_line(
            line,
            format!(
                "`${{{name}}}` at column {column} is outside a string: environment variables \
                 are expanded only inside quoted string values (`key = \"${{{name}}}\"`), \
                 never in keys or unquoted values, so that a variable can never become a \
                 key, a number or more TOML"
            ),
        );
        return (problem, true);
    }
    let problem = Problem::at_line(
        line,
        format!("TOML syntax error at column {column}: {}", error.message()),
    );
    (problem, false)
}

/// `problems` ordered by line, each told once: a parser that recovers from the
/// same error again and again (an unclosed array nested thousands deep) reports it
/// at every level.
fn in_line_order(mut problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|problem| seen.insert((problem.line, problem.message.clone())));
    problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
    problems
}

/// Expands `${NAME}` in every string value of a parsed document, and refuses
/// references in keys.
struct Expander<'a, F> {
    lines: &'a LineIndex,
    lookup: &'a F,
    problems: Vec<Problem>,
    /// The variables each expanded value came from, by the value's byte offset in
    /// the file (for the hint of a value of the wrong type).
    expanded: HashMap<usize, String>,
}

impl<F> Expander<'_, F>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    fn table(&mut self, path: &str, table: &mut DeTable<'_>, depth: usize) {
        for (key, value) in table.iter_mut() {
            let child = child_path(path, key.get_ref());
            if key.get_ref().contains("${") {
                self.problems.push(Problem::at_path(
                    child.clone(),
                    Some(self.lines.line(key.span().start)),
                    "a `${...}` reference in a key: environment variables are expanded only \
                     inside string values, never in keys"
                        .to_owned(),
                ));
            }
            self.value(&child, value, depth + 1);
        }
    }

    fn value(&mut self, path: &str, value: &mut Spanned<DeValue<'_>>, depth: usize) {
        if depth > MAX_EXPANSION_DEPTH {
            return;
        }
        let start = value.span().start;
        match value.get_mut() {
            DeValue::String(text) => {
                let line = self.lines.line(start);
                // A PEM key is lines: the one value that may hold line breaks.
                let multiline = path == PRIVATE_KEY_PATH;
                if let Some(expanded) =
                    env::expand_value(text, line, multiline, self.lookup, &mut self.problems)
                {
                    let names: Vec<String> = env::references(text)
                        .into_iter()
                        .map(|name| format!("${{{name}}}"))
                        .collect();
                    if !names.is_empty() {
                        self.expanded.insert(start, names.join(", "));
                    }
                    *text = Cow::Owned(expanded);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.value(&format!("{path}[{i}]"), item, depth + 1);
                }
            }
            DeValue::Table(table) => self.table(path, table, depth),
            _ => {}
        }
    }
}

/// A document with every table of the schema, each empty, for [`schema_paths`].
#[cfg(test)]
const EVERY_TABLE: &str = "[server]\n[storage]\n[metrics.thresholds]\n[github]\n\
                           [[github.repositories]]\ndeployments = {}\n\
                           [[github.organizations]]\ndeployments = {}\n[gitlab]\n\
                           [[gitlab.projects]]\ndeployments = {}\n[ingest]\n\
                           [[ingest.clients]]\n[[repositories]]\n[pagerduty]\n\
                           [[pagerduty.services]]\n[webhooks.github]\n[argocd]\n\
                           [[argocd.applications]]\n[jenkins]\n[[jenkins.jobs]]\n[log]\n";

/// Every key path of the schema, tables included, spelled as
/// `docs/configuration.md` spells them (`github.repositories[].name`): the keys that
/// each table asks for when a document holding every table is walked.
#[cfg(test)]
pub(super) fn schema_paths() -> Vec<String> {
    let lines = LineIndex::new(EVERY_TABLE);
    let (root, errors) = DeTable::parse_recoverable(EVERY_TABLE);
    assert!(errors.is_empty(), "{errors:?}");
    let mut walker = Walker::new(&lines);
    walker.config(Table::new(String::new(), root.get_ref()));
    walker.schema
}

/// `path` with every array index left out: `a[0].b` is `a[].b`.
#[cfg(test)]
fn without_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// Byte offset to 1-based line (and column) numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|start| *start <= offset)
    }

    fn line_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        let start = self.starts[line - 1];
        let column = text
            .get(start..offset.min(text.len()))
            .map_or(1, |before| before.chars().count() + 1);
        (line, column)
    }
}

/// One TOML table being walked: its path, its entries and the keys asked for so far.
struct Table<'a, 'i> {
    path: String,
    entries: &'a DeTable<'i>,
    known: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    fn new(path: String, entries: &'a DeTable<'i>) -> Self {
        Table {
            path,
            entries,
            known: Vec::new(),
        }
    }

    fn child(&self, key: &str) -> String {
        child_path(&self.path, key)
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `parent.key`, with the key quoted when it is not a bare TOML key.
fn child_path(parent: &str, key: &str) -> String {
    let key = if is_bare_key(key) {
        key.to_owned()
    } else {
        format!(
            "{:?}",
            key.chars().take(MAX_QUOTED_INPUT).collect::<String>()
        )
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// How alike an unknown key is to a known one, 0 to 1: the normalized edit distance,
/// or 1 when one starts with the other (`listen_addr` for `listen`).
fn similarity(unknown: &str, known: &str) -> f64 {
    let prefix = unknown.len().min(known.len()) >= MIN_PREFIX_LEN
        && (unknown.starts_with(known) || known.starts_with(unknown));
    if prefix {
        1.0
    } else {
        strsim::normalized_damerau_levenshtein(unknown, known)
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

struct Walker<'l> {
    lines: &'l LineIndex,
    problems: Vec<Problem>,
    /// The line of every key path visited, to locate problems from `rules`.
    key_lines: HashMap<String, usize>,
    /// The windows that parsed, for the lookback rule.
    windows: Option<Vec<(usize, Duration)>>,
    /// The lookbacks that parsed (`github.lookback`, `gitlab.lookback`), for the
    /// lookback rule.
    lookbacks: Vec<(&'static str, Duration)>,
    /// The `${NAME}` references of each expanded string value, by its offset.
    expanded: HashMap<usize, String>,
    /// The indices of the `[[github.repositories]]` entries that set
    /// `deployments` themselves.
    explicit_deployments: Vec<usize>,
    /// The `[[gitlab.projects]]` entries (indices) that set `deployments`.
    explicit_gitlab_deployments: Vec<usize>,
    /// The `[[pagerduty.services]]` that parsed, with their index (for the rules
    /// that need the repositories).
    pagerduty_services: Vec<(usize, PagerDutyServiceConfig)>,
    /// Every key path asked for, without indices (for [`schema_paths`]).
    #[cfg(test)]
    schema: Vec<String>,
}

/// Reads one entry of a code host's list: its name (when valid) and the entry
/// (when every key is).
type ReadEntry<W, T> = fn(&mut W, Table<'_, '_>) -> (Option<RepoName>, Option<T>);

/// Checks the names of a code host's list (`(index, name)`, how many declared).
type CheckNames = fn(&[(usize, &RepoName)], usize) -> Vec<Problem>;

impl<'l> Walker<'l> {
    fn new(lines: &'l LineIndex) -> Self {
        Walker {
            lines,
            problems: Vec::new(),
            key_lines: HashMap::new(),
            windows: None,
            lookbacks: Vec::new(),
            expanded: HashMap::new(),
            explicit_deployments: Vec::new(),
            explicit_gitlab_deployments: Vec::new(),
            pagerduty_services: Vec::new(),
            #[cfg(test)]
            schema: Vec::new(),
        }
    }

    fn problem(&mut self, path: String, line: Option<usize>, message: impl Into<String>) {
        self.problems
            .push(Problem::at_path(path, line, message.into()));
    }

    fn extend(&mut self, problems: Vec<Problem>) {
        self.problems.extend(problems);
    }

    /// Locates the problems from `rules`, redacts the tokens, orders by line.
    fn finish_problems(mut self, tokens: &[&str]) -> Vec<Problem> {
        for problem in &mut self.problems {
            if problem.line.is_none() {
                let mut path = problem.path.clone().unwrap_or_default();
                problem.line = loop {
                    if let Some(line) = self.key_lines.get(&path) {
                        break Some(*line);
                    }
                    match path.rfind(['.', '[']) {
                        Some(cut) => path.truncate(cut),
                        None => break None,
                    }
                };
            }
            for token in tokens.iter().filter(|t| t.len() >= MIN_REDACTED_TOKEN_LEN) {
                problem.message = problem.message.replace(token, REDACTED);
                if let Some(path) = &mut problem.path {
                    *path = path.replace(token, REDACTED);
                }
            }
        }
        self.problems
            .sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
        self.problems
    }

    /// The value of `key`, marking the key as part of the schema and noting its line.
    fn entry<'a, 'i>(
        &mut self,
        table: &mut Table<'a, 'i>,
        key: &'static str,
    ) -> Option<(String, usize, &'a Spanned<DeValue<'i>>)> {
        table.known.push(key);
        let (spanned_key, value) = table.entries.get_key_value(key)?;
        let path = table.child(key);
        let line = self.lines.line(spanned_key.span().start);
        self.key_lines.insert(path.clone(), line);
        Some((path, line, value))
    }

    fn deserialize<'i, T>(
        &mut self,
        path: &str,
        line: usize,
        value: &Spanned<DeValue<'i>>,
        de: impl FnOnce(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
    ) -> Option<T> {
        match de(ValueDeserializer::from(value.clone())) {
            Ok(value) => Some(value),
            Err(error) => {
                let mut message = error.message().to_owned();
                // A string that wanted to be another type: say that no variable
                // can change a value's type.
                if let Some(names) = self.expanded.get(&value.span().start) {
                    if message.starts_with("invalid type: string") {
                        message.push_str(&format!(
                            " ({names} is expanded inside the string and stays a string; \
                             a variable never changes a value's type)"
                        ));
                    }
                }
                self.problem(path.to_owned(), Some(line), message);
                None
            }
        }
    }

    /// A single value.
    fn scalar<'i, T>(
        &mut self,
        table: &mut Table<'_, 'i>,
        key: &'static str,
        de: impl FnOnce(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
    ) -> Field<T> {
        let Some((path, line, value)) = self.entry(table, key) else {
            return Field::Absent;
        };
        match self.deserialize(&path, line, value, de) {
            Some(value) => Field::Valid(value),
            None => Field::Invalid,
        }
    }

    /// An array whose elements are deserialized (and reported) one by one. `Valid`
    /// holds one entry per element, `None` for those that did not parse.
    fn list<'i, T>(
        &mut self,
        table: &mut Table<'_, 'i>,
        key: &'static str,
        de: impl Fn(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
    ) -> Field<Vec<Option<T>>> {
        let Some((path, line, value)) = self.entry(table, key) else {
            return Field::Absent;
        };
        let DeValue::Array(array) = value.get_ref() else {
            self.problem(
                path,
                Some(line),
                format!("expected an array, got {}", type_name(value.get_ref())),
            );
            return Field::Invalid;
        };
        let items = array
            .iter()
            .enumerate()
            .map(|(i, element)| {
                let element_path = format!("{path}[{i}]");
                let element_line = self.lines.line(element.span().start);
                self.key_lines.insert(element_path.clone(), element_line);
                self.deserialize(&element_path, element_line, element, &de)
            })
            .collect();
        Field::Valid(items)
    }

    /// A list with defaults: the value, the default when absent, `None` when the key
    /// or any element is invalid. Runs `rule` on the elements that parsed.
    fn checked_list<'i, T>(
        &mut self,
        table: &mut Table<'_, 'i>,
        key: &'static str,
        de: impl Fn(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
        default: impl FnOnce() -> Vec<T>,
        rule: impl FnOnce(&[(usize, &T)], usize) -> Vec<Problem>,
    ) -> Option<Vec<T>> {
        let items = self
            .list(table, key, de)
            .or_else(|| default().into_iter().map(Some).collect())?;
        let parsed: Vec<(usize, &T)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| item.as_ref().map(|item| (i, item)))
            .collect();
        let problems = rule(&parsed, items.len());
        self.extend(problems);
        items.into_iter().collect()
    }

    /// Exactly three values `[elite, high, medium]`.
    fn triple<'i, T>(
        &mut self,
        table: &mut Table<'_, 'i>,
        key: &'static str,
        de: impl Fn(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
    ) -> Field<[T; 3]> {
        let path = table.child(key);
        match self.list(table, key, de) {
            Field::Absent => Field::Absent,
            Field::Invalid => Field::Invalid,
            Field::Valid(items) => {
                let count = items.len();
                let items: Option<Vec<T>> = items.into_iter().collect();
                match items.map(<[T; 3]>::try_from) {
                    Some(Ok(values)) => Field::Valid(values),
                    Some(Err(_)) => {
                        let line = self.key_lines.get(&path).copied();
                        self.problem(
                            path,
                            line,
                            format!("expected 3 values [elite, high, medium], got {count}"),
                        );
                        Field::Invalid
                    }
                    None => Field::Invalid,
                }
            }
        }
    }

    /// A sub-table (a `[header]` table or an inline table).
    fn table<'a, 'i>(
        &mut self,
        table: &mut Table<'a, 'i>,
        key: &'static str,
    ) -> Field<Table<'a, 'i>> {
        let Some((path, line, value)) = self.entry(table, key) else {
            return Field::Absent;
        };
        match value.get_ref() {
            DeValue::Table(entries) => Field::Valid(Table::new(path, entries)),
            other => {
                self.problem(
                    path,
                    Some(line),
                    format!("expected a table, got {}", type_name(other)),
                );
                Field::Invalid
            }
        }
    }

    /// An array of tables (`[[header]]` or an array of inline tables); `None` for
    /// elements that are not tables.
    fn tables<'a, 'i>(
        &mut self,
        table: &mut Table<'a, 'i>,
        key: &'static str,
    ) -> Field<Vec<Option<Table<'a, 'i>>>> {
        let Some((path, line, value)) = self.entry(table, key) else {
            return Field::Absent;
        };
        let DeValue::Array(array) = value.get_ref() else {
            self.problem(
                path.clone(),
                Some(line),
                format!(
                    "expected an array of tables ([[{path}]]), got {}",
                    type_name(value.get_ref())
                ),
            );
            return Field::Invalid;
        };
        let tables = array
            .iter()
            .enumerate()
            .map(|(i, element)| {
                let element_path = format!("{path}[{i}]");
                let element_line = self.lines.line(element.span().start);
                self.key_lines.insert(element_path.clone(), element_line);
                match element.get_ref() {
                    DeValue::Table(entries) => Some(Table::new(element_path, entries)),
                    other => {
                        self.problem(
                            element_path,
                            Some(element_line),
                            format!("expected a table, got {}", type_name(other)),
                        );
                        None
                    }
                }
            })
            .collect();
        Field::Valid(tables)
    }

    /// A required value: reports its absence.
    fn require<T>(&mut self, field: Field<T>, table: &Table<'_, '_>, key: &str) -> Option<T> {
        match field {
            Field::Valid(value) => Some(value),
            Field::Invalid => None,
            Field::Absent => {
                let line = self.key_lines.get(&table.path).copied();
                self.problem(table.child(key), line, "missing required key");
                None
            }
        }
    }

    /// Reports every key of `table` the walk did not ask for.
    fn finish(&mut self, table: Table<'_, '_>) {
        #[cfg(test)]
        self.schema.extend(
            table
                .known
                .iter()
                .map(|key| without_indices(&table.child(key))),
        );
        for (key, _) in table.entries.iter() {
            let name: &str = key.get_ref();
            if table.known.contains(&name) {
                continue;
            }
            let suggestion = table
                .known
                .iter()
                .map(|known| (similarity(name, known), known))
                .filter(|(similarity, _)| *similarity >= SUGGESTION_MIN_SIMILARITY)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let message = match suggestion {
                Some((_, known)) => format!("unknown key, did you mean \"{known}\"?"),
                None if table.known.is_empty() => "unknown key".to_owned(),
                None => format!("unknown key (expected one of: {})", table.known.join(", ")),
            };
            let line = self.lines.line(key.span().start);
            self.problem(table.child(name), Some(line), message);
        }
    }

    /// An optional section: its reader's result, the default when absent.
    fn section<'a, 'i, T: Default>(
        &mut self,
        root: &mut Table<'a, 'i>,
        key: &'static str,
        read: impl FnOnce(&mut Self, Table<'a, 'i>) -> Option<T>,
    ) -> Option<T> {
        match self.table(root, key) {
            Field::Absent => Some(T::default()),
            Field::Invalid => None,
            Field::Valid(table) => read(self, table),
        }
    }

    fn config(&mut self, mut root: Table<'_, '_>) -> Option<Config> {
        let server = self.section(&mut root, "server", Self::server);
        let storage = self.section(&mut root, "storage", Self::storage);
        let metrics = match self.table(&mut root, "metrics") {
            Field::Absent => {
                self.windows = Some(defaults::windows().into_iter().enumerate().collect());
                Some(MetricsConfig::default())
            }
            Field::Invalid => None,
            Field::Valid(table) => self.metrics(table),
        };
        let github = match self.table(&mut root, "github") {
            Field::Valid(table) => self.github(table).map(Some),
            Field::Invalid => None,
            Field::Absent => Some(None),
        };
        let gitlab = match self.table(&mut root, "gitlab") {
            Field::Valid(table) => self.gitlab(table).map(Some),
            Field::Invalid => None,
            Field::Absent => Some(None),
        };
        let ingest = match self.table(&mut root, "ingest") {
            Field::Valid(table) => self.ingest(table).map(Some),
            Field::Invalid => None,
            Field::Absent => Some(None),
        };
        if let (Some(None), Some(None), Some(None)) = (&github, &gitlab, &ingest) {
            self.problem(
                "github".to_owned(),
                None,
                "missing required table [github] (the token and the repositories), \
                 [gitlab] (the token and the projects), or [ingest] for a collector fed \
                 only by the push API",
            );
        }
        let repositories = self.push_repositories(&mut root);
        let pagerduty = match self.table(&mut root, "pagerduty") {
            Field::Valid(table) => self.pagerduty(table).map(Some),
            Field::Invalid => None,
            Field::Absent => Some(None),
        };
        let github_hook = root
            .entries
            .get("webhooks")
            .and_then(|webhooks| webhooks.get_ref().as_table())
            .is_some_and(|webhooks| webhooks.contains_key("github"));
        let webhooks = self.section(&mut root, "webhooks", Self::webhooks);
        if let Some(None) = &github {
            self.extend(rules::webhooks_need_github(false, github_hook));
        }
        let argocd = match self.table(&mut root, "argocd") {
            Field::Valid(table) => self.argocd(table).map(Some),
            Field::Invalid => None,
            Field::Absent => Some(None),
        };
        let jenkins = match self.table(&mut root, "jenkins") {
            Field::Valid(table) => self.jenkins(table).map(Some),
            Field::Invalid => None,
            Field::Absent => Some(None),
        };
        let log = self.section(&mut root, "log", Self::log);
        self.finish(root);
        if let Some(windows) = self.windows.take() {
            for (path, lookback) in std::mem::take(&mut self.lookbacks) {
                self.extend(rules::lookback(path, lookback, &windows));
            }
        }
        let (mut github, mut gitlab, repositories) = (github?, gitlab?, repositories?);
        let github_names: Vec<&RepoName> = github
            .iter()
            .flat_map(|github| &github.repositories)
            .map(|repo| &repo.name)
            .collect();
        let gitlab_paths: Vec<(usize, &RepoName)> = gitlab
            .iter()
            .flat_map(|gitlab| &gitlab.projects)
            .map(|project| &project.path)
            .enumerate()
            .collect();
        let gitlab_names: Vec<&RepoName> = gitlab_paths.iter().map(|(_, p)| *p).collect();
        self.extend(rules::one_code_host(&github_names, &gitlab_paths));
        self.extend(rules::push_repositories_apart(
            &repositories,
            &github_names,
            &gitlab_names,
        ));
        let configured: Vec<&RepoName> = github_names
            .iter()
            .copied()
            .chain(gitlab_names.iter().copied())
            .chain(repositories.iter().map(|repo| &repo.name))
            .collect();
        let services = std::mem::take(&mut self.pagerduty_services);
        let parsed: Vec<(usize, &PagerDutyServiceConfig)> =
            services.iter().map(|(i, s)| (*i, s)).collect();
        self.extend(rules::pagerduty_services(&parsed, &configured));
        let (argocd, jenkins) = (argocd?, jenkins?);
        let applications: Vec<&RepoName> = argocd
            .iter()
            .flat_map(|argocd| &argocd.applications)
            .map(|application| &application.repository)
            .collect();
        let jobs: Vec<&RepoName> = jenkins
            .iter()
            .flat_map(|jenkins| &jenkins.jobs)
            .map(|job| &job.repository)
            .collect();
        let hosts = rules::CodeHosts {
            github: github
                .as_mut()
                .map_or(&mut [][..], |github| github.repositories.as_mut_slice()),
            github_explicit: &self.explicit_deployments,
            gitlab: gitlab
                .as_mut()
                .map_or(&mut [][..], |gitlab| gitlab.projects.as_mut_slice()),
            gitlab_explicit: &self.explicit_gitlab_deployments,
        };
        let problems =
            rules::resolve_deployment_sources(hosts, &applications, &jobs, &repositories);
        self.extend(problems);
        let pagerduty = pagerduty?;
        Some(Config {
            server: server?,
            storage: storage?,
            metrics: metrics?,
            github,
            gitlab,
            ingest: ingest?,
            repositories,
            pagerduty,
            webhooks: webhooks?,
            argocd,
            jenkins,
            log: log?,
        })
    }

    fn argocd(&mut self, mut table: Table<'_, '_>) -> Option<ArgoCdConfig> {
        let api_url = self.scalar(&mut table, "api_url", ApiUrl::deserialize);
        let api_url = self.require(api_url, &table, "api_url");
        let token = self.scalar(&mut table, "token", deserialize_token);
        let token = self.require(token, &table, "token");
        let tables = self.tables(&mut table, "applications").or_else(Vec::new);
        self.finish(table);
        let tables = tables?;
        let declared = tables.len();
        let mut applications = Vec::new();
        for table in tables {
            applications.push(table.and_then(|table| self.argocd_application(table)));
        }
        let names: Vec<(usize, &ApplicationName)> = applications
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (i, &a.name)))
            .collect();
        let problems = rules::argocd_applications(&names, declared);
        self.extend(problems);
        Some(ArgoCdConfig {
            api_url: api_url?,
            token: token?,
            applications: applications.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    fn argocd_application(&mut self, mut table: Table<'_, '_>) -> Option<ArgoCdApplicationConfig> {
        let name = self.scalar(&mut table, "name", ApplicationName::deserialize);
        let name = self.require(name, &table, "name");
        let repository = self.scalar(&mut table, "repository", RepoName::deserialize);
        let repository = self.require(repository, &table, "repository");
        let environment = self.scalar(&mut table, "environment", Environment::deserialize);
        let environment = self.require(environment, &table, "environment");
        self.finish(table);
        Some(ArgoCdApplicationConfig {
            name: name?,
            repository: repository?,
            environment: environment?,
        })
    }

    fn jenkins(&mut self, mut table: Table<'_, '_>) -> Option<JenkinsConfig> {
        let url = self.scalar(&mut table, "url", ApiUrl::deserialize);
        let url = self.require(url, &table, "url");
        let user = self.scalar(&mut table, "user", JenkinsUser::deserialize);
        let user = self.require(user, &table, "user");
        let token = self.scalar(&mut table, "token", deserialize_token);
        let token = self.require(token, &table, "token");
        let unstable = self
            .scalar(&mut table, "unstable", UnstableBuilds::deserialize)
            .or_else(UnstableBuilds::default);
        let tables = self.tables(&mut table, "jobs").or_else(Vec::new);
        self.finish(table);
        let tables = tables?;
        let declared = tables.len();
        let mut jobs = Vec::new();
        for table in tables {
            jobs.push(table.and_then(|table| self.jenkins_job(table)));
        }
        let paths: Vec<(usize, &JobPath)> = jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| j.as_ref().map(|j| (i, &j.path)))
            .collect();
        let problems = rules::jenkins_jobs(&paths, declared);
        self.extend(problems);
        Some(JenkinsConfig {
            url: url?,
            user: user?,
            token: token?,
            unstable: unstable?,
            jobs: jobs.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    fn jenkins_job(&mut self, mut table: Table<'_, '_>) -> Option<JenkinsJobConfig> {
        let path = self.scalar(&mut table, "path", JobPath::deserialize);
        let path = self.require(path, &table, "path");
        let repository = self.scalar(&mut table, "repository", RepoName::deserialize);
        let repository = self.require(repository, &table, "repository");
        let environment = self.scalar(&mut table, "environment", Environment::deserialize);
        let environment = self.require(environment, &table, "environment");
        self.finish(table);
        Some(JenkinsJobConfig {
            path: path?,
            repository: repository?,
            environment: environment?,
        })
    }

    fn pagerduty(&mut self, mut table: Table<'_, '_>) -> Option<PagerDutyConfig> {
        let api_url = self
            .scalar(&mut table, "api_url", ApiUrl::deserialize)
            .or_else(defaults::pagerduty_api_url);
        let token = self.scalar(&mut table, "token", deserialize_token);
        let token = self.require(token, &table, "token");
        let urgencies = self.checked_list(
            &mut table,
            "urgencies",
            Urgency::deserialize,
            defaults::urgencies,
            rules::urgencies,
        );
        let tables = self.tables(&mut table, "services").or_else(Vec::new);
        let services_path = table.child("services");
        self.finish(table);
        let tables = tables?;
        if tables.is_empty() {
            let line = self.key_lines.get(&services_path).copied();
            self.problem(
                services_path,
                line,
                "expected at least one [[pagerduty.services]] (id and repositories or team)",
            );
        }
        let services: Vec<Option<PagerDutyServiceConfig>> = tables
            .into_iter()
            .map(|table| table.and_then(|table| self.pagerduty_service(table)))
            .collect();
        self.pagerduty_services = services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.clone().map(|s| (i, s)))
            .collect();
        Some(PagerDutyConfig {
            api_url: api_url?,
            token: token?,
            urgencies: urgencies?,
            services: services.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    fn pagerduty_service(&mut self, mut table: Table<'_, '_>) -> Option<PagerDutyServiceConfig> {
        let id = self.scalar(&mut table, "id", ServiceId::deserialize);
        let id = self.require(id, &table, "id");
        let repositories = self.list(&mut table, "repositories", RepoName::deserialize);
        let team = self.scalar(&mut table, "team", Team::deserialize);
        let path = table.path.clone();
        let line = self.key_lines.get(&path).copied();
        self.finish(table);
        let maps_to = match (repositories, team) {
            (Field::Valid(names), Field::Absent) => {
                let names: Vec<RepoName> = names.into_iter().collect::<Option<_>>()?;
                if names.is_empty() {
                    self.problem(
                        child_path(&path, "repositories"),
                        line,
                        "expected at least one repository (or team = \"...\" instead)",
                    );
                    return None;
                }
                ServiceMapping::Repositories(names)
            }
            (Field::Absent, Field::Valid(team)) => ServiceMapping::Team(team),
            (Field::Absent, Field::Absent) => {
                self.problem(
                    path,
                    line,
                    "expected repositories = [\"owner/name\", ...] or team = \"...\": what \
                     the service's incidents are attributed over",
                );
                return None;
            }
            (Field::Valid(_), Field::Valid(_)) => {
                self.problem(
                    child_path(&path, "team"),
                    line,
                    "set either repositories or team, not both",
                );
                return None;
            }
            _ => return None,
        };
        Some(PagerDutyServiceConfig { id: id?, maps_to })
    }

    fn webhooks(&mut self, mut table: Table<'_, '_>) -> Option<WebhooksConfig> {
        let github = match self.table(&mut table, "github") {
            Field::Absent => Some(None),
            Field::Invalid => None,
            Field::Valid(github) => self.github_webhook(github).map(Some),
        };
        self.finish(table);
        Some(WebhooksConfig { github: github? })
    }

    fn github_webhook(&mut self, mut table: Table<'_, '_>) -> Option<GithubWebhookConfig> {
        let secret_path = table.child("secret");
        let secret = self.scalar(&mut table, "secret", deserialize_token);
        let secret = self.require(secret, &table, "secret");
        self.finish(table);
        let secret = secret?;
        if secret.expose_secret().chars().count() < MIN_WEBHOOK_SECRET_LEN {
            let line = self.key_lines.get(&secret_path).copied();
            self.problem(
                secret_path,
                line,
                format!(
                    "must be at least {MIN_WEBHOOK_SECRET_LEN} characters (the value is not \
                     shown); generate one with `openssl rand -hex 32` and set the same in \
                     GitHub's webhook settings"
                ),
            );
            return None;
        }
        Some(GithubWebhookConfig { secret })
    }

    fn ingest(&mut self, mut table: Table<'_, '_>) -> Option<IngestConfig> {
        let rate = self
            .scalar(&mut table, "requests_per_second", u32::deserialize)
            .or_else(|| defaults::INGEST_REQUESTS_PER_SECOND);
        if let Some(rate) = rate {
            self.extend(rules::ingest_rate(rate));
        }
        let production_environments = self.checked_list(
            &mut table,
            "production_environments",
            Environment::deserialize,
            defaults::production_environments,
            |items, declared| {
                rules::production_environments(rules::INGEST_ENVIRONMENTS, items, declared)
            },
        );
        let tables = self.tables(&mut table, "clients").or_else(Vec::new);
        self.finish(table);
        let tables = tables?;
        let declared = tables.len();
        let mut clients = Vec::new();
        for table in tables {
            clients.push(table.and_then(|table| self.ingest_client(table)));
        }
        let parsed: Vec<(usize, &IngestClientConfig)> = clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
            .collect();
        let problems = rules::ingest_clients(&parsed, declared);
        self.extend(problems);
        Some(IngestConfig {
            requests_per_second: rate?,
            production_environments: production_environments?,
            clients: clients.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    fn ingest_client(&mut self, mut table: Table<'_, '_>) -> Option<IngestClientConfig> {
        let name = self.scalar(&mut table, "name", ClientName::deserialize);
        let name = self.require(name, &table, "name");
        let token_path = table.child("token");
        let token = self.scalar(&mut table, "token", deserialize_token);
        let token = self.require(token, &table, "token");
        if let Some(token) = &token {
            if token.expose_secret().chars().count() < MIN_INGEST_TOKEN_LEN {
                let line = self.key_lines.get(&token_path).copied();
                self.problem(
                    token_path,
                    line,
                    format!(
                        "must be at least {MIN_INGEST_TOKEN_LEN} characters (the value is \
                         not shown); generate one with `openssl rand -hex 32`"
                    ),
                );
            }
        }
        let patterns_path = table.child("repositories");
        let patterns = self.list(&mut table, "repositories", RepoPattern::deserialize);
        let patterns = self.require(patterns, &table, "repositories");
        if patterns.as_ref().is_some_and(Vec::is_empty) {
            let line = self.key_lines.get(&patterns_path).copied();
            self.problem(
                patterns_path,
                line,
                "expected at least one repository pattern (such as \"acme/*\")",
            );
        }
        self.finish(table);
        let token = token.filter(|t| t.expose_secret().chars().count() >= MIN_INGEST_TOKEN_LEN);
        let patterns: Vec<RepoPattern> = patterns?.into_iter().collect::<Option<_>>()?;
        if patterns.is_empty() {
            return None;
        }
        Some(IngestClientConfig {
            name: name?,
            token: token?,
            repositories: patterns,
        })
    }

    /// `[[repositories]]` at the top level.
    fn push_repositories(&mut self, root: &mut Table<'_, '_>) -> Option<Vec<PushRepositoryConfig>> {
        let tables = self.tables(root, "repositories").or_else(Vec::new)?;
        let mut names = Vec::new();
        let mut repositories = Vec::new();
        for (i, table) in tables.into_iter().enumerate() {
            let Some(mut table) = table else {
                repositories.push(None);
                continue;
            };
            let name = self.scalar(&mut table, "name", RepoName::deserialize);
            let name = self.require(name, &table, "name");
            let team = self
                .scalar(&mut table, "team", Team::deserialize)
                .or_else(Team::default);
            self.finish(table);
            if let Some(name) = &name {
                names.push((i, name.clone()));
            }
            repositories.push(match (name, team) {
                (Some(name), Some(team)) => Some(PushRepositoryConfig { name, team }),
                _ => None,
            });
        }
        let problems =
            rules::push_repositories(&names.iter().map(|(i, name)| (*i, name)).collect::<Vec<_>>());
        self.extend(problems);
        repositories.into_iter().collect()
    }

    fn server(&mut self, mut table: Table<'_, '_>) -> Option<ServerConfig> {
        let listen = self
            .scalar(&mut table, "listen", deserialize_listen)
            .or_else(defaults::listen);
        let shutdown_grace_period = self
            .scalar(&mut table, "shutdown_grace_period", Duration::deserialize)
            .or_else(defaults::shutdown_grace_period);
        let grafana_url = self
            .scalar(&mut table, "grafana_url", ApiUrl::deserialize)
            .map_valid(Some)
            .or_else(|| None);
        self.finish(table);
        Some(ServerConfig {
            listen: listen?,
            shutdown_grace_period: shutdown_grace_period?,
            grafana_url: grafana_url?,
        })
    }

    fn storage(&mut self, mut table: Table<'_, '_>) -> Option<StorageConfig> {
        let path = self.scalar(&mut table, "path", deserialize_storage_path);
        let url = self.scalar(&mut table, "url", deserialize_storage_url);
        let both = path.is_present() && url.is_present();
        let url_path = table.child("url");
        self.finish(table);
        if both {
            self.problem(
                url_path,
                None,
                "set either path (an SQLite file) or url (a PostgreSQL database), not both",
            );
            return None;
        }
        let url = match url {
            Field::Absent => None,
            Field::Invalid => return None,
            Field::Valid(url) => Some(url),
        };
        Some(StorageConfig {
            path: path.or_else(defaults::storage_path)?,
            url,
        })
    }

    fn metrics(&mut self, mut table: Table<'_, '_>) -> Option<MetricsConfig> {
        let mut parsed_windows = Vec::new();
        let windows = self.checked_list(
            &mut table,
            "windows",
            Duration::deserialize,
            defaults::windows,
            |items, declared| {
                parsed_windows = items.iter().map(|(i, w)| (*i, **w)).collect();
                rules::windows(&parsed_windows, declared)
            },
        );
        self.windows = Some(parsed_windows);
        let thresholds = match self.table(&mut table, "thresholds") {
            Field::Absent => Some(ThresholdsConfig::default()),
            Field::Invalid => None,
            Field::Valid(thresholds) => self.thresholds(thresholds),
        };
        self.finish(table);
        Some(MetricsConfig {
            windows: windows?,
            thresholds: thresholds?,
        })
    }

    fn thresholds(&mut self, mut table: Table<'_, '_>) -> Option<ThresholdsConfig> {
        let default = ThresholdsConfig::default();
        let frequency = self.triple(&mut table, "deployment_frequency_per_day", f64::deserialize);
        let lead_time = self.triple(&mut table, "lead_time_seconds", Seconds::deserialize);
        let failure_rate = self.triple(&mut table, "change_failure_rate", f64::deserialize);
        let recovery = self.triple(&mut table, "recovery_time_seconds", Seconds::deserialize);
        self.finish(table);
        let frequency = frequency.or_else(|| default.deployment_frequency_per_day);
        let lead_time = lead_time.or_else(|| default.lead_time_seconds);
        let failure_rate = failure_rate.or_else(|| default.change_failure_rate);
        let recovery = recovery.or_else(|| default.recovery_time_seconds);
        let values = [
            frequency,
            lead_time.map(rules::seconds),
            failure_rate,
            recovery.map(rules::seconds),
        ];
        for (rule, values) in THRESHOLD_RULES.into_iter().zip(values) {
            if let Some(values) = values {
                let problems = rules::threshold(rule, values);
                self.extend(problems);
            }
        }
        Some(ThresholdsConfig {
            deployment_frequency_per_day: frequency?,
            lead_time_seconds: lead_time?,
            change_failure_rate: failure_rate?,
            recovery_time_seconds: recovery?,
        })
    }

    fn github(&mut self, mut table: Table<'_, '_>) -> Option<GithubConfig> {
        let api_url = self
            .scalar(&mut table, "api_url", ApiUrl::deserialize)
            .or_else(defaults::api_url);
        let auth = self.auth(&mut table);
        let poll_interval = self
            .scalar(&mut table, "poll_interval", Duration::deserialize)
            .or_else(defaults::poll_interval);
        let lookback = self
            .scalar(&mut table, "lookback", Duration::deserialize)
            .or_else(defaults::lookback);
        if let Some(lookback) = lookback {
            self.lookbacks.push((rules::LOOKBACK, lookback));
        }
        let production_environments = self.checked_list(
            &mut table,
            "production_environments",
            Environment::deserialize,
            defaults::production_environments,
            |items, declared| rules::production_environments(rules::ENVIRONMENTS, items, declared),
        );
        let incident_labels = self.checked_list(
            &mut table,
            "incident_labels",
            LabelName::deserialize,
            defaults::incident_labels,
            |items, _| rules::labels(rules::INCIDENT_LABELS, items),
        );
        let rework_labels = self.checked_list(
            &mut table,
            "rework_labels",
            LabelName::deserialize,
            defaults::rework_labels,
            |items, _| rules::labels(rules::REWORK_LABELS, items),
        );
        let lead_time_start = self
            .scalar(&mut table, "lead_time_start", LeadTimeStart::deserialize)
            .or_else(LeadTimeStart::default);
        let rollback_is_failure = self
            .scalar(&mut table, "rollback_is_failure", bool::deserialize)
            .or_else(defaults::rollback_is_failure);
        let api = self
            .scalar(&mut table, "api", GithubApi::deserialize)
            .or_else(GithubApi::default);
        let repositories = self.repositories(&mut table);
        let organizations = self.organizations(&mut table);
        if let (Some(repositories), Some(organizations)) = (&repositories, &organizations) {
            self.extend(rules::something_to_sync(
                repositories.len(),
                organizations.len(),
            ));
        }
        self.finish(table);
        Some(GithubConfig {
            api_url: api_url?,
            auth: auth?,
            poll_interval: poll_interval?,
            lookback: lookback?,
            production_environments: production_environments?,
            incident_labels: incident_labels?,
            rework_labels: rework_labels?,
            lead_time_start: lead_time_start?,
            rollback_is_failure: rollback_is_failure?,
            api: api?,
            repositories: repositories?,
            organizations: organizations?,
        })
    }

    /// `github.token`, or `github.app_id` with `github.private_key_path` or
    /// `github.private_key`: exactly one way to authenticate.
    fn auth(&mut self, table: &mut Table<'_, '_>) -> Option<GithubAuth> {
        let token = self.scalar(table, "token", deserialize_token);
        let app_id_path = table.child("app_id");
        let app_id = self.scalar(table, "app_id", u64::deserialize);
        let key_path_path = table.child("private_key_path");
        let key_path = self.scalar(table, "private_key_path", deserialize_storage_path);
        let key_text_path = table.child("private_key");
        let key_text = self.scalar(table, "private_key", deserialize_private_key);
        let line = |walker: &Self, path: &str| walker.key_lines.get(path).copied();
        if let Field::Valid(0) = app_id {
            let at = line(self, &app_id_path);
            self.problem(app_id_path.clone(), at, "must be a positive App id");
        }
        let app_keys = app_id.is_present() || key_path.is_present() || key_text.is_present();
        if token.is_present() && app_keys {
            let (path, key) = if app_id.is_present() {
                (app_id_path, "app_id")
            } else if key_path.is_present() {
                (key_path_path, "private_key_path")
            } else {
                (key_text_path, "private_key")
            };
            let at = line(self, &path);
            self.problem(
                path,
                at,
                format!(
                    "github.token and github.{key} are both set: authenticate either with a \
                     token or as a GitHub App (app_id with its private key), not both"
                ),
            );
            return None;
        }
        if !app_keys {
            return self.require(token, table, "token").map(GithubAuth::Token);
        }
        if key_path.is_present() && key_text.is_present() {
            let at = line(self, &key_text_path);
            self.problem(
                key_text_path,
                at,
                "github.private_key_path and github.private_key are both set: give the App's \
                 key one way",
            );
            return None;
        }
        if !app_id.is_present() {
            let at = self.key_lines.get(&table.path).copied();
            self.problem(
                app_id_path,
                at,
                "missing required key (a GitHub App's private key needs its App id)",
            );
            return None;
        }
        let key = match (key_path, key_text) {
            (Field::Valid(path), _) => self.read_private_key(&path, &key_path_path),
            (_, Field::Valid(text)) => match AppPrivateKey::from_pem(text.expose_secret()) {
                Ok(key) => Some(key),
                Err(error) => {
                    let at = line(self, &key_text_path);
                    self.problem(key_text_path, at, error.to_string());
                    None
                }
            },
            (Field::Invalid, _) | (_, Field::Invalid) => None,
            (Field::Absent, Field::Absent) => {
                let at = self.key_lines.get(&table.path).copied();
                self.problem(
                    key_path_path,
                    at,
                    "missing required key (github.app_id needs the App's private key: \
                     private_key_path, or private_key)",
                );
                None
            }
        };
        match (app_id.valid(), key) {
            (Some(app_id), Some(private_key)) if app_id > 0 => {
                Some(GithubAuth::App(GithubAppConfig {
                    app_id,
                    private_key,
                }))
            }
            _ => None,
        }
    }

    /// Reads and parses the App key at `path` (the value of `key`); at most
    /// [`MAX_PRIVATE_KEY_BYTES`]. Problems name the file, never its content.
    fn read_private_key(&mut self, path: &Path, key: &str) -> Option<AppPrivateKey> {
        let at = self.key_lines.get(key).copied();
        let shown = path.display().to_string();
        let shown: String = shown.chars().take(MAX_QUOTED_INPUT).collect();
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path)
            .and_then(|file| file.take(MAX_PRIVATE_KEY_BYTES + 1).read_to_end(&mut bytes));
        if let Err(error) = read {
            self.problem(
                key.to_owned(),
                at,
                format!("cannot read {shown:?}: {error}"),
            );
            return None;
        }
        if bytes.len() as u64 > MAX_PRIVATE_KEY_BYTES {
            self.problem(
                key.to_owned(),
                at,
                format!(
                    "{shown:?} is larger than {MAX_PRIVATE_KEY_BYTES} bytes: not a private key \
                     (its content is not shown)"
                ),
            );
            return None;
        }
        let text = SecretString::from(String::from_utf8_lossy(&bytes).into_owned());
        bytes.iter_mut().for_each(|b| *b = 0);
        match AppPrivateKey::from_pem(text.expose_secret()) {
            Ok(key) => Some(key),
            Err(error) => {
                self.problem(key.to_owned(), at, format!("{shown:?} {error}"));
                None
            }
        }
    }

    fn organizations(&mut self, github: &mut Table<'_, '_>) -> Option<Vec<OrganizationConfig>> {
        let tables = self.tables(github, "organizations").or_else(Vec::new)?;
        let mut names = Vec::new();
        let mut organizations = Vec::new();
        for (i, table) in tables.into_iter().enumerate() {
            let organization = table.and_then(|table| self.organization(table));
            if let Some(organization) = &organization {
                names.push((i, organization.name.clone()));
            }
            organizations.push(organization);
        }
        let problems =
            rules::organizations(&names.iter().map(|(i, name)| (*i, name)).collect::<Vec<_>>());
        self.extend(problems);
        organizations.into_iter().collect()
    }

    fn organization(&mut self, mut table: Table<'_, '_>) -> Option<OrganizationConfig> {
        let name = self.scalar(&mut table, "name", OrgName::deserialize);
        let name = self.require(name, &table, "name");
        let include = self
            .list(&mut table, "include", NamePattern::deserialize)
            .or_else(|| vec![NamePattern::parse("*").ok()]);
        let exclude = self
            .list(&mut table, "exclude", NamePattern::deserialize)
            .or_else(Vec::new);
        let include_archived = self
            .scalar(&mut table, "include_archived", bool::deserialize)
            .or_else(|| false);
        let include_forks = self
            .scalar(&mut table, "include_forks", bool::deserialize)
            .or_else(|| false);
        let include_empty = self
            .scalar(&mut table, "include_empty", bool::deserialize)
            .or_else(|| false);
        let team_from = self
            .scalar(&mut table, "team_from", TeamFrom::deserialize)
            .or_else(TeamFrom::default);
        let deployments = match self.table(&mut table, "deployments") {
            Field::Absent => Some(DeploymentsConfig::default()),
            Field::Invalid => None,
            Field::Valid(deployments) => self.deployments(deployments),
        };
        self.finish(table);
        Some(OrganizationConfig {
            name: name?,
            include: include?.into_iter().collect::<Option<_>>()?,
            exclude: exclude?.into_iter().collect::<Option<_>>()?,
            include_archived: include_archived?,
            include_forks: include_forks?,
            include_empty: include_empty?,
            team_from: team_from?,
            deployments: deployments?,
        })
    }

    fn repositories(&mut self, github: &mut Table<'_, '_>) -> Option<Vec<RepositoryConfig>> {
        let (repositories, explicit) = self.code_host_list(
            github,
            "repositories",
            Self::repository,
            rules::repositories,
        );
        self.explicit_deployments.extend(explicit);
        repositories
    }

    /// A code host's list of entries under `key` of `parent`
    /// (`[[github.repositories]]`, `[[gitlab.projects]]`): each read by `entry`,
    /// their names checked by `check`; and the indices of the entries that set
    /// `deployments`, whatever became of the list.
    fn code_host_list<T>(
        &mut self,
        parent: &mut Table<'_, '_>,
        key: &'static str,
        entry: ReadEntry<Self, T>,
        check: CheckNames,
    ) -> (Option<Vec<T>>, Vec<usize>) {
        let mut explicit = Vec::new();
        let Some(tables) = self.tables(parent, key).or_else(Vec::new) else {
            return (None, explicit);
        };
        let declared = tables.len();
        let mut names = Vec::new();
        let mut entries = Vec::new();
        for (i, table) in tables.into_iter().enumerate() {
            let (name, parsed) = match table {
                Some(table) => {
                    if table.entries.get("deployments").is_some() {
                        explicit.push(i);
                    }
                    entry(self, table)
                }
                None => (None, None),
            };
            if let Some(name) = name {
                names.push((i, name));
            }
            entries.push(parsed);
        }
        let problems = check(
            &names.iter().map(|(i, name)| (*i, name)).collect::<Vec<_>>(),
            declared,
        );
        self.extend(problems);
        (entries.into_iter().collect(), explicit)
    }

    fn repository(
        &mut self,
        mut table: Table<'_, '_>,
    ) -> (Option<RepoName>, Option<RepositoryConfig>) {
        let name = self.scalar(&mut table, "name", deserialize_github_repo);
        let name = self.require(name, &table, "name");
        let team = self
            .scalar(&mut table, "team", Team::deserialize)
            .or_else(Team::default);
        let deployments = match self.table(&mut table, "deployments") {
            Field::Absent => Some(DeploymentsConfig::default()),
            Field::Invalid => None,
            Field::Valid(deployments) => self.deployments(deployments),
        };
        self.finish(table);
        let repository = match (&name, team, deployments) {
            (Some(name), Some(team), Some(deployments)) => Some(RepositoryConfig {
                name: name.clone(),
                team,
                deployments,
            }),
            _ => None,
        };
        (name, repository)
    }

    fn deployments(&mut self, mut table: Table<'_, '_>) -> Option<DeploymentsConfig> {
        let from = self
            .scalar(&mut table, "from", DeploymentsFrom::deserialize)
            .or_else(DeploymentsFrom::default);
        let workflow = self.scalar(&mut table, "workflow", super::WorkflowName::deserialize);
        let branch = self.scalar(&mut table, "branch", super::BranchName::deserialize);
        let environment = self.scalar(&mut table, "environment", Environment::deserialize);
        let path = table.path.clone();
        self.finish(table);
        match DeploymentsConfig::resolve(from?, workflow, branch, environment) {
            Ok(deployments) => Some(deployments),
            Err(problems) => {
                for (key, message) in problems {
                    self.problem(child_path(&path, key), None, message);
                }
                None
            }
        }
    }

    fn gitlab(&mut self, mut table: Table<'_, '_>) -> Option<GitlabConfig> {
        let api_url = self
            .scalar(&mut table, "api_url", ApiUrl::deserialize)
            .or_else(defaults::gitlab_api_url);
        let token = self.scalar(&mut table, "token", deserialize_token);
        let token = self.require(token, &table, "token");
        let poll_interval = self
            .scalar(&mut table, "poll_interval", Duration::deserialize)
            .or_else(defaults::poll_interval);
        let lookback = self
            .scalar(&mut table, "lookback", Duration::deserialize)
            .or_else(defaults::lookback);
        if let Some(lookback) = lookback {
            self.lookbacks.push((rules::GITLAB_LOOKBACK, lookback));
        }
        let production_environments = self.checked_list(
            &mut table,
            "production_environments",
            Environment::deserialize,
            defaults::production_environments,
            |items, _| rules::environments_once(rules::GITLAB_ENVIRONMENTS, items),
        );
        let incident_labels = self.checked_list(
            &mut table,
            "incident_labels",
            LabelName::deserialize,
            defaults::incident_labels,
            |items, _| rules::labels(rules::GITLAB_INCIDENT_LABELS, items),
        );
        let rework_labels = self.checked_list(
            &mut table,
            "rework_labels",
            LabelName::deserialize,
            defaults::rework_labels,
            |items, _| rules::labels(rules::GITLAB_REWORK_LABELS, items),
        );
        let projects = self.projects(&mut table);
        self.finish(table);
        Some(GitlabConfig {
            api_url: api_url?,
            token: token?,
            poll_interval: poll_interval?,
            lookback: lookback?,
            production_environments: production_environments?,
            incident_labels: incident_labels?,
            rework_labels: rework_labels?,
            projects: projects?,
        })
    }

    fn projects(&mut self, gitlab: &mut Table<'_, '_>) -> Option<Vec<ProjectConfig>> {
        let (projects, explicit) =
            self.code_host_list(gitlab, "projects", Self::project, rules::projects);
        self.explicit_gitlab_deployments.extend(explicit);
        projects
    }

    fn project(&mut self, mut table: Table<'_, '_>) -> (Option<RepoName>, Option<ProjectConfig>) {
        let path = self.scalar(&mut table, "path", deserialize_gitlab_path);
        let path = self.require(path, &table, "path");
        let team = self
            .scalar(&mut table, "team", Team::deserialize)
            .or_else(Team::default);
        let deployments = match self.table(&mut table, "deployments") {
            Field::Absent => Some(GitlabDeploymentsConfig::default()),
            Field::Invalid => None,
            Field::Valid(deployments) => self.gitlab_deployments(deployments),
        };
        self.finish(table);
        let project = match (&path, team, deployments) {
            (Some(path), Some(team), Some(deployments)) => Some(ProjectConfig {
                path: path.clone(),
                team,
                deployments,
            }),
            _ => None,
        };
        (path, project)
    }

    fn gitlab_deployments(&mut self, mut table: Table<'_, '_>) -> Option<GitlabDeploymentsConfig> {
        const ONLY_WITH_PIPELINES: &str = r#"only allowed with from = "pipelines""#;
        const REQUIRED_WITH_PIPELINES: &str = r#"required with from = "pipelines""#;
        let from = self
            .scalar(&mut table, "from", GitlabDeploymentsFrom::deserialize)
            .or_else(GitlabDeploymentsFrom::default);
        let git_ref = self.scalar(&mut table, "ref", super::BranchName::deserialize);
        let environment = self.scalar(&mut table, "environment", Environment::deserialize);
        let path = table.path.clone();
        self.finish(table);
        let presence = [
            ("ref", git_ref.is_present()),
            ("environment", environment.is_present()),
        ];
        match from? {
            GitlabDeploymentsFrom::Pipelines => match (git_ref.valid(), environment.valid()) {
                (Some(git_ref), Some(environment)) => Some(GitlabDeploymentsConfig::Pipelines {
                    git_ref,
                    environment,
                }),
                _ => {
                    for (key, present) in presence {
                        if !present {
                            self.problem(child_path(&path, key), None, REQUIRED_WITH_PIPELINES);
                        }
                    }
                    None
                }
            },
            from => {
                let extra: Vec<&str> = presence
                    .iter()
                    .filter(|(_, present)| *present)
                    .map(|(key, _)| *key)
                    .collect();
                for key in &extra {
                    self.problem(child_path(&path, key), None, ONLY_WITH_PIPELINES);
                }
                if !extra.is_empty() {
                    None
                } else if from == GitlabDeploymentsFrom::Push {
                    Some(GitlabDeploymentsConfig::Push)
                } else {
                    Some(GitlabDeploymentsConfig::DeploymentsApi)
                }
            }
        }
    }

    fn log(&mut self, mut table: Table<'_, '_>) -> Option<LogConfig> {
        let format = self
            .scalar(&mut table, "format", LogFormat::deserialize)
            .or_else(LogFormat::default);
        let level = self
            .scalar(&mut table, "level", LogLevel::deserialize)
            .or_else(LogLevel::default);
        self.finish(table);
        Some(LogConfig {
            format: format?,
            level: level?,
        })
    }
}
