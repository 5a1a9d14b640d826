//! Chat templates: the Jinja program a model ships (`tokenizer.chat_template`) that turns a
//! conversation into its prompt, run by minijinja the way Hugging Face's `transformers` runs
//! it (`trim_blocks`, `lstrip_blocks`, loop controls, Python string methods,
//! `raise_exception`, `strftime_now`).

use kai_models::chat::{Message, Role, ToolDefinition};
use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;
use serde_json::Value;

/// ChatML, for models that ship no template.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + \
                      message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if \
                      add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const NAME: &str = "chat";

/// A compiled chat template.
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
}

/// A message as templates expect it (the shape `transformers` passes).
#[derive(Serialize)]
struct TemplateMessage {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<TemplateToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Serialize)]
struct TemplateToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: TemplateFunction,
}

#[derive(Serialize)]
struct TemplateFunction {
    name: String,
    /// Parsed where it parses: templates write it with `tojson`.
    arguments: Value,
}

impl ChatTemplate {
    /// Compiles `source`, or ChatML when the model has none. The error is minijinja's account
    /// of what does not parse.
    pub(crate) fn new(source: Option<&str>) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function(
            "strftime_now",
            |format: String| -> Result<String, minijinja::Error> {
                strftime(&format, time::OffsetDateTime::now_utc())
                    .map_err(|why| minijinja::Error::new(ErrorKind::InvalidOperation, why))
            },
        );
        env.add_template_owned(NAME, source.unwrap_or(CHATML).to_owned())
            .map_err(|err| err.to_string())?;
        Ok(ChatTemplate { env })
    }

    /// The prompt for `messages` (and `tools`, when there are any), ready for the assistant's
    /// answer. The error is the template's own message where it raised one.
    pub(crate) fn render(
        &self,
        messages: &[Message],
        tools: &[ToolDefinition],
        bos_token: &str,
        eos_token: &str,
    ) -> Result<String, String> {
        let messages: Vec<TemplateMessage> = messages.iter().map(template_message).collect();
        let tools: Option<Vec<Value>> = (!tools.is_empty()).then(|| {
            tools
                .iter()
                .map(|tool| {
                    serde_json::json!({
                        "type": "function",
                        "function": {
                            "name": tool.name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                        },
                    })
                })
                .collect()
        });
        let template = self.env.get_template(NAME).map_err(|err| err.to_string())?;
        template
            .render(context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => true,
                bos_token => bos_token,
                eos_token => eos_token,
            })
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidOperation => err.detail().unwrap_or("").to_owned(),
                _ => err.to_string(),
            })
    }
}

fn template_message(message: &Message) -> TemplateMessage {
    let role = match message.role {
        // Templates know `system`; `developer` is OpenAI's newer name for it.
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    TemplateMessage {
        role,
        content: message.joined_text(),
        tool_calls: message
            .tool_calls
            .iter()
            .map(|call| TemplateToolCall {
                id: call.id.clone(),
                kind: "function",
                function: TemplateFunction {
                    name: call.name.clone(),
                    arguments: serde_json::from_str(&call.arguments)
                        .unwrap_or_else(|_| Value::String(call.arguments.clone())),
                },
            })
            .collect(),
        tool_call_id: message.tool_call_id.clone(),
        name: message.name.clone(),
    }
}

/// The C `strftime` directives chat templates use (Llama 3.1 writes today's date with
/// `%d %b %Y`).
fn strftime(format: &str, now: time::OffsetDateTime) -> Result<String, String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let month = MONTHS[usize::from(u8::from(now.month())) - 1];
    let day = DAYS[usize::from(now.weekday().number_days_from_monday())];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let directive = chars
            .next()
            .ok_or("strftime_now: the format ends with `%`")?;
        let piece = match directive {
            'Y' => now.year().to_string(),
            'y' => format!("{:02}", now.year().rem_euclid(100)),
            'm' => format!("{:02}", u8::from(now.month())),
            'd' => format!("{:02}", now.day()),
            'e' => format!("{:>2}", now.day()),
            'j' => format!("{:03}", now.ordinal()),
            'H' => format!("{:02}", now.hour()),
            'M' => format!("{:02}", now.minute()),
            'S' => format!("{:02}", now.second()),
            'B' => month.to_owned(),
            'b' => month[..3].to_owned(),
            'A' => day.to_owned(),
            'a' => day[..3].to_owned(),
            '%' => "%".to_owned(),
            other => return Err(format!("strftime_now: `%{other}` is not supported")),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kai_models::chat::ToolCall;

    fn render(source: Option<&str>, messages: &[Message]) -> Result<String, String> {
        ChatTemplate::new(source)?.render(messages, &[], "<s>", "</s>")
    }

    #[test]
    fn chatml_is_the_default() {
        let prompt = render(None, &[Message::text(Role::User, "Hi")]).unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_string_methods_and_block_trimming_work() {
        let source =
            "{% for m in messages %}\n  {{ m.content.strip() }}|{{ m.role.upper() }}\n{% endfor %}";
        let prompt = render(
            Some(source),
            &[Message::text(Role::Developer, "  be brief  ")],
        )
        .unwrap();
        assert_eq!(prompt, "  be brief|SYSTEM\n");
    }

    #[test]
    fn raise_exception_surfaces_the_templates_words() {
        let source = "{% if messages[0].role != 'system' %}{{ raise_exception('System first!') }}{% endif %}";
        let err = render(Some(source), &[Message::text(Role::User, "Hi")]).unwrap_err();
        assert_eq!(err, "System first!");
    }

    #[test]
    fn tools_and_tool_calls_reach_the_template() {
        let source = "{% for t in tools %}{{ t.function.name }};{% endfor %}\
                      {% for m in messages %}{% for c in m.tool_calls %}{{ c.function.arguments.city }}{% endfor %}{% endfor %}";
        let mut call = Message::text(Role::Assistant, "");
        call.tool_calls.push(ToolCall {
            id: "call_0".into(),
            name: "weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        });
        let tool = ToolDefinition {
            name: "weather".into(),
            description: None,
            parameters: serde_json::json!({"type": "object"}),
            strict: None,
        };
        let prompt = ChatTemplate::new(Some(source))
            .unwrap()
            .render(&[call], &[tool], "", "")
            .unwrap();
        assert_eq!(prompt, "weather;Paris");
    }

    #[test]
    fn a_template_that_does_not_parse_is_refused() {
        assert!(ChatTemplate::new(Some("{% for %}")).is_err());
    }

    #[test]
    fn strftime_writes_common_directives() {
        let when = time::macros::datetime!(2024-07-09 13:05:02 UTC);
        assert_eq!(strftime("%d %b %Y", when).unwrap(), "09 Jul 2024");
        assert_eq!(
            strftime("%A %B %e, %H:%M:%S %%", when).unwrap(),
            "Tuesday July  9, 13:05:02 %"
        );
        assert!(strftime("%Q", when).is_err());
    }
}
