//! Label selectors in kubectl's syntax (`app=web,tier!=cache`, `env in
//! (prod,staging)`, `!canary`), for `-l` on snapshot files: a live read
//! hands the text to the API server instead.

use kube::core::{Expression, Selector, SelectorExt};

use crate::LoadError;
use crate::input::tree::Doc;

/// A parsed `-l` selector.
pub struct Labels(Selector);

impl Labels {
    /// Whether an object with these `metadata.labels` (or none) is selected.
    pub fn matches(&self, labels: Option<Doc<'_>>) -> bool {
        let labels = labels
            .into_iter()
            .flat_map(|l| l.entries())
            .filter_map(|(k, v)| Some((k.to_string(), v.as_str()?.to_string())))
            .collect();
        self.0.matches(&labels)
    }
}

/// Parses a comma-separated list of requirements: `key`, `!key`,
/// `key=value` (or `==`), `key!=value`, `key in (a,b)`, `key notin (a,b)`.
pub fn parse(text: &str) -> Result<Labels, LoadError> {
    let mut expressions = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ','))) {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                let requirement = text[start..i].trim();
                if !requirement.is_empty() || !text.trim().is_empty() {
                    expressions.push(requirement_of(requirement, text)?);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    Ok(Labels(expressions.into_iter().collect()))
}

fn requirement_of(requirement: &str, text: &str) -> Result<Expression, LoadError> {
    let bad = || LoadError::Invalid {
        path: "--selector".into(),
        message: format!(
            "`{requirement}` in `{text}` is not a label requirement: key, !key, key=value, key!=value, key in (a,b) or key notin (a,b)"
        ),
    };
    let key = |k: &str| {
        let k = k.trim();
        (!k.is_empty() && !k.contains(char::is_whitespace) && !k.contains(['=', '!', '(', ')']))
            .then(|| k.to_string())
            .ok_or_else(bad)
    };
    let value = |v: &str| {
        let v = v.trim();
        (!v.contains(char::is_whitespace) && !v.contains(['=', '!', '(', ')', ',']))
            .then(|| v.to_string())
            .ok_or_else(bad)
    };
    if let Some(k) = requirement.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(key(k)?));
    }
    if let Some((k, v)) = requirement.split_once("!=") {
        return Ok(Expression::NotEqual(key(k)?, value(v)?));
    }
    if let Some((k, v)) = requirement.split_once("==").or_else(|| requirement.split_once('=')) {
        return Ok(Expression::Equal(key(k)?, value(v)?));
    }
    let Some((k, rest)) = requirement.split_once(char::is_whitespace) else {
        return Ok(Expression::Exists(key(requirement)?));
    };
    let rest = rest.trim_start();
    let (op, set) = match (rest.strip_prefix("notin"), rest.strip_prefix("in")) {
        (Some(set), _) => ("notin", set),
        (None, Some(set)) => ("in", set),
        (None, None) => return Err(bad()),
    };
    let set = set.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(bad)?;
    let values = set.split(',').map(value).collect::<Result<_, _>>()?;
    Ok(match op {
        "in" => Expression::In(key(k)?, values),
        _ => Expression::NotIn(key(k)?, values),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::tree::Arena;

    fn selects(selector: &str, labels: serde_json::Value) -> bool {
        let mut arena = Arena::default();
        let node = arena.add_value(&labels, &crate::input::fields::Fields::All);
        parse(selector).unwrap().matches(Some(arena.get(node)))
    }

    #[test]
    fn kubectl_requirements_select_as_the_api_server_does() {
        let labels = serde_json::json!({"app": "web", "tier": "front", "env": "prod"});
        for (selector, expected) in [
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app=web,tier!=front", false),
            ("tier!=cache", true),
            ("missing!=x", true),
            ("env in (prod, staging)", true),
            ("env notin (prod,staging)", false),
            ("app,!canary", true),
            ("!app", false),
            ("canary", false),
        ] {
            assert_eq!(selects(selector, labels.clone()), expected, "{selector}");
        }
    }

    #[test]
    fn a_malformed_requirement_is_named() {
        for bad in ["app=web,", "a b", "env in prod", "env in (a b)", "=x", "app=web=x"] {
            let Err(e) = parse(bad) else { panic!("{bad} parses") };
            assert!(e.to_string().starts_with("--selector: `"), "{e}");
        }
    }
}
