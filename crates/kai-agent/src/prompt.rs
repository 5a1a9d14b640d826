//! Prompt templates: minijinja text with declared variables. A template is checked when it is
//! stored (it parses, and uses only variables it declares or kai provides), and rendering
//! names the variable it lacks: minijinja's own error says only that a value is undefined.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Variables kai provides to every template it renders for a run.
pub const PROVIDED: [&str; 5] = ["goal", "agent", "date", "now", "tools"];

/// The longest template accepted, in characters.
const MAX_TEMPLATE_CHARS: usize = 32_000;

/// Why a template cannot be stored or rendered; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PromptError(String);

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env
}

/// The variables `template` uses that neither `declared` nor kai provides.
fn undeclared(
    env: &minijinja::Environment<'_>,
    template: &str,
    declared: &[String],
) -> Result<Vec<String>, PromptError> {
    let parsed = env
        .template_from_str(template)
        .map_err(|err| PromptError(format!("the template does not parse: {err}")))?;
    let mut unknown: Vec<String> = parsed
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| {
            !declared.contains(name)
                && !PROVIDED.contains(&name.as_str())
                && env.globals().all(|(global, _)| global != name)
        })
        .collect();
    unknown.sort();
    Ok(unknown)
}

/// Checks a template before it is stored: its size, that it parses, that its declared
/// variables are names, and that it uses no variable it does not declare.
pub fn check(template: &str, declared: &[String]) -> Result<(), PromptError> {
    if template.trim().is_empty() {
        return Err(PromptError("the template is empty".into()));
    }
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(PromptError(format!(
            "a template is at most {MAX_TEMPLATE_CHARS} characters"
        )));
    }
    let mut seen = BTreeSet::new();
    for name in declared {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(PromptError(format!(
                "`{name}` is not a variable name: use letters, digits and _"
            )));
        }
        if PROVIDED.contains(&name.as_str()) {
            return Err(PromptError(format!(
                "`{name}` is provided by kai to every template; do not declare it"
            )));
        }
        if !seen.insert(name) {
            return Err(PromptError(format!("`{name}` is declared twice")));
        }
    }
    let env = environment();
    let unknown = undeclared(&env, template, declared)?;
    if !unknown.is_empty() {
        return Err(PromptError(format!(
            "the template uses {} without declaring {}: add {} to `variables`",
            names(&unknown),
            if unknown.len() == 1 { "it" } else { "them" },
            if unknown.len() == 1 { "it" } else { "them" },
        )));
    }
    Ok(())
}

/// Renders `template` with `values` (which include what kai provides). A declared variable
/// without a value is named.
pub fn render(
    template: &str,
    declared: &[String],
    values: &Map<String, Value>,
) -> Result<String, PromptError> {
    let env = environment();
    let mut missing: Vec<String> = declared
        .iter()
        .filter(|name| !values.contains_key(*name))
        .cloned()
        .collect();
    missing.extend(
        undeclared(&env, template, declared)?
            .into_iter()
            .filter(|name| !values.contains_key(name)),
    );
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(PromptError(format!(
            "the template needs a value for {}: give it in the agent's `variables`",
            names(&missing)
        )));
    }
    env.render_str(template, Value::Object(values.clone()))
        .map_err(|err| PromptError(format!("the template cannot be rendered: {err}")))
}

fn names(list: &[String]) -> String {
    list.iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn a_template_uses_only_what_it_declares_or_kai_provides() {
        check(
            "Reach {{ goal }} as {{ persona }}.",
            &declared(&["persona"]),
        )
        .unwrap();
        let err = check("Reach {{ goal }} as {{ persona }}.", &[]).unwrap_err();
        assert!(err.to_string().contains("`persona`"), "{err}");
        let err = check("{% if %}", &[]).unwrap_err();
        assert!(err.to_string().contains("does not parse"), "{err}");
        for (names, expected) in [
            (&["9lives"][..], "not a variable name"),
            (&["goal"][..], "provided by kai"),
            (&["a", "a"][..], "declared twice"),
        ] {
            let err = check("x", &declared(names)).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn rendering_names_the_missing_variable() {
        let mut values = Map::new();
        values.insert("goal".into(), "tidy up".into());
        let err = render("{{ goal }} for {{ who }}", &declared(&["who"]), &values).unwrap_err();
        assert!(err.to_string().contains("`who`"), "{err}");
        values.insert("who".into(), "ada".into());
        assert_eq!(
            render("{{ goal }} for {{ who }}", &declared(&["who"]), &values).unwrap(),
            "tidy up for ada"
        );
        let err = render("{{ goal.missing.deeper }}", &[], &values).unwrap_err();
        assert!(err.to_string().contains("cannot be rendered"), "{err}");
    }
}
