//! GitHub's static limits on a validated GraphQL operation: every connection must
//! carry `first` or `last` within 1–100, the whole call may request at most
//! 500,000 nodes, and the call is charged points by GitHub's documented formula.
//!
//! From GitHub's "Rate limits and query limits for the GraphQL API"
//! (docs.github.com/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api):
//!
//! - *Node limit*: "Clients must supply a `first` or `last` argument on any
//!   connection. Values of `first` and `last` must be within 1-100. Individual
//!   calls cannot request more than 500,000 total nodes." A connection's nodes are
//!   its page size times the page sizes of every connection above it
//!   (`repositories(first: 50) { issues(first: 10) }` = 50 + 50 × 10 = 550).
//! - *Points*: "Add up the number of requests needed to fulfill each unique
//!   connection in the call. Assume every request will reach the `first` or
//!   `last` argument limits. Divide the number by 100 and round the result to the
//!   nearest whole number [...] The minimum point value of a call to the GraphQL
//!   API is 1." A connection is fetched once per node of the connection above
//!   it, so it adds the product of the page sizes *above* it, never its own: the
//!   documented example `repositories(first: 100) { issues(first: 50) {
//!   labels(first: 60) } }` needs 1 + 100 + 5,000 = 5,101 requests, 51 points.
//!
//! A connection is a field whose type is named `...Connection` and that takes a
//! `first` argument. Fields selected twice under one response key (directly or
//! through fragments) are one connection, as GraphQL merges them. `@skip` and
//! `@include` are ignored (the connection is charged as if selected), and a
//! fragment's type condition is not checked against the runtime type: the cost
//! is an upper bound computed before execution, as GitHub's is. Half points round
//! up (`Float#round`). Not modelled: GitHub's undocumented adjustments (e.g.
//! extra points after timeouts) and secondary limits.

use apollo_compiler::ast::Value;
use apollo_compiler::executable::{Field, Operation, Selection, SelectionSet};
use apollo_compiler::response::{GraphQLError, JsonMap, JsonValue};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node};

/// The largest `first` or `last` GitHub accepts on a connection.
pub const MAX_PAGE_SIZE: i64 = 100;

/// The most nodes one call may request (GitHub's node limit).
pub const MAX_NODES: u64 = 500_000;

/// Requests per point: the aggregate is divided by this and rounded.
pub const REQUESTS_PER_POINT: u64 = 100;

/// The least a call costs.
pub const MIN_POINTS: u64 = 1;

/// Deepest selection nesting walked; deeper selections are refused rather than
/// recursed into (the parser's own recursion limit is lower, so this only guards
/// against fragments nesting each other).
const MAX_DEPTH: usize = 64;

/// What one call asks of GitHub, before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryCost {
    /// Requests needed to fulfil every connection (the aggregate before division).
    pub requests: u64,
    /// Nodes the call may return at most (`rateLimit { nodeCount }`).
    pub nodes: u64,
    /// Points charged (`rateLimit { cost }`).
    pub points: u64,
}

impl QueryCost {
    fn from_totals(requests: u64, nodes: u64) -> QueryCost {
        let points =
            (requests.saturating_add(REQUESTS_PER_POINT / 2) / REQUESTS_PER_POINT).max(MIN_POINTS);
        QueryCost {
            requests,
            nodes,
            points,
        }
    }
}

/// Why an operation breaks GitHub's static limits: errors to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitErrors {
    /// The errors, in GitHub's words (with locations where GitHub gives them).
    pub errors: Vec<GraphQLError>,
    /// GitHub's `type` for the errors, when it gives one.
    pub kind: Option<&'static str>,
}

/// Checks the limits of `operation` under `variables` (already coerced) and
/// computes its cost.
pub fn analyse(
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
    variables: &JsonMap,
) -> Result<QueryCost, LimitErrors> {
    let mut walk = Walk {
        document,
        variables,
        requests: 0,
        nodes: 0,
        errors: Vec::new(),
    };
    walk.selection_set(&operation.selection_set, 1, 0);
    if !walk.errors.is_empty() {
        return Err(LimitErrors {
            errors: walk.errors,
            kind: None,
        });
    }
    if walk.nodes > MAX_NODES {
        let message = format!(
            "This query requests up to {} possible nodes which exceeds the maximum limit of {}.",
            thousands(walk.nodes),
            thousands(MAX_NODES)
        );
        return Err(LimitErrors {
            errors: vec![GraphQLError {
                message,
                locations: Vec::new(),
                path: Vec::new(),
                extensions: JsonMap::new(),
            }],
            kind: Some("MAX_NODE_LIMIT_EXCEEDED"),
        });
    }
    Ok(QueryCost::from_totals(walk.requests, walk.nodes))
}

