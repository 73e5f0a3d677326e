//! The simulated GitHub's GraphQL endpoint: validation against GitHub's real
//! schema (accepting the collector's query shapes, rejecting what GitHub
//! rejects, in GitHub's error shape), answers equal to the REST endpoints' data
//! for the same organisation, aliases, pagination, the point cost by GitHub's
//! documented formula, authentication, and the separate GraphQL budget.

use apollo_compiler::schema::ExtendedType;
use dora_collector::domain::Timestamp;
use dora_collector::sim::server::graphql::{self, query_cost, GRAPHQL_ROUTE};
use dora_collector::sim::{
    NewDeployment, NewOutcome, Org, OrgSpec, SimHandle, SimOptions, SimServer, PRODUCTION,
};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

struct Sim {
    handle: SimHandle,
    client: reqwest::Client,
}

struct Got {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Got {
    fn number(&self, name: &str) -> u64 {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("header {name}"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The data of a response that must have no errors.
    fn data(&self) -> &Value {
        assert_eq!(self.status, 200);
        assert!(self.body.get("errors").is_none(), "errors: {}", self.body);
        &self.body["data"]
    }

    fn messages(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors in {}", self.body))
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Sim {
    async fn start(org: Org) -> Sim {
        Self::with(org, SimOptions::default()).await
    }

    async fn with(org: Org, options: SimOptions) -> Sim {
        Sim {
            handle: SimServer::start(org, options).await.unwrap(),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Got {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Got {
            status,
            headers,
            body,
        }
    }

    async fn graphql(&self, query: &str, variables: Value) -> Got {
        let url = format!("{}/graphql", self.handle.base_url());
        let request = self
            .client
            .post(url)
            .header("authorization", format!("bearer {}", self.handle.token()))
            .json(&json!({"query": query, "variables": variables}));
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Got {
        let url = format!("{}{path}", self.handle.base_url());
        self.send(self.client.get(url).bearer_auth(self.handle.token()))
            .await
    }

    /// Every item of a REST list, page by page.
    async fn rest_all(&self, path: &str) -> Vec<Value> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        for page in 1.. {
            let got = self
                .get(&format!("{path}{separator}per_page=100&page={page}"))
                .await;
            assert_eq!(got.status, 200, "{path}: {}", got.body);
            let items = got.body.as_array().unwrap().clone();
            if items.is_empty() {
                break;
            }
            out.extend(items);
        }
        out
    }

    /// Every node of a connection, following `endCursor`. `query` has `$after`
    /// and its connection is at `path` in `data`.
    async fn graphql_all(&self, query: &str, variables: Value, path: &[&str]) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = Value::Null;
        for _ in 0..10_000 {
            let mut vars = variables.clone();
            vars["after"] = after.clone();
            let got = self.graphql(query, vars).await;
            let mut connection = got.data();
            for key in path {
                connection = &connection[*key];
            }
            out.extend(connection["nodes"].as_array().unwrap().iter().cloned());
            let page = &connection["pageInfo"];
            if !page["hasNextPage"].as_bool().unwrap() {
                return out;
            }
            after = page["endCursor"].clone();
        }
        panic!("runaway pagination");
    }

    fn owner(&self) -> String {
        self.handle.with_org(|org| org.owner.clone())
    }

    fn repo_name(&self, index: usize) -> String {
        self.handle.with_org(|org| org.repos[index].name.clone())
    }
}

fn small() -> Org {
    Org::generate(&OrgSpec::small(5))
}

fn upper(text: &str) -> String {
    text.to_ascii_uppercase()
}

/// The values of an enum in GitHub's schema.
fn enum_values(name: &str) -> BTreeSet<String> {
    let schema = graphql::schema().unwrap();
    match schema.types.get(name) {
        Some(ExtendedType::Enum(e)) => e.values.keys().map(|k| k.to_string()).collect(),
        _ => panic!("{name} is not an enum"),
    }
}

fn is_datetime(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 20 && s.ends_with('Z') && Timestamp::parse_rfc3339(s).is_ok())
}

fn is_oid(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 40
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

const DEPLOYMENTS: &str = r#"
query($owner: String!, $name: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    deployments(first: 100, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id databaseId createdAt environment state commitOid task
        commit { oid }
        latestStatus { state createdAt }
        statuses(first: 100) { nodes { id state createdAt } pageInfo { hasNextPage } }
      }
    }
  }
}"#;

const HISTORY: &str = r#"
query($owner: String!, $name: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    defaultBranchRef {
      name
      target {
        __typename
        ... on Commit {
          oid
          history(first: 100, after: $after) {
            totalCount
            pageInfo { hasNextPage endCursor }
            nodes {
              oid committedDate authoredDate message messageHeadline
              parents(first: 2) { nodes { oid } }
            }
          }
        }
      }
    }
  }
}"#;

const ISSUES: &str = r#"
query($owner: String!, $name: String!, $after: String, $labels: [String!]) {
  repository(owner: $owner, name: $name) {
    issues(first: 100, after: $after, labels: $labels, states: [OPEN, CLOSED],
           orderBy: {field: CREATED_AT, direction: ASC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id number createdAt closedAt updatedAt state body
        labels(first: 20) { nodes { name } }
      }
    }
  }
}"#;

const PULLS: &str = r#"
query($owner: String!, $name: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(first: 50, after: $after, states: [MERGED]) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id number mergedAt state
        mergeCommit { oid }
        labels(first: 10) { nodes { name } }
        commits(first: 100) { totalCount nodes { commit { oid authoredDate } } }
      }
    }
  }
}"#;

