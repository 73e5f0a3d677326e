//! The simulated PagerDuty account: services, incidents with their log entries
//! (triggers, acknowledgements, resolves, re-triggers) and notes, and the
//! simulator's own reading of them (an incident's status and resolution from
//! its log). Mutation methods let a test change the account while it is
//! served.
//!
//! Not here: HTTP shapes (`server`), the seeded generator (`generate`).

use crate::domain::Timestamp;

/// An incident's urgency, as PagerDuty spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PdUrgency {
    /// `high`: pages at once.
    High,
    /// `low`: no page outside support hours.
    Low,
}

impl PdUrgency {
    /// PagerDuty's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PdUrgency::High => "high",
            PdUrgency::Low => "low",
        }
    }
}

/// What a log entry records (the types the simulator writes; PagerDuty has more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdLogKind {
    /// `trigger_log_entry`: the incident was opened, or opened again.
    Trigger,
    /// `acknowledge_log_entry`: someone is on it.
    Acknowledge,
    /// `annotate_log_entry`: a note was added.
    Annotate,
    /// `resolve_log_entry`: the incident was resolved.
    Resolve,
}

impl PdLogKind {
    /// PagerDuty's `type` of the entry.
    pub const fn type_name(self) -> &'static str {
        match self {
            PdLogKind::Trigger => "trigger_log_entry",
            PdLogKind::Acknowledge => "acknowledge_log_entry",
            PdLogKind::Annotate => "annotate_log_entry",
            PdLogKind::Resolve => "resolve_log_entry",
        }
    }
}

/// One log entry of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdLogEntry {
    /// PagerDuty-style id (`R…`).
    pub id: String,
    /// What it records.
    pub kind: PdLogKind,
    /// When.
    pub at: Timestamp,
}

/// One note of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdNote {
    /// PagerDuty-style id (`N…`).
    pub id: String,
    /// The note's text.
    pub content: String,
    /// When it was added.
    pub at: Timestamp,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdIncident {
    /// PagerDuty-style id (`Q…`).
    pub id: String,
    /// The account-wide `incident_number`.
    pub number: u64,
    /// The service it belongs to (its id).
    pub service: String,
    /// Its title.
    pub title: String,
    /// Its urgency.
    pub urgency: PdUrgency,
    /// When it was created (its first trigger).
    pub created_at: Timestamp,
    /// The body's `details` text, if any (`include[]=body`).
    pub body: Option<String>,
    /// Its log, oldest first (starts with a trigger).
    pub log: Vec<PdLogEntry>,
    /// Its notes, oldest first.
    pub notes: Vec<PdNote>,
}

/// An incident's status, PagerDuty's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdStatus {
    /// `triggered`.
    Triggered,
    /// `acknowledged`.
    Acknowledged,
    /// `resolved`.
    Resolved,
}

impl PdStatus {
    /// PagerDuty's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PdStatus::Triggered => "triggered",
            PdStatus::Acknowledged => "acknowledged",
            PdStatus::Resolved => "resolved",
        }
    }
}

impl PdIncident {
    /// The status as of `now`: from the last trigger, acknowledge or resolve
    /// entry at or before it (the simulator's reading of its own log).
    pub fn status_at(&self, now: Timestamp) -> PdStatus {
        let mut status = PdStatus::Triggered;
        for entry in self.log.iter().filter(|e| e.at <= now) {
            status = match entry.kind {
                PdLogKind::Trigger => PdStatus::Triggered,
                PdLogKind::Acknowledge if status != PdStatus::Resolved => PdStatus::Acknowledged,
                PdLogKind::Resolve => PdStatus::Resolved,
                _ => status,
            };
        }
        status
    }

    /// When it was resolved, as of `now`: the last resolve entry when nothing
    /// re-triggered it since; `None` while open.
    pub fn resolved_at(&self, now: Timestamp) -> Option<Timestamp> {
        if self.status_at(now) != PdStatus::Resolved {
            return None;
        }
        self.log
            .iter()
            .filter(|e| e.at <= now && e.kind == PdLogKind::Resolve)
            .map(|e| e.at)
            .next_back()
    }