/// `1234567` → `1,234,567`, as GitHub prints node counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Walk<'a> {
    document: &'a Valid<ExecutableDocument>,
    variables: &'a JsonMap,
    requests: u64,
    nodes: u64,
    errors: Vec<GraphQLError>,
}

impl<'a> Walk<'a> {
    /// `multiplier`: how many times this selection set is resolved (the product
    /// of the page sizes of the connections above it).
    fn selection_set(&mut self, set: &'a SelectionSet, multiplier: u64, depth: usize) {
        let mut groups: Vec<(&'a str, Vec<&'a Node<Field>>)> = Vec::new();
        self.collect(set, &mut groups, depth);
        for (_, fields) in groups {
            let Some(first) = fields.first() else {
                continue;
            };
            let inner = if is_connection(first) {
                match self.page_size(first) {
                    Some(size) => {
                        self.requests = self.requests.saturating_add(multiplier);
                        let nodes = multiplier.saturating_mul(size);
                        self.nodes = self.nodes.saturating_add(nodes);
                        nodes
                    }
                    None => continue,
                }
            } else {
                multiplier
            };
            if depth >= MAX_DEPTH {
                continue;
            }
            for field in fields {
                self.selection_set(&field.selection_set, inner, depth + 1);
            }
        }
    }

    /// The fields of `set` grouped by response key, fragments flattened.
    fn collect(
        &mut self,
        set: &'a SelectionSet,
        groups: &mut Vec<(&'a str, Vec<&'a Node<Field>>)>,
        depth: usize,
    ) {
        if depth >= MAX_DEPTH {
            return;
        }
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    let key = field.response_key().as_str();
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, fields)) => fields.push(field),
                        None => groups.push((key, vec![field])),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name) {
                        self.collect(&fragment.selection_set, groups, depth + 1);
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.collect(&inline.selection_set, groups, depth + 1);
                }
            }
        }
    }

    /// The page size of a connection field (the larger of `first` and `last`),
    /// or `None` after recording why it is invalid.
    fn page_size(&mut self, field: &Node<Field>) -> Option<u64> {
        let name = field.name.as_str();
        let first = self.int_argument(field, "first");
        let last = self.int_argument(field, "last");
        let mut size: Option<i64> = None;
        for (argument, value) in [("first", first), ("last", last)] {
            let Some(value) = value else { continue };
            if value < 0 {
                self.error(
                    field,
                    format!("`{argument}` on the `{name}` connection cannot be less than zero."),
                );
                return None;
            }
            if value > MAX_PAGE_SIZE {
                self.error(
                    field,
                    format!(
                        "Requesting {value} records on the `{name}` connection exceeds the `{argument}` limit of {MAX_PAGE_SIZE} records."
                    ),
                );
                return None;
            }
            size = Some(size.map_or(value, |s| s.max(value)));
        }
        match size {
            Some(size) => Some(u64::try_from(size).unwrap_or(0)),
            None => {
                self.error(
                    field,
                    format!(
                        "You must provide a `first` or `last` value to properly paginate the `{name}` connection."
                    ),
                );
                None
            }
        }
    }

    /// An integer argument given literally or through a variable; `None` when
    /// absent or null.
    fn int_argument(&self, field: &Field, name: &str) -> Option<i64> {
        let argument = field.arguments.iter().find(|a| a.name == name)?;
        match argument.value.as_ref() {
            Value::Int(int) => int.as_str().parse().ok(),
            Value::Variable(variable) => match self.variables.get(variable.as_str()) {
                Some(JsonValue::Number(number)) => number.as_i64(),
                _ => None,
            },
            _ => None,
        }
    }

    fn error(&mut self, field: &Node<Field>, message: String) {
        self.errors.push(GraphQLError::new(
            message,
            field.location(),
            &self.document.sources,
        ));
    }
}

/// Whether `field` is a paginated connection.
fn is_connection(field: &Field) -> bool {
    field
        .definition
        .ty
        .inner_named_type()
        .as_str()
        .ends_with("Connection")
        && field.definition.argument_by_name("first").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_half_up_with_a_minimum_of_one() {
        let points = |requests| QueryCost::from_totals(requests, 0).points;
        assert_eq!(points(0), 1);
        assert_eq!(points(49), 1);
        assert_eq!(points(149), 1);
        assert_eq!(points(150), 2);
        assert_eq!(points(5_101), 51);
        assert_eq!(points(u64::MAX), u64::MAX / 100);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(500_000), "500,000");
        assert_eq!(thousands(2_010_050), "2,010,050");
    }
}