#[tokio::test]
async fn the_collectors_query_shapes_validate_and_run() {
    let sim = Sim::start(small()).await;
    let vars = json!({"owner": sim.owner(), "name": sim.repo_name(0)});
    for query in [DEPLOYMENTS, HISTORY, ISSUES, PULLS] {
        let got = sim.graphql(query, vars.clone()).await;
        got.data();
    }
    let extra = [
        r#"query { viewer { login } rateLimit { cost remaining resetAt limit used nodeCount } }"#,
        r#"query($owner: String!, $name: String!, $sha: GitObjectID!) {
             repository(owner: $owner, name: $name) {
               object(oid: $sha) { ... on Commit { oid committedDate } }
               head: object(expression: "main") { __typename ... on Commit { oid } }
               ref(qualifiedName: "refs/heads/main") {
                 prefix name
                 target { ... on Commit { history(first: 5, since: "2024-01-01T00:00:00Z") {
                   totalCount nodes { oid } } } }
               }
             }
           }"#,
        r#"query($owner: String!, $name: String!) {
             repository(owner: $owner, name: $name) {
               issues(first: 10, filterBy: {since: "2024-01-01T00:00:00Z", states: [CLOSED]},
                      orderBy: {field: UPDATED_AT, direction: DESC}) {
                 edges { cursor node { number updatedAt stateReason } }
               }
               pullRequests(last: 3, orderBy: {field: CREATED_AT, direction: ASC}) {
                 nodes { number state merged headRefName baseRefName author { login } }
               }
               deployments(first: 3, environments: ["production"]) {
                 nodes { environment creator { login } ref { name } }
               }
             }
           }"#,
    ];
    let sha = sim
        .handle
        .with_org(|org| org.repos[0].main_head_sha().to_string());
    for query in extra {
        let mut vars = vars.clone();
        vars["sha"] = json!(sha);
        let got = sim.graphql(query, vars).await;
        got.data();
    }
}

#[tokio::test]
async fn invalid_queries_are_refused_in_githubs_error_shape_and_cost_nothing() {
    let sim = Sim::start(small()).await;
    let repo = format!(
        r#"repository(owner: "{}", name: "{}")"#,
        sim.owner(),
        sim.repo_name(0)
    );
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{{ {repo} {{ stargazers_nope }} }}"),
            "type `Repository` does not have a field `stargazers_nope`",
        ),
        (
            format!("{{ {repo} {{ issues {{ totalCount }} }} }}"),
            "You must provide a `first` or `last` value to properly paginate the `issues` connection.",
        ),
        (
            format!("{{ {repo} {{ deployments(first: 101) {{ totalCount }} }} }}"),
            "Requesting 101 records on the `deployments` connection exceeds the `first` limit of 100 records.",
        ),
        (
            format!("{{ {repo} {{ deployments(last: 500) {{ totalCount }} }} }}"),
            "Requesting 500 records on the `deployments` connection exceeds the `last` limit of 100 records.",
        ),
        (
            format!("{{ {repo} {{ issues(first: \"ten\") {{ totalCount }} }} }}"),
            "expected value of type Int, found a string",
        ),
        (
            format!("{{ {repo} {{ issues(first: 1, states: [SHUT]) {{ totalCount }} }} }}"),
            "value `SHUT` does not exist on `IssueState`",
        ),
        (
            format!("{{ {repo} {{ issues(first: 1, colour: 2) {{ totalCount }} }} }}"),
            "the argument `colour` is not supported by `Repository.issues`",
        ),
        (
            r#"{ repository(owner: "x") { name } }"#.to_owned(),
            "the required argument `Query.repository(name:)` is not provided",
        ),
        (
            format!("{{ {repo} {{ name "),
            "syntax error: expected R_CURLY, got EOF",
        ),
    ];
    let before = sim.handle.graphql_rate_limit().used;
    for (query, expected) in &cases {
        let got = sim.graphql(query, Value::Null).await;
        assert_eq!(got.status, 200, "{query}");
        assert!(got.body.get("data").is_none(), "{query}: {}", got.body);
        let errors = got.body["errors"].as_array().unwrap();
        assert!(
            got.messages().iter().any(|m| m == expected),
            "{query}: {:?}",
            got.messages()
        );
        for error in errors {
            let location = &error["locations"][0];
            assert!(location["line"].as_u64().unwrap() >= 1, "{error}");
            assert!(location["column"].as_u64().unwrap() >= 1, "{error}");
        }
        assert_eq!(got.header("x-ratelimit-resource"), Some("graphql"));
    }
    // A variable of the wrong type is refused before execution too.
    let got = sim
        .graphql(
            &format!("query($n: Int!) {{ {repo} {{ issues(first: $n) {{ totalCount }} }} }}"),
            json!({"n": "ten"}),
        )
        .await;
    assert!(got.body.get("data").is_none(), "{}", got.body);
    assert_eq!(got.messages().len(), 1);
    // So is a page size over the limit given through a variable.
    let got = sim
        .graphql(
            &format!("query($n: Int!) {{ {repo} {{ issues(first: $n) {{ totalCount }} }} }}"),
            json!({"n": 250}),
        )
        .await;
    assert_eq!(
        got.messages(),
        vec!["Requesting 250 records on the `issues` connection exceeds the `first` limit of 100 records."]
    );
    // Not JSON at all, and JSON without a query.
    let url = format!("{}/graphql", sim.handle.base_url());
    let got = sim
        .send(
            sim.client
                .post(&url)
                .bearer_auth(sim.handle.token())
                .body("{nope"),
        )
        .await;
    assert_eq!(got.status, 400);
    assert_eq!(got.body["message"], "Problems parsing JSON");
    let got = sim
        .send(
            sim.client
                .post(&url)
                .bearer_auth(sim.handle.token())
                .json(&json!({"variables": {}})),
        )
        .await;
    assert_eq!(
        got.messages(),
        vec!["A query attribute must be specified and must be a string."]
    );
    assert_eq!(sim.handle.graphql_rate_limit().used, before);
    assert_eq!(sim.handle.graphql_points_used(), 0);
}

#[tokio::test]
async fn more_than_500000_nodes_are_refused() {
    let sim = Sim::start(small()).await;
    let query = format!(
        r#"{{ repository(owner: "{}", name: "{}") {{
             pullRequests(first: 100) {{ nodes {{ commits(first: 100) {{ nodes {{
               commit {{ history(first: 100) {{ totalCount }} }} }} }} }} }} }} }}"#,
        sim.owner(),
        sim.repo_name(0)
    );
    let got = sim.graphql(&query, Value::Null).await;
    // 100 + 100·100 + 100·100·100 = 1,010,100 nodes.
    assert_eq!(
        got.body,
        json!({"errors": [{
            "message": "This query requests up to 1,010,100 possible nodes which exceeds the maximum limit of 500,000.",
            "type": "MAX_NODE_LIMIT_EXCEEDED",
        }]})
    );
    assert_eq!(sim.handle.graphql_points_used(), 0);
}