    /// When its status last changed, as of `now`.
    pub fn last_status_change_at(&self, now: Timestamp) -> Timestamp {
        self.log
            .iter()
            .filter(|e| e.at <= now && e.kind != PdLogKind::Annotate)
            .map(|e| e.at)
            .next_back()
            .unwrap_or(self.created_at)
    }
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdService {
    /// PagerDuty-style id (`P…`).
    pub id: String,
    /// Its name.
    pub name: String,
}

/// What a mutation could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdMutationError {
    /// No service has this id.
    #[error("no service {0}")]
    UnknownService(String),
    /// No incident has this id.
    #[error("no incident {0}")]
    UnknownIncident(String),
}

/// The simulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdAccount {
    /// Its services.
    pub services: Vec<PdService>,
    /// Its incidents, by `incident_number`.
    pub incidents: Vec<PdIncident>,
    /// The account's present: nothing after it is served.
    pub now: Timestamp,
    next_entry: u64,
}

impl PdAccount {
    /// An account with `services` (id, name) and no incident yet.
    pub fn new(services: Vec<PdService>, now: Timestamp) -> Self {
        PdAccount {
            services,
            incidents: Vec::new(),
            now,
            next_entry: 1,
        }
    }

    fn entry_id(&mut self, prefix: char) -> String {
        let n = self.next_entry;
        self.next_entry += 1;
        format!("{prefix}{n:07X}")
    }

    /// The incident with id `id`.
    pub fn incident(&self, id: &str) -> Option<&PdIncident> {
        self.incidents.iter().find(|i| i.id == id)
    }

    fn incident_mut(&mut self, id: &str) -> Result<&mut PdIncident, PdMutationError> {
        self.incidents
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| PdMutationError::UnknownIncident(id.to_owned()))
    }

    /// Opens an incident on `service` at `at`; returns its id.
    pub fn trigger(
        &mut self,
        service: &str,
        at: Timestamp,
        title: &str,
        urgency: PdUrgency,
        body: Option<String>,
    ) -> Result<String, PdMutationError> {
        if !self.services.iter().any(|s| s.id == service) {
            return Err(PdMutationError::UnknownService(service.to_owned()));
        }
        let number = self.incidents.iter().map(|i| i.number).max().unwrap_or(0) + 1;
        let id = format!("Q{number:06X}");
        let entry = PdLogEntry {
            id: self.entry_id('R'),
            kind: PdLogKind::Trigger,
            at,
        };
        self.incidents.push(PdIncident {
            id: id.clone(),
            number,
            service: service.to_owned(),
            title: title.to_owned(),
            urgency,
            created_at: at,
            body,
            log: vec![entry],
            notes: Vec::new(),
        });
        Ok(id)
    }

    /// Adds a log entry of `kind` at `at` (a resolve, an acknowledgement, a
    /// re-trigger after a resolve).
    pub fn log(&mut self, id: &str, kind: PdLogKind, at: Timestamp) -> Result<(), PdMutationError> {
        let entry_id = self.entry_id('R');
        let incident = self.incident_mut(id)?;
        incident.log.push(PdLogEntry {
            id: entry_id,
            kind,
            at,
        });
        incident.log.sort_by_key(|e| e.at);
        Ok(())
    }

    /// Adds a note (and its annotate log entry) at `at`.
    pub fn add_note(
        &mut self,
        id: &str,
        at: Timestamp,
        content: &str,
    ) -> Result<(), PdMutationError> {
        let note_id = self.entry_id('N');
        self.incident_mut(id)?.notes.push(PdNote {
            id: note_id,
            content: content.to_owned(),
            at,
        });
        self.log(id, PdLogKind::Annotate, at)
    }
}
