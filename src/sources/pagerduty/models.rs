//! What PagerDuty's answers mean to the collector: the incidents of a page, a
//! log's resolution, the root cause named in a body or a note. Wire JSON in,
//! plain values out, item by item: an item that cannot be read is skipped (and
//! counted by the caller), never guessed.
//!
//! The collector's reading (`docs/sources.md`): an incident is open unless its
//! status is `resolved`; its resolution is the time of its latest
//! `resolve_log_entry` when no `trigger_log_entry` came after it (a re-trigger
//! after a resolve opens it again); a `root cause: <sha>` line in the body,
//! else in the earliest note that has one, names its cause.
//!
//! Not here: HTTP (`client.rs`), what to fetch when (`mod.rs`).

use crate::domain::{ShaPrefix, Timestamp};
use crate::sources::github::rules::parse_root_cause;
use serde_json::Value;

/// The longest incident id accepted (PagerDuty's are 7 to 14 characters). Ids go
/// into request paths, so only letters and digits are accepted.
pub const MAX_ID_CHARS: usize = 64;

/// An incident as a list page gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// PagerDuty's id (letters and digits).
    pub id: String,
    /// The account-wide `incident_number`.
    pub number: u64,
    pub created_at: Timestamp,
    /// `status` is `resolved`.
    pub resolved: bool,
    /// `resolved_at`, or else `last_status_change_at`, of a resolved incident.
    pub resolved_hint: Option<Timestamp>,
}

fn time(value: &Value) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| Timestamp(t.timestamp()))
}

fn id(value: &Value) -> Option<String> {
    let id = value.as_str()?;
    (!id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| id.to_owned())
}

/// The incidents of a `GET /incidents` page (`Err` with a short reason for each
/// one that cannot be read) and its `more`; `None` when the page has no
/// `incidents` array.
pub fn incidents_page(page: &Value) -> Option<(Vec<Result<Listed, String>>, bool)> {
    let items = page.get("incidents")?.as_array()?;
    let more = page.get("more").and_then(Value::as_bool).unwrap_or(false);
    let incidents = items.iter().map(listed).collect();
    Some((incidents, more))
}

fn listed(item: &Value) -> Result<Listed, String> {
    let id = id(&item["id"]).ok_or("an incident without a readable id")?;
    let number = item["incident_number"]
        .as_u64()
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| format!("incident {id} without an incident_number"))?;
    let created_at =
        time(&item["created_at"]).ok_or_else(|| format!("incident {id} without created_at"))?;
    let resolved = match item["status"].as_str() {
        Some("resolved") => true,
        Some("triggered" | "acknowledged") => false,
        _ => return Err(format!("incident {id} with an unknown status")),
    };
    let resolved_hint = resolved
        .then(|| time(&item["resolved_at"]).or_else(|| time(&item["last_status_change_at"])))
        .flatten();
    Ok(Listed {
        id,
        number,
        created_at,
        resolved,
        resolved_hint,
    })
}

/// The status changes of a log page (`(at, true)` for a resolve, `(at, false)`
/// for a trigger; other entries are left out) and its `more`; `None` when the
/// page has no `log_entries` array.
pub fn log_page(page: &Value) -> Option<(Vec<(Timestamp, bool)>, bool)> {
    let items = page.get("log_entries")?.as_array()?;
    let more = page.get("more").and_then(Value::as_bool).unwrap_or(false);
    let changes = items
        .iter()
        .filter_map(|entry| {
            let resolve = match entry["type"].as_str()? {
                "resolve_log_entry" => true,
                "trigger_log_entry" => false,
                _ => return None,
            };
            Some((time(&entry["created_at"])?, resolve))
        })
        .collect();
    Some((changes, more))
}

/// The resolution a log shows: the latest status change when it is a resolve
/// (a resolve and a trigger in the same second: the resolve came last), else
/// `None`.
pub fn resolution(changes: &[(Timestamp, bool)]) -> Option<Timestamp> {
    changes
        .iter()
        .max_by_key(|(at, resolve)| (*at, *resolve))
        .filter(|(_, resolve)| *resolve)
        .map(|(at, _)| *at)
}

/// The `details` text of an incident's body (`GET /incidents/{id}?include[]=body`);
/// `None` without one.
pub fn body_details(answer: &Value) -> Option<String> {
    match &answer["incident"]["body"]["details"] {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        // Structured details: their string values, one after the other.
        other => {
            let mut texts = Vec::new();
            strings(other, &mut texts, 0);
            Some(texts.join("\n"))
        }
    }
}

/// How deep [`strings`] looks into structured details.
const MAX_DETAILS_DEPTH: usize = 8;

fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>, depth: usize) {
    if depth > MAX_DETAILS_DEPTH {
        return;
    }
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out, depth + 1)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out, depth + 1)),
        _ => {}
    }
}

/// The notes of `GET /incidents/{id}/notes`, oldest first: `(created_at, content)`.
pub fn notes(answer: &Value) -> Vec<(Timestamp, String)> {
    let mut notes: Vec<(Timestamp, String)> = answer["notes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|note| {
            Some((
                time(&note["created_at"])?,
                note["content"].as_str()?.to_owned(),
            ))
        })
        .collect();
    notes.sort_by_key(|(at, _)| *at);
    notes
}

/// The root cause: a `root cause: <sha>` line of the body, else of the earliest
/// note with one.
pub fn root_cause(body: Option<&str>, notes: &[(Timestamp, String)]) -> Option<ShaPrefix> {
    body.and_then(parse_root_cause)
        .or_else(|| notes.iter().find_map(|(_, text)| parse_root_cause(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_incident_is_read_from_its_list_item_or_skipped() {
        let page = json!({"incidents": [
            {"id": "Q1", "incident_number": 7, "created_at": "2025-01-01T00:00:00Z",
             "status": "resolved", "resolved_at": "2025-01-01T01:00:00Z"},
            {"id": "Q2", "incident_number": 8, "created_at": "2025-01-01T00:00:00Z",
             "status": "acknowledged"},
            {"id": "../x", "incident_number": 9, "created_at": "2025-01-01T00:00:00Z",
             "status": "triggered"},
            {"id": "Q4", "incident_number": 10, "created_at": "yesterday", "status": "triggered"},
            {"id": "Q5", "incident_number": 11, "created_at": "2025-01-01T00:00:00Z",
             "status": "snoozed"}
        ], "more": true});
        let (items, more) = incidents_page(&page).unwrap();
        assert!(more);
        let first = items[0].as_ref().unwrap();
        assert!(first.resolved);
        assert_eq!(first.resolved_hint, Some(Timestamp(1_735_693_200)));
        assert!(!items[1].as_ref().unwrap().resolved);
        assert!(items[2..].iter().all(Result::is_err));
        assert!(incidents_page(&json!({"error": {}})).is_none());
    }

    #[test]
    fn a_retrigger_after_the_resolve_reopens() {
        let t = Timestamp;
        assert_eq!(resolution(&[(t(1), false), (t(5), true)]), Some(t(5)));
        assert_eq!(
            resolution(&[(t(5), true), (t(1), false)]),
            Some(t(5)),
            "any order"
        );
        assert_eq!(
            resolution(&[(t(1), false), (t(5), true), (t(6), false)]),
            None
        );
        assert_eq!(
            resolution(&[(t(1), false), (t(5), true), (t(6), false), (t(9), true)]),
            Some(t(9))
        );
        assert_eq!(resolution(&[(t(5), false), (t(5), true)]), Some(t(5)));
        assert_eq!(resolution(&[]), None);
        let page = json!({"log_entries": [
            {"type": "annotate_log_entry", "created_at": "2025-01-01T00:00:03Z"},
            {"type": "resolve_log_entry", "created_at": "2025-01-01T00:00:02Z"},
            {"type": "trigger_log_entry", "created_at": "2025-01-01T00:00:01Z"}
        ], "more": false});
        let (changes, more) = log_page(&page).unwrap();
        assert!(!more);
        assert_eq!(resolution(&changes), Some(Timestamp(1_735_689_602)));
    }

    #[test]
    fn the_body_comes_before_the_notes_and_the_earliest_note_first() {
        let notes = notes(&json!({"notes": [
            {"content": "root cause: bbbbbbb", "created_at": "2025-01-02T00:00:00Z"},
            {"content": "Root cause: `aaaaaaa`.", "created_at": "2025-01-01T00:00:00Z"},
            {"content": "nothing", "created_at": "2025-01-01T00:00:00Z"}
        ]}));
        assert_eq!(root_cause(None, &notes).unwrap().as_str(), "aaaaaaa");
        assert_eq!(
            root_cause(Some("x\nroot cause: ccccccc\n"), &notes)
                .unwrap()
                .as_str(),
            "ccccccc"
        );
        assert_eq!(root_cause(Some("none"), &[]), None);
        let body = json!({"incident": {"body": {"details": {"why": "a\nroot cause: ddddddd"}}}});
        assert_eq!(
            root_cause(body_details(&body).as_deref(), &[])
                .unwrap()
                .as_str(),
            "ddddddd"
        );
    }
}
