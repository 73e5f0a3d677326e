//! The seeded generator of a simulated PagerDuty account ([`PdSpec`] →
//! [`PdAccount`]): per service, incidents at random times after some of the
//! given deployment times (so rule 2 has something to blame) and at random
//! times of their own, with urgencies, acknowledgements, resolutions (some still
//! open at `now`), re-triggers after a resolve, and root-cause lines naming
//! given commits in the body or in a note.
//!
//! Not here: what an incident means to a DORA collector; the generator only
//! writes what PagerDuty would show.

use super::model::{PdAccount, PdLogKind, PdService, PdUrgency};
use crate::domain::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One service to generate, with what its incidents may refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct PdServiceSpec {
    /// The service id (PagerDuty's: `P` and six characters).
    pub id: String,
    /// The service name.
    pub name: String,
    /// Deploy times of what the service runs: some incidents start shortly after.
    pub deploy_times: Vec<Timestamp>,
    /// Commit shas an incident may name as its root cause.
    pub root_causes: Vec<String>,
}

/// The knobs of [`PdAccount::generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct PdSpec {
    /// Seed: the same spec always gives the same account.
    pub seed: u64,
    /// The services.
    pub services: Vec<PdServiceSpec>,
    /// The start of history: no incident is older.
    pub start: Timestamp,
    /// The account's present: no incident or entry is later.
    pub now: Timestamp,
    /// Share of deploy times followed by an incident.
    pub incident_rate: f64,
    /// Incidents per service per day, besides those after deployments.
    pub background_per_day: f64,
    /// Share of incidents with `low` urgency.
    pub low_urgency_share: f64,
    /// Share of incidents naming a root cause (half in the body, half in a note).
    pub root_cause_share: f64,
    /// Share of incidents still open at `now` (when recent enough).
    pub open_share: f64,
    /// Share of resolved incidents re-triggered after their resolve (then
    /// resolved again, or left open).
    pub retrigger_share: f64,
}

impl PdSpec {
    /// Defaults for `services` over `start..now`.
    pub fn new(seed: u64, services: Vec<PdServiceSpec>, start: Timestamp, now: Timestamp) -> Self {
        PdSpec {
            seed,
            services,
            start,
            now,
            incident_rate: 0.15,
            background_per_day: 0.05,
            low_urgency_share: 0.3,
            root_cause_share: 0.3,
            open_share: 0.1,
            retrigger_share: 0.1,
        }
    }
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

impl PdAccount {
    /// The account `spec` describes (deterministic).
    pub fn generate(spec: &PdSpec) -> PdAccount {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let services = spec
            .services
            .iter()
            .map(|s| PdService {
                id: s.id.clone(),
                name: s.name.clone(),
            })
            .collect();
        let mut account = PdAccount::new(services, spec.now);
        // Start times per service, then all incidents in time order, so that
        // incident numbers grow with creation time as in a real account.
        let mut starts: Vec<(Timestamp, usize)> = Vec::new();
        for (index, service) in spec.services.iter().enumerate() {
            for at in &service.deploy_times {
                if *at >= spec.start && rng.random_bool(spec.incident_rate.clamp(0.0, 1.0)) {
                    let start = Timestamp(at.0 + rng.random_range(5 * MINUTE..6 * HOUR));
                    starts.push((start, index));
                }
            }
            let days = ((spec.now.0 - spec.start.0) / DAY).max(0);
            for day in 0..days {
                if rng.random_bool(spec.background_per_day.clamp(0.0, 1.0)) {
                    let start = Timestamp(spec.start.0 + day * DAY + rng.random_range(0..DAY));
                    starts.push((start, index));
                }
            }
        }
        starts.retain(|(at, _)| *at < spec.now);
        starts.sort();
        for (n, (at, index)) in starts.into_iter().enumerate() {
            let service = &spec.services[index];
            let urgency = if rng.random_bool(spec.low_urgency_share.clamp(0.0, 1.0)) {
                PdUrgency::Low
            } else {
                PdUrgency::High
            };
            let cause = (!service.root_causes.is_empty()
                && rng.random_bool(spec.root_cause_share.clamp(0.0, 1.0)))
            .then(|| {
                let sha = &service.root_causes[rng.random_range(0..service.root_causes.len())];
                let len = rng.random_range(7..=sha.len().min(40));
                sha[..len].to_owned()
            });
            let in_body = rng.random_bool(0.5);
            let body = match (&cause, in_body) {
                (Some(cause), true) => format!("Error rate above 5%.\nRoot cause: {cause}\n"),
                _ => "Error rate above 5%.".to_owned(),
            };
            let title = format!("{} degraded (#{})", service.name, n + 1);
            let id = account
                .trigger(&service.id, at, &title, urgency, Some(body))
                .expect("the service exists");
            let ack = Timestamp(at.0 + rng.random_range(MINUTE..30 * MINUTE));
            if ack < spec.now {
                account
                    .log(&id, PdLogKind::Acknowledge, ack)
                    .expect("the incident exists");
            }
            if let (Some(cause), false) = (&cause, in_body) {
                let noted = Timestamp(ack.0 + rng.random_range(MINUTE..HOUR));
                if noted < spec.now {
                    account
                        .add_note(&id, noted, &format!("Found it.\nroot cause: {cause}"))
                        .expect("the incident exists");
                }
            }
            if rng.random_bool(0.3) {
                let noted = Timestamp(ack.0 + rng.random_range(MINUTE..2 * HOUR));
                if noted < spec.now {
                    account
                        .add_note(&id, noted, "Rolled back the canary; watching.")
                        .expect("the incident exists");
                }
            }
            if rng.random_bool(spec.open_share.clamp(0.0, 1.0)) {
                continue;
            }
            let resolved = Timestamp(ack.0 + rng.random_range(10 * MINUTE..12 * HOUR));
            if resolved >= spec.now {
                continue;
            }
            account
                .log(&id, PdLogKind::Resolve, resolved)
                .expect("the incident exists");
            if rng.random_bool(spec.retrigger_share.clamp(0.0, 1.0)) {
                let again = Timestamp(resolved.0 + rng.random_range(MINUTE..3 * HOUR));
                if again < spec.now {
                    account
                        .log(&id, PdLogKind::Trigger, again)
                        .expect("the incident exists");
                    let resolved = Timestamp(again.0 + rng.random_range(10 * MINUTE..6 * HOUR));
                    if resolved < spec.now && rng.random_bool(0.7) {
                        account
                            .log(&id, PdLogKind::Resolve, resolved)
                            .expect("the incident exists");
                    }
                }
            }
        }
        account
    }
}
