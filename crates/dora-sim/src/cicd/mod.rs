//! The simulated CI/CD systems a DORA collector reads deployments from besides
//! GitHub: Argo CD ([`argocd`]: applications with their sync history and last
//! operation) and Jenkins ([`jenkins`]: folders, multibranch projects, jobs and
//! their builds, with `tree` queries). Each is an API over state a test holds
//! and changes while it is served ([`CicdHandle`]), with its own reading of
//! what a GitHub deployment would be there ([`argocd::events_from_github`],
//! [`jenkins::builds_from_github`]), so that tests can compare a collector
//! reading them with one reading GitHub alone.
//!
//! - `serve`: the HTTP server, credentials, request counting, the handle.
//! - `tree`: Jenkins' `tree` parameter.
//! - `faults` (feature `chaos`): resets, `5xx` and `429` on purpose.
//!
//! Not here: the GitHub simulator (`server`), anything of the collector's.

pub mod argocd;
#[cfg(feature = "chaos")]
pub mod faults;
pub mod jenkins;
mod serve;
mod tree;

pub use serve::{
    ApiReply, ApiRequest, CicdApi, CicdHandle, CicdOptions, Credentials, UNMATCHED_ROUTE,
};
