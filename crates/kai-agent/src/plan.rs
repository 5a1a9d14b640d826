//! Plans: the steps a goal is broken into, the JSON Schema the planner answers in, and reading
//! a model's answer, which small models wrap in prose or code fences.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A plan: steps done in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<PlannedStep>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedStep {
    /// A few words.
    pub title: String,
    /// What to do, for the executor's model.
    #[serde(default)]
    pub instructions: String,
}

/// The schema the planner's answer must match, for models with structured output.
#[must_use]
pub fn schema(max_steps: u32) -> Value {
    json!({
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string"},
                        "instructions": {"type": "string"}
                    },
                    "required": ["title", "instructions"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["steps"],
        "additionalProperties": false
    })
}

/// The first JSON object in `text` that parses, skipping prose and code fences around it.
#[must_use]
pub fn first_json_object(text: &str) -> Option<Value> {
    let mut from = 0;
    while let Some(offset) = text[from..].find('{') {
        let start = from + offset;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(value @ Value::Object(_))) = stream.next() {
            return Some(value);
        }
        from = start + 1;
    }
    None
}

/// Reads a plan from the planner's answer: at least one step, at most `max_steps`, each with a
/// title. The error says what was wrong, for the re-prompt.
pub fn parse(text: &str, max_steps: u32) -> Result<Plan, String> {
    let value =
        first_json_object(text).ok_or_else(|| "the answer holds no JSON object".to_owned())?;
    let mut plan: Plan = serde_json::from_value(value).map_err(|err| {
        format!("the JSON is not a plan ({{\"steps\": [{{\"title\", \"instructions\"}}]}}): {err}")
    })?;
    plan.steps.retain(|step| !step.title.trim().is_empty());
    if plan.steps.is_empty() {
        return Err("the plan has no steps".into());
    }
    let max = usize::try_from(max_steps).unwrap_or(usize::MAX);
    if plan.steps.len() > max {
        return Err(format!(
            "the plan has {} steps; it may have at most {max_steps}",
            plan.steps.len()
        ));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_found_in_chatty_answers() {
        let answer = "Sure! Here is the plan:\n```json\n{\"steps\": [{\"title\": \"Read\", \
                      \"instructions\": \"read a.txt\"}, {\"title\": \"Sum up\", \
                      \"instructions\": \"\"}]}\n```";
        let plan = parse(answer, 5).unwrap();
        assert_eq!(plan.steps.len(), 2);
        assert_eq!(plan.steps[0].instructions, "read a.txt");
    }

    #[test]
    fn bad_plans_say_why() {
        for (answer, expected) in [
            ("I cannot help.", "no JSON object"),
            ("{\"steps\": []}", "no steps"),
            ("{\"tasks\": []}", "not a plan"),
            (
                "{\"steps\": [{\"title\": \"a\"}, {\"title\": \"b\"}, {\"title\": \"c\"}]}",
                "at most 2",
            ),
            ("{ broken {\"steps\": \"x\"}", "not a plan"),
        ] {
            let err = parse(answer, 2).unwrap_err();
            assert!(err.contains(expected), "{answer}: {err}");
        }
    }
}
