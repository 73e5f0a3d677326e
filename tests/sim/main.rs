//! The simulated GitHub: schema conformance, HTTP and pagination, octocrab
//! against it, the organisation generator, GraphQL, fault injection; the
//! simulated PagerDuty (`pagerduty`).
//!
//! One test binary (each module was a binary of its own): the library is
//! linked once for all of them.

mod chaos;
mod gitlab_schema;
mod graphql;
mod http;
mod octocrab;
mod openapi;
mod org;
mod pagerduty;
mod schema;
