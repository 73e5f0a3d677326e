//! Jenkins' `tree` query parameter: which properties of an object to export,
//! with sub-properties in brackets and ranges on arrays
//! (`builds[number,result]{0,10},lastBuild[number]`), parsed and applied to a
//! JSON value, as the REST API's help page (`<object>/api/`) describes it.
//!
//! Applying a tree keeps, of every object, `_class` and the properties named
//! (those it has; a name it lacks is left out, not an error); an array property
//! keeps the elements its range selects and applies the sub-tree to each.
//! Not here: `depth`, `xpath`, `wrapper` and the XML and Python flavours.

use serde_json::{Map, Value};

/// The longest `tree` accepted: real queries are a few hundred characters.
pub(crate) const MAX_TREE_LEN: usize = 4_096;

/// The deepest nesting of brackets accepted.
const MAX_TREE_DEPTH: usize = 16;

/// One property of a tree: its name, its sub-tree (empty: the whole value) and,
/// for arrays, the range of elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) children: Vec<Node>,
    pub(crate) range: Option<Range>,
}

/// `{M,N}`: elements M (inclusive) to N (exclusive); either end may be open;
/// `{N}` is element N alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) start: Option<usize>,
    pub(crate) end: Option<usize>,
}

impl Range {
    /// The elements of `items` the range selects.
    fn select<'a>(&self, items: &'a [Value]) -> &'a [Value] {
        let start = self.start.unwrap_or(0).min(items.len());
        let end = self.end.unwrap_or(items.len()).min(items.len()).max(start);
        &items[start..end]
    }
}

/// Parses a `tree` value; the error says what is wrong, for a `400`.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, String> {
    if text.len() > MAX_TREE_LEN {
        return Err(format!("tree longer than {MAX_TREE_LEN} characters"));
    }
    let mut parser = Parser {
        bytes: text.as_bytes(),
        at: 0,
    };
    let nodes = parser.items(0)?;
    if parser.at != parser.bytes.len() {
        return Err(format!("unexpected character at {} in tree", parser.at));
    }
    Ok(nodes)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn items(&mut self, depth: usize) -> Result<Vec<Node>, String> {
        if depth > MAX_TREE_DEPTH {
            return Err("tree nested too deeply".to_owned());
        }
        let mut nodes = vec![self.item(depth)?];
        while self.peek() == Some(b',') {
            self.at += 1;
            nodes.push(self.item(depth)?);
        }
        Ok(nodes)
    }

    fn item(&mut self, depth: usize) -> Result<Node, String> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        {
            self.at += 1;
        }
        if self.at == start {
            return Err(format!("expected a property name at {start} in tree"));
        }
        let name = String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
        let mut children = Vec::new();
        if self.peek() == Some(b'[') {
            self.at += 1;
            children = self.items(depth + 1)?;
            if self.peek() != Some(b']') {
                return Err(format!("expected ']' at {} in tree", self.at));
            }
            self.at += 1;
        }
        let range = if self.peek() == Some(b'{') {
            self.at += 1;
            Some(self.range()?)
        } else {
            None
        };
        Ok(Node {
            name,
            children,
            range,
        })
    }

    fn number(&mut self) -> Result<Option<usize>, String> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at == start {
            return Ok(None);
        }
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()
            .and_then(|digits| digits.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("range bound too large at {start} in tree"))
    }

    fn range(&mut self) -> Result<Range, String> {
        let start = self.number()?;
        let range = if self.peek() == Some(b',') {
            self.at += 1;
            Range {
                start,
                end: self.number()?,
            }
        } else {
            let index = start.ok_or_else(|| format!("empty range at {} in tree", self.at))?;
            Range {
                start: Some(index),
                end: Some(index.saturating_add(1)),
            }
        };
        if self.peek() != Some(b'}') {
            return Err(format!("expected '}}' at {} in tree", self.at));
        }
        self.at += 1;
        Ok(range)
    }
}

/// `value` with only what `nodes` names (and `_class`) kept.
pub(crate) fn apply(value: &Value, nodes: &[Node]) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            if let Some(class) = map.get("_class") {
                out.insert("_class".to_owned(), class.clone());
            }
            for node in nodes {
                if let Some(child) = map.get(&node.name) {
                    out.insert(node.name.clone(), apply_node(child, node));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|item| apply(item, nodes)).collect()),
        other => other.clone(),
    }
}

fn apply_node(value: &Value, node: &Node) -> Value {
    match value {
        Value::Array(items) => {
            let items = match node.range {
                Some(range) => range.select(items),
                None => items.as_slice(),
            };
            Value::Array(
                items
                    .iter()
                    .map(|item| subtree(item, &node.children))
                    .collect(),
            )
        }
        other => subtree(other, &node.children),
    }
}

fn subtree(value: &Value, children: &[Node]) -> Value {
    if children.is_empty() {
        value.clone()
    } else {
        apply(value, children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trees_parse_with_sub_properties_and_ranges() {
        let nodes = parse("builds[number,actions[lastBuiltRevision[SHA1]]]{0,10},name").unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].name, "builds");
        assert_eq!(
            nodes[0].range,
            Some(Range {
                start: Some(0),
                end: Some(10)
            })
        );
        assert_eq!(nodes[0].children[1].children[0].children[0].name, "SHA1");
        assert_eq!(
            parse("a{3}").unwrap()[0].range,
            Some(Range {
                start: Some(3),
                end: Some(4)
            })
        );
        assert_eq!(
            parse("a{,5}").unwrap()[0].range,
            Some(Range {
                start: None,
                end: Some(5)
            })
        );
        assert_eq!(
            parse("a{5,}").unwrap()[0].range,
            Some(Range {
                start: Some(5),
                end: None
            })
        );
        for bad in ["", "a[", "a[]", "a{", "a{}", "a,", "a b", "a]", "a{1,2"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&"a[".repeat(40)).is_err());
    }

    #[test]
    fn a_tree_keeps_the_named_properties_and_the_class() {
        let job = json!({
            "_class": "Job", "name": "api", "color": "blue",
            "builds": [
                {"_class": "Run", "number": 3, "result": null, "actions": [{}, {"_class": "BuildData", "lastBuiltRevision": {"SHA1": "abc", "branch": []}}]},
                {"_class": "Run", "number": 2, "result": "SUCCESS", "actions": []},
                {"_class": "Run", "number": 1, "result": "FAILURE", "actions": []},
            ],
        });
        let tree =
            parse("builds[number,result,actions[lastBuiltRevision[SHA1]]]{1,},nope").unwrap();
        assert_eq!(
            apply(&job, &tree),
            json!({
                "_class": "Job",
                "builds": [
                    {"_class": "Run", "number": 2, "result": "SUCCESS", "actions": []},
                    {"_class": "Run", "number": 1, "result": "FAILURE", "actions": []},
                ],
            })
        );
        let tree = parse("builds[actions[lastBuiltRevision[SHA1]]]{0}").unwrap();
        assert_eq!(
            apply(&job, &tree)["builds"][0]["actions"],
            json!([{}, {"_class": "BuildData", "lastBuiltRevision": {"SHA1": "abc"}}])
        );
        assert_eq!(
            apply(&job, &parse("builds{7,9}").unwrap())["builds"],
            json!([])
        );
    }
}