#[tokio::test]
async fn deployments_and_statuses_equal_the_rest_endpoints() {
    let sim = Sim::start(small()).await;
    let deployment_states = enum_values("DeploymentState");
    let status_states = enum_values("DeploymentStatusState");
    let repos = sim.handle.with_org(|org| {
        (0..org.repos.len())
            .filter(|r| org.repos[*r].workflow().is_none())
            .collect::<Vec<_>>()
    });
    assert!(repos.len() >= 2);
    for r in repos {
        let path = format!("/repos/{}/{}", sim.owner(), sim.repo_name(r));
        let rest = sim.rest_all(&format!("{path}/deployments")).await;
        let vars = json!({"owner": sim.owner(), "name": sim.repo_name(r)});
        let nodes = sim
            .graphql_all(DEPLOYMENTS, vars, &["repository", "deployments"])
            .await;
        assert!(!rest.is_empty());
        assert_eq!(nodes.len(), rest.len());
        // Newest first in both; compare one by one.
        for (node, rest) in nodes.iter().zip(&rest) {
            assert_eq!(node["databaseId"], rest["id"]);
            assert_eq!(node["id"], rest["node_id"]);
            assert_eq!(node["commitOid"], rest["sha"]);
            assert_eq!(node["commit"]["oid"], rest["sha"]);
            assert_eq!(node["environment"], rest["environment"]);
            assert_eq!(node["createdAt"], rest["created_at"]);
            assert_eq!(node["task"], rest["task"]);
            assert!(is_datetime(&node["createdAt"]) && is_oid(&node["commitOid"]));
            assert!(deployment_states.contains(node["state"].as_str().unwrap()));
            let id = rest["id"].as_u64().unwrap();
            let mut statuses = sim
                .rest_all(&format!("{path}/deployments/{id}/statuses"))
                .await;
            statuses.reverse(); // REST lists newest first; the connection oldest first.
            let gql = node["statuses"]["nodes"].as_array().unwrap();
            assert_eq!(gql.len(), statuses.len());
            for (g, s) in gql.iter().zip(&statuses) {
                assert_eq!(g["state"], json!(upper(s["state"].as_str().unwrap())));
                assert!(status_states.contains(g["state"].as_str().unwrap()));
                assert_eq!(g["createdAt"], s["created_at"]);
                assert_eq!(g["id"], s["node_id"]);
            }
            match statuses.last() {
                Some(latest) => {
                    assert_eq!(
                        node["latestStatus"]["state"],
                        json!(upper(latest["state"].as_str().unwrap()))
                    );
                    let expected = match latest["state"].as_str().unwrap() {
                        "success" => "ACTIVE".to_owned(),
                        other => upper(other),
                    };
                    assert_eq!(node["state"], json!(expected));
                }
                None => assert_eq!(node["latestStatus"], Value::Null),
            }
        }
    }
}

