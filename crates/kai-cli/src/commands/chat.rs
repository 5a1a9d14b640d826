//! `kai chat`: one question answered on stdout, or a conversation at the terminal. Both go
//! through [`Chat::say`], so the terminal loop adds only reading lines and Ctrl-C.

use std::pin::pin;

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use kai_config::{Environment, Settings};
use kai_proto::openai::MessageContent;
use kai_proto::{CreateConversationRequest, KnowledgeOptions, KnowledgeSource, SendMessageRequest};
use uuid::Uuid;

use super::connect;
use crate::cli::ChatArgs;
use crate::client::{Client, Piece};
use crate::{input, output};

/// What `/help` prints in a conversation at the terminal.
const HELP: &str = "type a message and press Enter; /exit or Ctrl-D leaves, Ctrl-C stops an \
                    answer (and leaves at the prompt)";

pub(crate) async fn run(
    settings: &Settings,
    env: &Environment,
    args: ChatArgs,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    if args.list {
        return list(&client, args.json).await;
    }
    let prompt = prompt(&args.prompt)?;
    if prompt.is_none() && args.json {
        bail!("--json prints one reply: give the prompt as arguments or on stdin");
    }
    let mut chat = Chat::open(client, &args).await?;
    match prompt {
        Some(text) => {
            if args.json {
                chat.say_json(text).await?;
            } else {
                chat.say(text).await?;
                chat.hint();
            }
        }
        None => converse(&mut chat).await?,
    }
    Ok(())
}

/// The prompt of a one-off question: the words given, else all of stdin when it is not a
/// terminal; `None` on a terminal, for a conversation.
fn prompt(words: &[String]) -> anyhow::Result<Option<String>> {
    let text = if !words.is_empty() {
        words.join(" ")
    } else if input::interactive() {
        return Ok(None);
    } else {
        input::all()?
    };
    if text.trim().is_empty() {
        bail!("nothing to ask: give a prompt as arguments or on stdin");
    }
    // The newline that ends piped text is not part of the question.
    Ok(Some(text.trim_end().to_owned()))
}

/// The passages an answer was given, numbered as it cites them, to stderr (the answer alone
/// goes to stdout).
fn show_sources(sources: &[KnowledgeSource], asked: bool) {
    if sources.is_empty() {
        if asked {
            output::note("nothing in your knowledge matched; the model answered on its own");
        }
        return;
    }
    for source in sources {
        let heading = source
            .heading
            .as_deref()
            .map(|h| format!(" > {h}"))
            .unwrap_or_default();
        output::note(&format!(
            "[{}] {} (version {}){heading}",
            source.number, source.title, source.version
        ));
    }
}

/// A conversation under way, or about to start.
struct Chat {
    client: Client,
    /// `None` until the first message starts one.
    conversation: Option<Uuid>,
    /// The model asked; named in every message, so that `--model` switches a conversation.
    model: String,
    /// The title of the conversation to start.
    title: Option<String>,
    /// What knowledge each message asks to be answered from, if any.
    knowledge: Option<KnowledgeOptions>,
    /// Whether stdout is at the start of a line, so that an answer ends with exactly one
    /// newline, even one stopped half-way.
    at_line_start: bool,
}

impl Chat {
    /// Finds the conversation to continue, if asked to, and the model.
    async fn open(client: Client, args: &ChatArgs) -> anyhow::Result<Chat> {
        let existing = if let Some(id) = args.conversation {
            let detail = client
                .conversation(id)
                .await
                .with_context(|| format!("cannot continue conversation {id}"))?;
            Some((id, detail.summary.model))
        } else if args.resume {
            let latest = client.latest_conversation().await?.ok_or_else(|| {
                anyhow!("there is no conversation to continue; start one with `kai chat PROMPT`")
            })?;
            Some((latest.id, latest.model))
        } else {
            None
        };
        let conversation_model = existing.as_ref().and_then(|(_, model)| model.clone());
        let model = match (&args.model, conversation_model) {
            (Some(model), _) => model.clone(),
            (None, Some(model)) => model,
            (None, None) => first_model(&client).await?,
        };
        let (conversation, title) = match existing {
            Some((id, _)) => {
                if let Some(title) = &args.title {
                    client.rename_conversation(id, title).await?;
                }
                (Some(id), None)
            }
            None => (None, args.title.clone()),
        };
        let knowledge = if args.knowledge || args.memory || !args.collections.is_empty() {
            let mut collections = Vec::new();
            for given in &args.collections {
                collections.push(super::knowledge::collection_id(&client, given).await?);
            }
            Some(KnowledgeOptions {
                collections,
                limit: None,
                memory: args.memory,
            })
        } else {
            None
        };
        Ok(Chat {
            client,
            conversation,
            model,
            title,
            knowledge,
            at_line_start: true,
        })
    }

