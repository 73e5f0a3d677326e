//! The simulated GitHub: schema conformance, HTTP and pagination, octocrab
//! against it, the organisation generator, GraphQL, fault injection; the
//! simulated PagerDuty (`pagerduty`); the simulated Argo CD and Jenkins against
//! their API descriptions (`argocd`, `jenkins`).
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

mod argocd;
mod chaos;
mod gitlab_schema;
mod graphql;
mod http;
mod jenkins;
mod octocrab;
mod openapi;
mod org;
mod pagerduty;
mod schema;