#[tokio::test]
async fn history_with_parents_equals_the_rest_commit_list() {
    let sim = Sim::start(small()).await;
    for r in 0..2 {
        let path = format!("/repos/{}/{}/commits", sim.owner(), sim.repo_name(r));
        let rest = sim.rest_all(&path).await;
        let vars = json!({"owner": sim.owner(), "name": sim.repo_name(r)});
        let first = sim.graphql(HISTORY, vars.clone()).await;
        let target = &first.data()["repository"]["defaultBranchRef"]["target"];
        assert_eq!(target["__typename"], "Commit");
        assert_eq!(target["oid"], rest[0]["sha"]);
        assert_eq!(
            target["history"]["totalCount"].as_u64().unwrap() as usize,
            rest.len()
        );
        let nodes = sim
            .graphql_all(
                HISTORY,
                vars,
                &["repository", "defaultBranchRef", "target", "history"],
            )
            .await;
        assert_eq!(nodes.len(), rest.len());
        assert!(rest.len() > 100, "more than one page");
        for (node, rest) in nodes.iter().zip(&rest) {
            assert_eq!(node["oid"], rest["sha"]);
            assert_eq!(node["message"], rest["commit"]["message"]);
            assert_eq!(
                node["messageHeadline"].as_str().unwrap(),
                rest["commit"]["message"]
                    .as_str()
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap_or_default()
            );
            assert_eq!(node["authoredDate"], rest["commit"]["author"]["date"]);
            assert_eq!(node["committedDate"], rest["commit"]["committer"]["date"]);
            let parents: Vec<&Value> = node["parents"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["oid"])
                .collect();
            let rest_parents: Vec<&Value> = rest["parents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["sha"])
                .collect();
            assert_eq!(parents, rest_parents);
        }
    }
}

#[tokio::test]
async fn issues_equal_the_rest_issue_list_without_pull_requests() {
    let sim = Sim::start(small()).await;
    for r in 0..4 {
        let path = format!(
            "/repos/{}/{}/issues?state=all&direction=asc",
            sim.owner(),
            sim.repo_name(r)
        );
        let rest: Vec<Value> = sim
            .rest_all(&path)
            .await
            .into_iter()
            .filter(|i| i.get("pull_request").is_none())
            .collect();
        let vars = json!({"owner": sim.owner(), "name": sim.repo_name(r)});
        let nodes = sim
            .graphql_all(ISSUES, vars.clone(), &["repository", "issues"])
            .await;
        assert_eq!(nodes.len(), rest.len());
        for (node, rest) in nodes.iter().zip(&rest) {
            assert_eq!(node["number"], rest["number"]);
            assert_eq!(node["id"], rest["node_id"]);
            assert_eq!(node["createdAt"], rest["created_at"]);
            assert_eq!(node["updatedAt"], rest["updated_at"]);
            assert_eq!(node["closedAt"], rest["closed_at"]);
            assert_eq!(node["state"], json!(upper(rest["state"].as_str().unwrap())));
            assert_eq!(node["body"], json!(rest["body"].as_str().unwrap_or("")));
            let labels: Vec<&Value> = node["labels"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["name"])
                .collect();
            let rest_labels: Vec<&Value> = rest["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["name"])
                .collect();
            assert_eq!(labels, rest_labels);
        }
        // The label filter keeps exactly the incidents.
        let mut vars = vars;
        vars["labels"] = json!(["incident"]);
        let incidents = sim
            .graphql_all(ISSUES, vars, &["repository", "issues"])
            .await;
        let expected: Vec<&Value> = rest
            .iter()
            .filter(|i| {
                i["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["name"] == "incident")
            })
            .map(|i| &i["number"])
            .collect();
        let got: Vec<&Value> = incidents.iter().map(|i| &i["number"]).collect();
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn merged_pull_requests_equal_the_rest_pull_list_and_commits() {
    let sim = Sim::start(small()).await;
    let mut seen = 0;
    for r in 0..4 {
        let base = format!("/repos/{}/{}", sim.owner(), sim.repo_name(r));
        let mut rest: Vec<Value> = sim
            .rest_all(&format!("{base}/pulls?state=all"))
            .await
            .into_iter()
            .filter(|p| !p["merged_at"].is_null())
            .collect();
        rest.sort_by_key(|p| p["number"].as_u64());
        let vars = json!({"owner": sim.owner(), "name": sim.repo_name(r)});
        let nodes = sim
            .graphql_all(PULLS, vars, &["repository", "pullRequests"])
            .await;
        assert_eq!(nodes.len(), rest.len());
        for (node, rest) in nodes.iter().zip(&rest) {
            seen += 1;
            assert_eq!(node["number"], rest["number"]);
            assert_eq!(node["id"], rest["node_id"]);
            assert_eq!(node["state"], "MERGED");
            assert_eq!(node["mergedAt"], rest["merged_at"]);
            assert_eq!(node["mergeCommit"]["oid"], rest["merge_commit_sha"]);
            let labels: BTreeSet<&str> = node["labels"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["name"].as_str().unwrap())
                .collect();
            let rest_labels: BTreeSet<&str> = rest["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["name"].as_str().unwrap())
                .collect();
            assert_eq!(labels, rest_labels);
            let number = rest["number"].as_u64().unwrap();
            let commits = sim
                .rest_all(&format!("{base}/pulls/{number}/commits"))
                .await;
            let gql = node["commits"]["nodes"].as_array().unwrap();
            assert_eq!(node["commits"]["totalCount"], json!(commits.len()));
            assert_eq!(gql.len(), commits.len());
            for (g, c) in gql.iter().zip(&commits) {
                assert_eq!(g["commit"]["oid"], c["sha"]);
                assert_eq!(g["commit"]["authoredDate"], c["commit"]["author"]["date"]);
            }
        }
    }
    assert!(seen > 10, "only {seen} merged pull requests compared");
}

/// `Commit.associatedPullRequests` lists what REST's `/commits/{sha}/pulls`
/// lists (never a pull request closed without merging), and
/// `Repository.pullRequest(number:)` is the pull request REST lists; both in the aliased
/// shapes the collector asks for (issue 21), including stacked pull requests
/// (a commit in two merged ones).
#[tokio::test]
async fn pull_requests_of_commits_and_by_number_equal_the_rest_endpoints() {
    let spec = OrgSpec {
        stacked_pull_share: 0.3,
        merge_commit_share: 0.5,
        ..OrgSpec::small(3)
    };
    let sim = Sim::start(Org::generate(&spec)).await;
    let (shas, numbers): (Vec<String>, Vec<u64>) = sim.handle.with_org(|org| {
        let repo = &org.repos[0];
        let shas = repo
            .pulls
            .iter()
            .flat_map(|p| p.commits.clone().chain(p.merge_commit))
            .map(|c| repo.commits[c as usize].sha.to_string())
            // As many as the collector asks in one query (one point, rounded).
            .take(149)
            .collect();
        (shas, repo.pulls.iter().map(|p| p.number).take(74).collect())
    });
    let base = format!("/repos/{}/{}", sim.owner(), sim.repo_name(0));
    let aliases: String = shas
        .iter()
        .enumerate()
        .map(|(n, sha)| {
            format!(
                "c{n}: object(oid: \"{sha}\") {{ ... on Commit {{ associatedPullRequests(first: 10) {{ nodes {{ number mergedAt }} }} }} }}\n"
            )
        })
        .collect();
    let query = format!(
        "query($owner: String!, $name: String!) {{ rateLimit {{ cost }} repository(owner: $owner, name: $name) {{ {aliases} }} }}"
    );
    let vars = json!({"owner": sim.owner(), "name": sim.repo_name(0)});
    let got = sim.graphql(&query, vars.clone()).await;
    assert_eq!(got.data()["rateLimit"]["cost"], json!(1));
    let mut in_two = 0;
    for (n, sha) in shas.iter().enumerate() {
        let rest = sim.rest_all(&format!("{base}/commits/{sha}/pulls")).await;
        let mut rest: Vec<(u64, Value)> = rest
            .iter()
            .map(|p| (p["number"].as_u64().unwrap(), p["merged_at"].clone()))
            .collect();
        rest.sort_by_key(|(number, _)| *number);
        assert!(rest.iter().all(|(_, merged)| !merged.is_null()), "{rest:?}");
        let mut gql: Vec<(u64, Value)> = got.data()["repository"][format!("c{n}")]
            ["associatedPullRequests"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["number"].as_u64().unwrap(), p["mergedAt"].clone()))
            .collect();
        gql.sort_by_key(|(number, _)| *number);
        assert_eq!(gql, rest, "{sha}");
        in_two += usize::from(gql.len() > 1);
    }
    assert!(in_two > 0, "no commit in two merged pull requests");
    let aliases: String = numbers
        .iter()
        .enumerate()
        .map(|(n, number)| {
            format!(
                "p{n}: pullRequest(number: {number}) {{ number mergedAt mergeCommit {{ oid }} labels(first: 20) {{ nodes {{ name }} }} commits(first: 100) {{ totalCount nodes {{ commit {{ oid authoredDate }} }} }} }}\n"
            )
        })
        .collect();
    let query = format!(
        "query($owner: String!, $name: String!) {{ rateLimit {{ cost }} repository(owner: $owner, name: $name) {{ {aliases} missing: pullRequest(number: 999999) {{ number }} }} }}"
    );
    let got = sim.graphql(&query, vars).await;
    let data = got.data();
    assert_eq!(data["rateLimit"]["cost"], json!(1));
    assert_eq!(data["repository"]["missing"], Value::Null);
    let listed = sim.rest_all(&format!("{base}/pulls?state=all")).await;
    for (n, number) in numbers.iter().enumerate() {
        let node = &data["repository"][format!("p{n}")];
        let rest = listed
            .iter()
            .find(|p| p["number"].as_u64() == Some(*number))
            .unwrap();
        assert_eq!(node["number"], rest["number"]);
        assert_eq!(node["mergedAt"], rest["merged_at"]);
        assert_eq!(node["mergeCommit"]["oid"], rest["merge_commit_sha"]);
        let commits = sim
            .rest_all(&format!("{base}/pulls/{number}/commits"))
            .await;
        assert_eq!(node["commits"]["totalCount"], json!(commits.len()));
        for (g, c) in node["commits"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&commits)
        {
            assert_eq!(g["commit"]["oid"], c["sha"]);
        }
    }
}

#[tokio::test]
async fn aliases_read_several_repositories_in_one_request() {
    let sim = Sim::start(small()).await;
    let owner = sim.owner();
    let names: Vec<String> = (0..3).map(|r| sim.repo_name(r)).collect();
    let query = format!(
        r#"query {{
             {}
             rateLimit {{ cost }}
           }}
           fragment recent on Repository {{
             nameWithOwner
             deployments(first: 5, orderBy: {{field: CREATED_AT, direction: DESC}}) {{
               totalCount nodes {{ databaseId }}
             }}
           }}"#,
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!(
                r#"r{i}: repository(owner: "{owner}", name: "{n}") {{ ...recent }}"#
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    sim.handle.reset_counts();
    let got = sim.graphql(&query, Value::Null).await;
    let data = got.data();
    for (i, name) in names.iter().enumerate() {
        let repo = &data[format!("r{i}")];
        assert_eq!(repo["nameWithOwner"], json!(format!("{owner}/{name}")));
        let expected: Vec<u64> = sim.handle.with_org(|org| {
            let mut ids: Vec<u64> = org.repos[i].deployments.iter().map(|d| d.id).collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids.truncate(5);
            ids
        });
        let got: Vec<u64> = repo["deployments"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["databaseId"].as_u64().unwrap())
            .collect();
        assert_eq!(got, expected, "{name}");
    }
    // Three connections each fetched once: 3 requests, 1 point.
    assert_eq!(data["rateLimit"]["cost"], 1);
    let counts = sim.handle.request_counts();
    assert_eq!(counts.route(GRAPHQL_ROUTE), 1);
    assert_eq!(counts.route_status(GRAPHQL_ROUTE, 200), 1);
    assert_eq!(counts.total, 1);
    assert_eq!(sim.handle.graphql_points_used(), 1);
}

#[tokio::test]
async fn pagination_walks_everything_once_forwards_and_backwards() {
    let sim = Sim::start(small()).await;
    let owner = sim.owner();
    let name = sim.repo_name(0);
    let (all_issues, all_deployments) = sim.handle.with_org(|org| {
        let r = &org.repos[0];
        (
            r.issues.iter().map(|i| i.number).collect::<Vec<_>>(),
            r.deployments.len(),
        )
    });
    assert!(all_issues.len() > 7);
    let forward = r#"query($owner: String!, $name: String!, $after: String) {
        repository(owner: $owner, name: $name) {
          issues(first: 7, after: $after) {
            totalCount pageInfo { hasNextPage endCursor } nodes { number } } } }"#;
    let vars = json!({"owner": owner, "name": name});
    let walked = sim
        .graphql_all(forward, vars.clone(), &["repository", "issues"])
        .await;
    let numbers: Vec<u64> = walked
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, all_issues, "creation order, each once");

    // Backwards with last/before gives the same items.
    let backward = r#"query($owner: String!, $name: String!, $before: String) {
        repository(owner: $owner, name: $name) {
          issues(last: 5, before: $before) {
            pageInfo { hasPreviousPage startCursor } nodes { number } } } }"#;
    let mut before = Value::Null;
    let mut back: Vec<u64> = Vec::new();
    loop {
        let mut v = vars.clone();
        v["before"] = before;
        let got = sim.graphql(backward, v).await;
        let connection = &got.data()["repository"]["issues"];
        let mut page: Vec<u64> = connection["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["number"].as_u64().unwrap())
            .collect();
        page.extend(back);
        back = page;
        if !connection["pageInfo"]["hasPreviousPage"].as_bool().unwrap() {
            break;
        }
        before = connection["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(back, all_issues);

    // Newest-first deployments stay exact while new ones arrive mid-walk: the
    // cursor names a position by its sort key, not an offset.
    let query = r#"query($owner: String!, $name: String!, $after: String) {
        repository(owner: $owner, name: $name) {
          deployments(first: 10, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
            pageInfo { hasNextPage endCursor } nodes { databaseId } } } }"#;
    let mut after = Value::Null;
    let mut ids: Vec<u64> = Vec::new();
    let now = sim.handle.with_org(|org| org.now);
    for page in 0.. {
        let mut v = vars.clone();
        v["after"] = after;
        let got = sim.graphql(query, v).await;
        let connection = &got.data()["repository"]["deployments"];
        ids.extend(
            connection["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["databaseId"].as_u64().unwrap()),
        );
        if page == 0 {
            sim.handle.with_org_mut(|org| {
                org.add_deployment(
                    0,
                    NewDeployment {
                        environment: PRODUCTION.to_owned(),
                        sha: None,
                        created_at: Timestamp(now.0 + 60),
                        outcome: NewOutcome::Success { after: 30 },
                    },
                )
                .unwrap();
            });
        }
        if !connection["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(ids.len(), all_deployments, "the new one is before the walk");
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");

    // A cursor that is not one of ours is a typed error.
    let mut v = vars.clone();
    v["after"] = json!("bm90IGEgY3Vyc29y");
    let got = sim.graphql(query, v).await;
    assert_eq!(got.body["errors"][0]["type"], "INVALID_CURSOR_ARGUMENTS");
    assert_eq!(got.body["data"]["repository"], Value::Null);
}

/// Point costs computed by hand from GitHub's documented formula: each
/// connection needs as many requests as the product of the page sizes above
/// it; the sum is divided by 100 and rounded, at least 1.
#[tokio::test]
async fn costs_follow_githubs_documented_formula() {
    // GitHub's own example from the documentation: 1 + 100 + 5,000 = 5,101
    // requests, 51 points; nodes 100 + 5,000 + 300,000.
    let example = r#"query {
        viewer { login repositories(first: 100) { edges { node { id
          issues(first: 50) { edges { node { id
            labels(first: 60) { edges { node { id name } } } } } } } } } } }"#;
    let cost = query_cost(example, &Value::Null).unwrap();
    assert_eq!((cost.requests, cost.points), (5_101, 51));
    assert_eq!(cost.nodes, 100 + 100 * 50 + 100 * 50 * 60);
    // The documentation's node-limit examples: 550 and 22,060 nodes.
    let simple = r#"query { viewer { repositories(first: 50) { edges { repository: node { name
        issues(first: 10) { totalCount edges { node { title bodyHTML } } } } } } } }"#;
    assert_eq!(query_cost(simple, &Value::Null).unwrap().nodes, 550);
    let complex = r#"query { viewer {
        repositories(first: 50) { edges { repository: node { name
          pullRequests(first: 20) { edges { pullRequest: node { title
            comments(first: 10) { edges { comment: node { bodyHTML } } } } } }
          issues(first: 20) { totalCount edges { issue: node { title bodyHTML
            comments(first: 10) { edges { comment: node { bodyHTML } } } } } } } } }
        followers(first: 10) { edges { follower: node { login } } } } }"#;
    assert_eq!(query_cost(complex, &Value::Null).unwrap().nodes, 22_060);

    let sim = Sim::start(small()).await;
    let owner = sim.owner();
    let repo = |i: usize| {
        format!(
            r#"repository(owner: "{owner}", name: "{}")"#,
            sim.repo_name(i)
        )
    };
    let cases: Vec<(String, u64, u64)> = vec![
        // No connection at all: the minimum, 1 point, 0 nodes.
        ("{ viewer { login } }".to_owned(), 1, 0),
        // Three repositories, each deployments(100) with statuses(10):
        // 3 × (1 + 100) = 303 requests → 3 points; 3 × (100 + 1,000) nodes.
        (
            format!(
                "{{ a: {} {{ ...d }} b: {} {{ ...d }} c: {} {{ ...d }} }}
                 fragment d on Repository {{ deployments(first: 100) {{ nodes {{
                   statuses(first: 10) {{ nodes {{ state }} }} }} }} }}",
                repo(0),
                repo(1),
                repo(2)
            ),
            3,
            3_300,
        ),
        // History of 100 with parents(2): 1 + 100 = 101 → 1 point; 100 + 200.
        (
            format!(
                "{{ {} {{ defaultBranchRef {{ target {{ ... on Commit {{
                   history(first: 100) {{ nodes {{ parents(first: 2) {{ nodes {{ oid }} }} }} }}
                 }} }} }} }} }}",
                repo(0)
            ),
            1,
            300,
        ),
        // issues(100){labels(10)} + pullRequests(50){labels(10) commits(100)}:
        // 1 + 100 + 1 + 50 + 50 = 202 → 2 points; 100 + 1,000 + 50 + 500 + 5,000.
        (
            format!(
                "{{ {} {{ issues(first: 100) {{ nodes {{ labels(first: 10) {{ nodes {{ name }} }} }} }}
                   pullRequests(first: 50) {{ nodes {{ labels(first: 10) {{ nodes {{ name }} }}
                     commits(first: 100) {{ nodes {{ commit {{ oid }} }} }} }} }} }} }}",
                repo(0)
            ),
            2,
            6_650,
        ),
        // Rounding: 1 + 49 + 1 + 99 = 150 → 1.5 → 2 points ...
        (
            format!(
                "{{ {} {{ deployments(first: 49) {{ nodes {{ statuses(first: 1) {{ totalCount }} }} }}
                   issues(first: 99) {{ nodes {{ labels(first: 1) {{ totalCount }} }} }} }} }}",
                repo(0)
            ),
            2,
            49 + 49 + 99 + 99,
        ),
        // ... and 1 + 49 + 1 + 98 = 149 → 1 point.
        (
            format!(
                "{{ {} {{ deployments(first: 49) {{ nodes {{ statuses(first: 1) {{ totalCount }} }} }}
                   issues(first: 98) {{ nodes {{ labels(first: 1) {{ totalCount }} }} }} }} }}",
                repo(0)
            ),
            1,
            49 + 49 + 98 + 98,
        ),
        // The same connection selected twice under one key is one connection;
        // under two aliases it is two: 1 + 1 + 100 + 100 = 202 → 2 points.
        (
            format!(
                "{{ {} {{ a: pullRequests(first: 100) {{ nodes {{ commits(first: 100) {{ totalCount }} }} }}
                   a: pullRequests(first: 100) {{ nodes {{ number }} }}
                   b: pullRequests(first: 100) {{ nodes {{ commits(first: 100) {{ totalCount }} }} }} }} }}",
                repo(0)
            ),
            2,
            2 * (100 + 10_000),
        ),
    ];
    for (query, points, nodes) in &cases {
        let cost = query_cost(query, &Value::Null).unwrap();
        assert_eq!((cost.points, cost.nodes), (*points, *nodes), "{query}");
        // The server charges the same and reports it in rateLimit and headers.
        let with_rate = query.replacen(
            '{',
            "{ rateLimit { cost nodeCount remaining used limit resetAt } ",
            1,
        );
        let before = sim.handle.graphql_rate_limit();
        let got = sim.graphql(&with_rate, Value::Null).await;
        let rate = &got.data()["rateLimit"];
        assert_eq!(rate["cost"], json!(points), "{query}");
        assert_eq!(rate["nodeCount"], json!(nodes), "{query}");
        assert_eq!(rate["used"], json!(before.used + points));
        assert_eq!(rate["remaining"], json!(before.remaining - points));
        assert_eq!(rate["limit"], 5000);
        assert!(is_datetime(&rate["resetAt"]));
        assert_eq!(got.number("x-ratelimit-used"), before.used + points);
        assert_eq!(
            got.number("x-ratelimit-remaining"),
            before.remaining - points
        );
        assert_eq!(got.number("x-ratelimit-limit"), 5000);
        assert_eq!(got.header("x-ratelimit-resource"), Some("graphql"));
        assert_eq!(
            Timestamp(got.number("x-ratelimit-reset") as i64).to_rfc3339(),
            rate["resetAt"].as_str().unwrap()
        );
    }
    let total: u64 = cases.iter().map(|(_, p, _)| p).sum();
    assert_eq!(sim.handle.graphql_points_used(), total);
    assert_eq!(
        sim.handle.request_counts().route(GRAPHQL_ROUTE),
        cases.len() as u64
    );
}