    /// Asks `text` and streams the answer to stdout as it comes.
    async fn say(&mut self, text: String) -> anyhow::Result<()> {
        let id = self.conversation().await?;
        let mut waiting = output::Waiting::start(&format!("asking {}", self.model));
        let mut pieces = pin!(self.client.send_streaming(id, &self.message(text)).await?);
        let mut sources = Vec::new();
        let result = loop {
            match pieces.next().await {
                Some(Ok(Piece::Sources(given))) => sources = given,
                Some(Ok(Piece::Text(text))) => {
                    waiting.done();
                    output::partial(&text).context("cannot write the answer")?;
                    self.at_line_start = text.ends_with('\n');
                }
                Some(Ok(Piece::Done)) => break Ok(()),
                Some(Err(err)) => break Err(err),
                None => {
                    break Err(anyhow!(
                        "the answer broke off: {} closed the connection before the end",
                        self.client.url()
                    ));
                }
            }
        };
        waiting.done();
        self.end_line()?;
        show_sources(&sources, self.knowledge.is_some());
        result
    }

    /// Asks `text` and prints the whole reply as JSON.
    async fn say_json(&mut self, text: String) -> anyhow::Result<()> {
        let id = self.conversation().await?;
        let mut waiting = output::Waiting::start(&format!("asking {}", self.model));
        let reply = self.client.send(id, &self.message(text)).await;
        waiting.done();
        output::json(&reply?)
    }

    fn message(&self, text: String) -> SendMessageRequest {
        SendMessageRequest {
            content: MessageContent::Text(text),
            model: Some(self.model.clone()),
            stream: false,
            knowledge: self.knowledge.clone(),
        }
    }

    /// The conversation's id, starting it if there is none yet.
    async fn conversation(&mut self) -> anyhow::Result<Uuid> {
        if let Some(id) = self.conversation {
            return Ok(id);
        }
        let created = self
            .client
            .create_conversation(&CreateConversationRequest {
                title: self.title.take(),
                model: Some(self.model.clone()),
                messages: Vec::new(),
            })
            .await?;
        let id = created.summary.id;
        self.conversation = Some(id);
        Ok(id)
    }

    /// Ends a partly written line, so that what follows starts on its own.
    fn end_line(&mut self) -> anyhow::Result<()> {
        if !std::mem::replace(&mut self.at_line_start, true) {
            output::partial("\n").context("cannot write the answer")?;
        }
        Ok(())
    }

    /// How to go on with this conversation later.
    fn hint(&self) {
        if let Some(id) = self.conversation {
            output::note(&format!("continue with: kai chat -c {id}"));
        }
    }
}

/// The server's first model, for a conversation that names none; says which on stderr.
async fn first_model(client: &Client) -> anyhow::Result<String> {
    let models = client.models().await?;
    let Some(first) = models.first() else {
        bail!(
            "the kai server at {} has no models; configure one ([[models]] in its kai.toml)",
            client.url()
        );
    };
    let others = match models.len() {
        1 => String::new(),
        n => format!(" of {n}"),
    };
    output::note(&format!(
        "asking {first}, the first model{others} on the server (choose with --model)"
    ));
    Ok(first.clone())
}

/// A conversation at the terminal: lines typed are asked in turn, in one conversation.
async fn converse(chat: &mut Chat) -> anyhow::Result<()> {
    let whose = match chat.conversation {
        Some(id) => format!("conversation {id}"),
        None => "a new conversation".to_owned(),
    };
    output::note(&format!(
        "{whose} with {} at {}; /help for help, /exit or Ctrl-D to leave",
        chat.model,
        chat.client.url()
    ));
    let mut lines = input::lines();
    loop {
        output::prompt("you> ");
        let line = tokio::select! {
            line = lines.recv() => line,
            // Ctrl-C at the prompt leaves, as it would any other command.
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(line) = line else {
            // Ctrl-D or Ctrl-C left the cursor after the prompt.
            output::prompt("\n");
            break;
        };
        let line = line.context("cannot read what was typed")?;
        match Line::parse(&line) {
            Line::Blank => {}
            Line::Exit => break,
            Line::Help => output::note(HELP),
            Line::Unknown(command) => {
                output::note(&format!("there is no command {command}; /help lists them"));
            }
            Line::Say(text) => {
                tokio::select! {
                    said = chat.say(text) => {
                        // One failed answer does not end the conversation.
                        if let Err(err) = said {
                            output::error_line(&format!("{err:#}"));
                        }
                    }
                    // Dropping the request closes the connection, which cancels the answer.
                    _ = tokio::signal::ctrl_c() => {
                        chat.end_line()?;
                        output::note("answer stopped");
                    }
                }
            }
        }
    }
    chat.hint();
    Ok(())
}

/// What a line typed in a conversation asks for.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// Nothing.
    Blank,
    /// `/exit` or `/quit`.
    Exit,
    /// `/help`.
    Help,
    /// A word after a slash that is no command, likely a typo: not worth a model's answer.
    Unknown(String),
    /// A message for the model.
    Say(String),
}

impl Line {
    fn parse(line: &str) -> Line {
        let text = line.trim();
        if text.is_empty() {
            return Line::Blank;
        }
        // Only a lone word is a command: "/etc/hosts is empty, why?" is a message.
        if let Some(word) = text.strip_prefix('/')
            && !word.is_empty()
            && word.chars().all(|c| c.is_ascii_alphabetic())
        {
            return match word {
                "exit" | "quit" => Line::Exit,
                "help" => Line::Help,
                _ => Line::Unknown(text.to_owned()),
            };
        }
        Line::Say(text.to_owned())
    }
}

/// `kai chat --list`.
async fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let conversations = client.all_conversations().await?;
    if json {
        return output::json(&conversations);
    }
    let rows: Vec<Vec<String>> = conversations
        .into_iter()
        .map(|conversation| {
            vec![
                conversation.id.to_string(),
                output::timestamp(conversation.updated_at),
                conversation.message_count.to_string(),
                conversation.model.unwrap_or_else(|| "-".into()),
                conversation.title,
            ]
        })
        .collect();
    output::table(&["ID", "UPDATED", "MESSAGES", "MODEL", "TITLE"], &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lines_are_commands_blanks_or_messages() {
        assert_eq!(Line::parse(""), Line::Blank);
        assert_eq!(Line::parse("   \t"), Line::Blank);
        assert_eq!(Line::parse("/exit"), Line::Exit);
        assert_eq!(Line::parse("  /quit  "), Line::Exit);
        assert_eq!(Line::parse("/help"), Line::Help);
        assert_eq!(Line::parse("/exti"), Line::Unknown("/exti".into()));
        assert_eq!(
            Line::parse("  What is Rust?  "),
            Line::Say("What is Rust?".into())
        );
        assert_eq!(
            Line::parse("/etc/hosts is empty, why?"),
            Line::Say("/etc/hosts is empty, why?".into())
        );
        assert_eq!(Line::parse("/"), Line::Say("/".into()));
        assert_eq!(Line::parse("/exit now"), Line::Say("/exit now".into()));
    }

    #[test]
    fn a_prompt_is_the_words_joined() {
        let words = ["What".to_owned(), "is".to_owned(), "2+2?".to_owned()];
        assert_eq!(prompt(&words).unwrap(), Some("What is 2+2?".into()));
        assert!(prompt(&["  ".to_owned()]).is_err());
    }
}