#[tokio::test]
async fn requests_without_the_token_get_401() {
    let sim = Sim::start(small()).await;
    let url = format!("{}/graphql", sim.handle.base_url());
    let body = json!({"query": "{ viewer { login } }"});
    let missing = sim.send(sim.client.post(&url).json(&body)).await;
    let wrong = sim
        .send(
            sim.client
                .post(&url)
                .bearer_auth("not-the-token")
                .json(&body),
        )
        .await;
    for got in [&missing, &wrong] {
        assert_eq!(got.status, 401);
        assert_eq!(
            got.body,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/graphql", "status": "401"})
        );
        assert!(got.header("x-ratelimit-remaining").is_none());
    }
    assert_eq!(sim.handle.graphql_rate_limit().used, 0);
    let counts = sim.handle.request_counts();
    assert_eq!(counts.route_status(GRAPHQL_ROUTE, 401), 2);
    let records = sim.handle.requests();
    assert_eq!(records[0].method, "POST");
    assert_eq!(records[0].target, "/graphql");
    // The token with either scheme works.
    let ok = sim
        .send(
            sim.client
                .post(&url)
                .header("authorization", format!("token {}", sim.handle.token()))
                .json(&body),
        )
        .await;
    assert_eq!(ok.data()["viewer"]["login"], graphql::VIEWER_LOGIN);
}

#[tokio::test]
async fn the_graphql_budget_is_separate_decrements_and_runs_out_like_githubs() {
    let options = SimOptions {
        graphql_rate_limit: 12,
        ..SimOptions::default()
    };
    let sim = Sim::with(small(), options).await;
    let query = "{ viewer { login } rateLimit { cost remaining used } }";
    let first = sim.graphql(query, Value::Null).await;
    assert_eq!(
        first.data()["rateLimit"],
        json!({"cost": 1, "remaining": 11, "used": 1})
    );
    assert_eq!(first.number("x-ratelimit-limit"), 12);
    assert_eq!(first.number("x-ratelimit-remaining"), 11);
    // REST requests spend the other budget.
    let rest = sim
        .get(&format!("/repos/{}/{}", sim.owner(), sim.repo_name(0)))
        .await;
    assert_eq!(rest.header("x-ratelimit-resource"), Some("core"));
    assert_eq!(rest.number("x-ratelimit-used"), 1);
    assert_eq!(sim.handle.graphql_rate_limit().used, 1);
    assert_eq!(sim.handle.rate_limit().used, 1);
    // `GET /rate_limit` reports the GraphQL budget too.
    let doc = sim.get("/rate_limit").await;
    assert_eq!(
        doc.body["resources"]["graphql"]["used"], 1,
        "{}",
        doc.body["resources"]["graphql"]
    );
    assert_eq!(doc.body["resources"]["graphql"]["limit"], 12);

    // A call costing more than what remains is refused and not charged.
    let expensive = format!(
        r#"{{ repository(owner: "{}", name: "{}") {{
             pullRequests(first: 100) {{ nodes {{ commits(first: 100) {{ nodes {{
               commit {{ parents(first: 1) {{ totalCount }} }} }} }} }} }} }} }}"#,
        sim.owner(),
        sim.repo_name(0)
    );
    assert_eq!(query_cost(&expensive, &Value::Null).unwrap().points, 101);
    let refused = sim.graphql(&expensive, Value::Null).await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.body["errors"][0]["type"], "RATE_LIMITED");
    assert!(refused.body.get("data").is_none());
    assert_eq!(sim.handle.graphql_rate_limit().used, 1);

    // Spend it to the end; then every call is refused, with 200 and RATE_LIMITED.
    sim.handle.set_graphql_rate_limit_remaining(1);
    let last = sim.graphql(query, Value::Null).await;
    assert_eq!(last.data()["rateLimit"]["remaining"], 0);
    assert_eq!(last.number("x-ratelimit-remaining"), 0);
    let after = sim.graphql(query, Value::Null).await;
    assert_eq!(after.status, 200);
    assert_eq!(
        after.body,
        json!({"errors": [{
            "type": "RATE_LIMITED",
            "code": "graphql_rate_limit",
            "message": "API rate limit exceeded for user ID 1.",
        }]})
    );
    assert_eq!(after.number("x-ratelimit-remaining"), 0);
    assert_eq!(after.header("x-ratelimit-resource"), Some("graphql"));
    let state = sim.handle.graphql_rate_limit();
    assert_eq!((state.remaining, state.violations), (0, 2));
    assert!(state.reset > 0);
    // REST is unaffected.
    assert_eq!(sim.get("/rate_limit").await.body["rate"]["remaining"], 4999);
    // A new window restores it.
    sim.handle.reset_graphql_rate_limit();
    sim.graphql(query, Value::Null).await.data();
    assert_eq!(sim.handle.graphql_rate_limit().remaining, 11);
}

#[tokio::test]
async fn unsupported_fields_and_missing_repositories_say_so() {
    let sim = Sim::start(small()).await;
    let owner = sim.owner();
    let name = sim.repo_name(0);
    let got = sim
        .graphql(
            &format!(
                r#"{{ repository(owner: "{owner}", name: "{name}") {{ name stargazerCount }} }}"#
            ),
            Value::Null,
        )
        .await;
    assert_eq!(
        got.messages(),
        vec!["Field 'stargazerCount' on type 'Repository' is not supported by the simulator"]
    );
    assert_eq!(
        got.body["errors"][0]["path"],
        json!(["repository", "stargazerCount"])
    );
    // The field is non-null, so its parent becomes null (GraphQL's rule).
    assert_eq!(got.body["data"]["repository"], Value::Null);

    let got = sim
        .graphql(
            &format!(
                r#"{{ repository(owner: "{owner}", name: "{name}") {{
                 commits: object(expression: "main") {{ ... on Commit {{
                   history(first: 1, path: "src") {{ totalCount }} }} }} }} }}"#
            ),
            Value::Null,
        )
        .await;
    assert_eq!(
        got.messages(),
        vec!["Argument 'path' on field 'Commit.history' is not supported by the simulator"]
    );

    let got = sim
        .graphql(
            &format!(
                r#"{{ a: repository(owner: "{owner}", name: "nope") {{ name }}
                          b: repository(owner: "{owner}", name: "{name}") {{ name }} }}"#
            ),
            Value::Null,
        )
        .await;
    assert_eq!(
        got.body["errors"],
        json!([{
            "message": format!("Could not resolve to a Repository with the name '{owner}/nope'."),
            // apollo-compiler points at the field name (graphql-ruby at the alias).
            "locations": [{"line": 1, "column": 6}],
            "path": ["a"],
            "type": "NOT_FOUND",
        }])
    );
    assert_eq!(got.body["data"], json!({"a": null, "b": {"name": name}}));

    let got = sim
        .graphql(
            "mutation { addStar(input: {starrableId: \"x\"}) { clientMutationId } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        got.messages(),
        vec!["Operation type 'mutation' is not supported by the simulator"]
    );
}

#[tokio::test]
async fn fragments_variables_typename_and_formats() {
    let sim = Sim::start(small()).await;
    let query = r#"
      query Recent($owner: String!, $name: String!, $n: Int = 3) {
        repo: repository(owner: $owner, name: $name) {
          __typename
          id
          ...Deploys
          pr: pullRequests(first: $n, states: MERGED) {
            nodes { __typename mergeCommit { ...CommitFields } }
          }
        }
      }
      fragment Deploys on Repository {
        deployments(last: $n) {
          edges { cursor node { __typename state latestStatus { state } commit { ...CommitFields } } }
        }
      }
      fragment CommitFields on Commit { oid abbreviatedOid committedDate author { date } }
    "#;
    let got = sim
        .graphql(
            query,
            json!({"owner": sim.owner(), "name": sim.repo_name(0)}),
        )
        .await;
    let repo = &got.data()["repo"];
    assert_eq!(repo["__typename"], "Repository");
    let edges = repo["deployments"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 3);
    let states = enum_values("DeploymentState");
    for edge in edges {
        assert!(edge["cursor"].as_str().is_some_and(|c| !c.is_empty()));
        let node = &edge["node"];
        assert_eq!(node["__typename"], "Deployment");
        assert!(states.contains(node["state"].as_str().unwrap()));
        let commit = &node["commit"];
        assert!(is_oid(&commit["oid"]));
        assert_eq!(
            commit["abbreviatedOid"].as_str().unwrap(),
            &commit["oid"].as_str().unwrap()[..7]
        );
        assert!(is_datetime(&commit["committedDate"]));
        assert!(is_datetime(&commit["author"]["date"]));
    }
    let pulls = repo["pr"]["nodes"].as_array().unwrap();
    assert_eq!(pulls.len(), 3);
    for pull in pulls {
        assert_eq!(pull["__typename"], "PullRequest");
        assert!(is_oid(&pull["mergeCommit"]["oid"]));
    }
    // Named operations are chosen by operationName.
    let url = format!("{}/graphql", sim.handle.base_url());
    let two = "query A { viewer { login } } query B { rateLimit { limit } }";
    let got = sim
        .send(
            sim.client
                .post(&url)
                .bearer_auth(sim.handle.token())
                .json(&json!({"query": two, "operationName": "B"})),
        )
        .await;
    assert_eq!(got.data(), &json!({"rateLimit": {"limit": 5000}}));
}

#[tokio::test]
async fn every_state_the_organisation_produces_is_in_githubs_enums() {
    let org = Org::generate(&OrgSpec::default());
    let sim = Sim::start(org).await;
    let query = r#"query($owner: String!, $name: String!, $after: String) {
        repository(owner: $owner, name: $name) {
          deployments(first: 100, after: $after) { pageInfo { hasNextPage endCursor }
            nodes { state statuses(first: 20) { nodes { state } } } }
        }
      }"#;
    let deployment_states = enum_values("DeploymentState");
    let status_states = enum_values("DeploymentStatusState");
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let repos = sim.handle.with_org(|org| org.repos.len());
    for r in 0..repos {
        let vars = json!({"owner": sim.owner(), "name": sim.repo_name(r)});
        for d in sim
            .graphql_all(query, vars, &["repository", "deployments"])
            .await
        {
            let state = d["state"].as_str().unwrap().to_owned();
            assert!(deployment_states.contains(&state), "{state}");
            *seen.entry(state).or_default() += 1;
            for s in d["statuses"]["nodes"].as_array().unwrap() {
                assert!(status_states.contains(s["state"].as_str().unwrap()));
            }
        }
    }
    for state in ["ACTIVE", "FAILURE", "ERROR", "INACTIVE"] {
        assert!(seen.contains_key(state), "{state} never seen: {seen:?}");
    }
}

#[tokio::test]
async fn odd_input_gets_bounded_clear_answers() {
    let sim = Sim::start(small()).await;
    let url = format!("{}/graphql", sim.handle.base_url());
    // An oversized body is refused unread.
    let huge = format!(
        r#"{{"query": "{{ viewer {{ login }} }}", "pad": "{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let got = sim
        .send(
            sim.client
                .post(&url)
                .bearer_auth(sim.handle.token())
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    assert_eq!(got.status, 413);
    // Nesting past the parser's limit is an error, not a crash.
    let deep = format!(
        "{{ viewer {} login {} }}",
        "{ login ".repeat(200),
        "}".repeat(200)
    );
    let got = sim.graphql(&deep, Value::Null).await;
    assert_eq!(got.status, 200);
    assert!(!got.messages().is_empty());
    // Variables sent as a JSON string (some clients do) are read as JSON.
    let got = sim
        .send(
            sim.client
                .post(&url)
                .bearer_auth(sim.handle.token())
                .json(&json!({
                    "query": "query($o: String!, $n: String!) { repository(owner: $o, name: $n) { name } }",
                    "variables": json!({"o": sim.owner(), "n": sim.repo_name(1)}).to_string(),
                })),
        )
        .await;
    assert_eq!(got.data()["repository"]["name"], json!(sim.repo_name(1)));
    // A missing required variable is a request error.
    let got = sim
        .graphql(
            "query($o: String!) { repository(owner: $o, name: \"x\") { name } }",
            json!({}),
        )
        .await;
    assert!(got.body.get("data").is_none(), "{}", got.body);
    assert_eq!(got.messages().len(), 1);
    // GET is not GraphQL: the REST router answers 404.
    let got = sim.get("/graphql").await;
    assert_eq!(got.status, 404);
    assert_eq!(sim.handle.graphql_points_used(), 1);
}
