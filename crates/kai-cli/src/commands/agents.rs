//! `kai agent` and `kai prompt`: agents on a server, their runs followed live at the terminal
//! (where requests for consent and questions are answered as they come), and prompt templates.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read};

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use kai_config::{Environment, Settings};
use kai_proto::{
    Agent, AgentDefinition, AgentLimits, AgentList, AgentRequest, ConsentPolicy, DecideRequest,
    Prompt, PromptList, PromptRequest, PromptVersionRequest, RequestKind, Run, RunEvents, RunList,
    RunRequest, RunRequestList, RunStatus, Schedule, ScheduleList, ScheduleRequest,
    StartRunRequest, ToolCalling,
};
use kai_providers::sse::sse_events;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::cli::{AgentCommand, AgentDefinitionArgs, PromptCommand, ScheduleCommand};
use crate::client::Client;
use crate::commands::connect;
use crate::output;

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// An empty definition, for a new agent.
fn empty() -> AgentDefinition {
    AgentDefinition {
        description: String::new(),
        instructions: None,
        prompt: None,
        variables: serde_json::Map::new(),
        model: None,
        tools: Vec::new(),
        mcp_servers: Vec::new(),
        consent: BTreeMap::new(),
        collections: Vec::new(),
        memory: false,
        tool_calling: None,
        limits: None,
        hooks: Vec::new(),
    }
}

/// `base`, or the definition in `--file` (JSON, as the API takes it), with the flags laid over
/// it: each flag changes what it names and leaves the rest.
fn definition(base: AgentDefinition, args: AgentDefinitionArgs) -> anyhow::Result<AgentDefinition> {
    let mut definition = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not an agent definition (JSON, as `kai agent show --json` prints \
                     its `definition`)",
                    path.display()
                )
            })?
        }
        None => base,
    };
    if let Some(text) = args.instructions {
        definition.instructions = Some(text);
        definition.prompt = None;
    }
    if let Some(prompt) = args.prompt {
        definition.prompt = Some(prompt);
        definition.instructions = None;
    }
    if let Some(description) = args.description {
        definition.description = description;
    }
    if let Some(model) = args.model {
        definition.model = Some(model);
    }
    for tool in args.tools {
        if !definition.tools.contains(&tool) {
            definition.tools.push(tool);
        }
    }
    for server in args.mcp_servers {
        if !definition.mcp_servers.contains(&server) {
            definition.mcp_servers.push(server);
        }
    }
    for (policy, tools) in [
        (ConsentPolicy::Allow, args.allow),
        (ConsentPolicy::Ask, args.ask),
        (ConsentPolicy::Deny, args.deny),
    ] {
        for tool in tools {
            definition.consent.insert(tool, policy);
        }
    }
    for var in args.vars {
        let (name, value) = var
            .split_once('=')
            .ok_or_else(|| anyhow!("--var takes NAME=VALUE, not `{var}`"))?;
        definition
            .variables
            .insert(name.trim().to_owned(), value.into());
    }
    definition.collections.extend(args.collections);
    if args.memory {
        definition.memory = true;
    }
    if args.prompted_tools {
        definition.tool_calling = Some(ToolCalling::Prompted);
    }
    if args.max_steps.is_some() || args.max_duration.is_some() || args.ask_after_usd.is_some() {
        let limits = definition.limits.get_or_insert(AgentLimits {
            max_steps: None,
            max_model_calls: None,
            max_tool_calls: None,
            max_tokens: None,
            max_duration: None,
            ask_after_usd: None,
        });
        if args.ask_after_usd.is_some() {
            limits.ask_after_usd = args.ask_after_usd;
        }
        if args.max_steps.is_some() {
            limits.max_steps = args.max_steps;
        }
        if args.max_duration.is_some() {
            limits.max_duration = args.max_duration;
        }
    }
    Ok(definition)
}

fn print_agent(agent: &Agent) {
    let d = &agent.definition;
    output::line(&format!("{} ({})", agent.name, agent.id));
    if !d.description.is_empty() {
        output::line(&format!("  {}", d.description));
    }
    output::line(&format!(
        "  model: {}",
        d.model.as_deref().unwrap_or("(the default)")
    ));
    output::line(&format!(
        "  tools: {}",
        if d.tools.is_empty() {
            "none".to_owned()
        } else {
            d.tools.join(", ")
        }
    ));
    for (tool, policy) in &d.consent {
        output::line(&format!("  consent: {tool} {policy:?}").to_lowercase());
    }
    for grant in &agent.grants {
        output::line(&format!(
            "  always: {} {}",
            grant.tool,
            if grant.allow { "allowed" } else { "denied" }
        ));
    }
    match (&d.instructions, &d.prompt) {
        (Some(text), _) => output::line(&format!("  instructions: {text}")),
        (None, Some(prompt)) => output::line(&format!("  prompt: {prompt}")),
        (None, None) => {}
    }
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Waiting => "waiting",
        RunStatus::Paused => "paused",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// One timeline event as a line (or a few) for the terminal.
fn describe(kind: &str, data: &Value) -> Option<String> {
    let text = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
    let first_line = |s: String| s.lines().next().unwrap_or_default().to_owned();
    Some(match kind {
        "plan" => {
            let steps: Vec<String> = data["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, s)| format!("  {}. {}", i + 1, s.as_str().unwrap_or_default()))
                .collect();
            let mut line = String::from("plan:");
            if let Some(note) = data["note"].as_str() {
                line.push_str(&format!(" ({note})"));
            }
            format!("{line}\n{}", steps.join("\n"))
        }
        "step_started" => format!("step {}: {}", data["number"], text("title")),
        "tool_call" => format!("  -> {} {}", text("tool"), data["arguments"]),
        "tool_result" => {
            let mark = if data["ok"].as_bool().unwrap_or(false) {
                "<-"
            } else {
                "<- error:"
            };
            format!("  {mark} {}", first_line(text("output")))
        }
        "requested" => format!(
            "  ? {} for {}: {}",
            text("kind"),
            text("tool"),
            data["details"]
        ),
        "decided" => format!("  {} ({})", text("status"), text("request")),
        "step_finished" => format!("  done: {}", first_line(text("output"))),
        "step_failed" => format!("  step {} failed: {}", data["number"], text("error")),
        "error" => format!("  ! {}", text("message")),
        "paused" => "paused".into(),
        "finished" => match text("status").as_str() {
            "succeeded" => format!("succeeded: {}", text("answer")),
            "failed" => format!("failed: {}", text("error")),
            other => other.to_owned(),
        },
        _ => return None,
    })
}

/// Asks at the terminal how to answer a request; `None` when stdin is not a terminal.
fn ask_at_terminal(request: &RunRequest) -> anyhow::Result<Option<DecideRequest>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let stdin = std::io::stdin();
    let mut line = String::new();
    match request.kind {
        RequestKind::Question => {
            output::prompt(&format!(
                "{} asks: {}\nanswer (empty to decline): ",
                request.tool,
                request.details["question"].as_str().unwrap_or_default()
            ));
            stdin.lock().read_line(&mut line)?;
            let answer = line.trim().to_owned();
            Ok(Some(DecideRequest {
                approve: !answer.is_empty(),
                answer: (!answer.is_empty()).then_some(answer),
                remember: false,
            }))
        }
        RequestKind::Consent | RequestKind::Outcome => {
            let question = if request.kind == RequestKind::Outcome {
                format!(
                    "{} was started before kai stopped and may or may not have run: run it again? [y/n] ",
                    request.tool
                )
            } else {
                format!(
                    "allow {} {}? [y]es, [n]o, [a]lways, ne[v]er: ",
                    request.tool, request.details["arguments"]
                )
            };
            loop {
                output::prompt(&question);
                line.clear();
                if stdin.lock().read_line(&mut line)? == 0 {
                    return Ok(None);
                }
                let (approve, remember) = match line.trim() {
                    "y" | "yes" => (true, false),
                    "n" | "no" => (false, false),
                    "a" | "always" if request.kind == RequestKind::Consent => (true, true),
                    "v" | "never" if request.kind == RequestKind::Consent => (false, true),
                    _ => continue,
                };
                return Ok(Some(DecideRequest {
                    approve,
                    answer: None,
                    remember,
                }));
            }
        }
    }
}

/// Follows a run's timeline until it ends, answering its requests at the terminal when there
/// is one. Returns the run as it ended.
async fn follow(client: &Client, id: Uuid, json: bool) -> anyhow::Result<Run> {
    let mut after = 0u64;
    loop {
        let response = client
            .fetch(&format!("/api/v1/runs/{id}/stream?after={after}"))
            .await?;
        let mut events = sse_events(Box::pin(response.bytes_stream()));
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                // The stream broke: pick it up again where it was.
                break;
            };
            let wire: kai_proto::RunEvent = serde_json::from_str(&event.data)
                .context("the server sent an event kai cannot read")?;
            after = wire.seq;
            if json {
                output::json_line(&wire)?;
            } else if let Some(line) = describe(&wire.kind, &wire.data) {
                output::line(&line);
            }
            if wire.kind == "requested" {
                let request_id = wire.data["request"].as_str().unwrap_or_default();
                let request: RunRequestList = client
                    .call(
                        Method::GET,
                        &format!("/api/v1/requests?run={id}"),
                        None::<&()>,
                    )
                    .await?;
                let Some(request) = request
                    .requests
                    .into_iter()
                    .find(|r| r.id.to_string() == request_id)
                else {
                    continue;
                };
                match ask_at_terminal(&request)? {
                    Some(decision) => {
                        client
                            .call::<RunRequest, _>(
                                Method::POST,
                                &format!("/api/v1/requests/{}", request.id),
                                Some(&decision),
                            )
                            .await?;
                    }
                    None => output::note(&format!(
                        "waiting for an answer: `kai agent approve {0}` or `kai agent deny {0}`",
                        request.id
                    )),
                }
            }
        }
        let run: Run = client
            .call(Method::GET, &format!("/api/v1/runs/{id}"), None::<&()>)
            .await?;
        if matches!(
            run.status,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        ) && after >= run.last_event
        {
            return Ok(run);
        }
    }
}

async fn decide(client: &Client, id: Uuid, decision: DecideRequest) -> anyhow::Result<RunRequest> {
    client
        .call(
            Method::POST,
            &format!("/api/v1/requests/{id}"),
            Some(&decision),
        )
        .await
}

pub(crate) async fn run(
    settings: &Settings,
    env: &Environment,
    command: AgentCommand,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    match command {
        AgentCommand::Create {
            name,
            definition: args,
            json,
        } => {
            let agent: Agent = client
                .call(
                    Method::POST,
                    "/api/v1/agents",
                    Some(&AgentRequest {
                        name,
                        definition: definition(empty(), args)?,
                    }),
                )
                .await?;
            if json {
                return output::json(&agent);
            }
            output::note(&format!("defined agent `{}` ({})", agent.name, agent.id));
            Ok(())
        }
        AgentCommand::Edit {
            agent,
            rename,
            definition: args,
            json,
        } => {
            let current: Agent = client
                .call(
                    Method::GET,
                    &format!("/api/v1/agents/{}", encode(&agent)),
                    None::<&()>,
                )
                .await?;
            let base = definition(current.definition, args)?;
            let agent: Agent = client
                .call(
                    Method::PUT,
                    &format!("/api/v1/agents/{}", current.id),
                    Some(&AgentRequest {
                        name: rename.unwrap_or(current.name),
                        definition: base,
                    }),
                )
                .await?;
            if json {
                return output::json(&agent);
            }
            output::note(&format!("saved agent `{}`", agent.name));
            Ok(())
        }
        AgentCommand::List { json } => {
            let list: AgentList = client
                .call(Method::GET, "/api/v1/agents", None::<&()>)
                .await?;
            if json {
                return output::json(&list.agents);
            }
            if list.agents.is_empty() {
                output::note(
                    "no agents yet; define one with `kai agent create NAME --instructions TEXT`",
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .agents
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.definition
                            .model
                            .clone()
                            .unwrap_or_else(|| "(default)".into()),
                        a.definition.tools.join(","),
                        output::timestamp(a.updated_at),
                    ]
                })
                .collect();
            output::table(&["NAME", "MODEL", "TOOLS", "CHANGED"], &rows);
            Ok(())
        }
        AgentCommand::Show { agent, json } => {
            let agent: Agent = client
                .call(
                    Method::GET,
                    &format!("/api/v1/agents/{}", encode(&agent)),
                    None::<&()>,
                )
                .await?;
            if json {
                return output::json(&agent);
            }
            print_agent(&agent);
            Ok(())
        }
        AgentCommand::Rm { agent } => {
            client
                .call_empty(
                    Method::DELETE,
                    &format!("/api/v1/agents/{}", encode(&agent)),
                    None::<&()>,
                )
                .await?;
            output::note(&format!("deleted agent `{agent}` and its runs"));
            Ok(())
        }
        AgentCommand::Forget { agent, tool } => {
            client
                .call_empty(
                    Method::DELETE,
                    &format!("/api/v1/agents/{}/grants/{}", encode(&agent), encode(&tool)),
                    None::<&()>,
                )
                .await?;
            output::note(&format!("`{agent}` will ask about `{tool}` again"));
            Ok(())
        }
        AgentCommand::Run {
            agent,
            goal,
            detach,
            json,
        } => {
            let goal = match goal {
                Some(goal) => goal,
                None if !std::io::stdin().is_terminal() => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("cannot read the goal from stdin")?;
                    text
                }
                None => bail!("give the goal: kai agent run {agent} \"what to do\""),
            };
            let run: Run = client
                .call(
                    Method::POST,
                    &format!("/api/v1/agents/{}/runs", encode(&agent)),
                    Some(&StartRunRequest { goal }),
                )
                .await?;
            if detach {
                if json {
                    return output::json(&run);
                }
                output::note(&format!(
                    "started run {0}; follow it with `kai agent log {0} --follow`",
                    run.id
                ));
                return Ok(());
            }
            if !json {
                output::note(&format!("run {}", run.id));
            }
            let ended = follow(&client, run.id, json).await?;
            match ended.status {
                RunStatus::Succeeded => Ok(()),
                status => bail!(
                    "the run {}{}",
                    status_word(status),
                    ended.error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
            }
        }
        AgentCommand::Runs { agent, json } => {
            let path = match &agent {
                Some(agent) => format!("/api/v1/runs?agent={}", encode(agent)),
                None => "/api/v1/runs".to_owned(),
            };
            let list: RunList = client.call(Method::GET, &path, None::<&()>).await?;
            if json {
                return output::json(&list.runs);
            }
            if list.runs.is_empty() {
                output::note("no runs yet; start one with `kai agent run NAME \"goal\"`");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .runs
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        status_word(r.status).into(),
                        output::timestamp(r.created_at),
                        r.goal
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .chars()
                            .take(50)
                            .collect(),
                    ]
                })
                .collect();
            output::table(&["RUN", "STATUS", "STARTED", "GOAL"], &rows);
            Ok(())
        }
        AgentCommand::Log {
            run,
            follow: live,
            json,
        } => {
            if live {
                follow(&client, run, json).await?;
                return Ok(());
            }
            let events: RunEvents = client
                .call(
                    Method::GET,
                    &format!("/api/v1/runs/{run}/events?limit=1000"),
                    None::<&()>,
                )
                .await?;
            if json {
                for event in &events.events {
                    output::json_line(event)?;
                }
                return Ok(());
            }
            for event in &events.events {
                if let Some(line) = describe(&event.kind, &event.data) {
                    output::line(&format!("{} {line}", output::timestamp(event.at)));
                }
            }
            Ok(())
        }
        AgentCommand::Pause { run } => control(&client, "pause", run).await,
        AgentCommand::Resume { run } => control(&client, "resume", run).await,
        AgentCommand::Cancel { run } => control(&client, "cancel", run).await,
        AgentCommand::Requests { all, json } => {
            let list: RunRequestList = client
                .call(
                    Method::GET,
                    &format!("/api/v1/requests?pending={}", !all),
                    None::<&()>,
                )
                .await?;
            if json {
                return output::json(&list.requests);
            }
            if list.requests.is_empty() {
                output::note("nothing is waiting for an answer");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .requests
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        format!("{:?}", r.kind).to_lowercase(),
                        r.tool.clone(),
                        format!("{:?}", r.status).to_lowercase(),
                        r.details.to_string().chars().take(60).collect(),
                    ]
                })
                .collect();
            output::table(&["REQUEST", "KIND", "TOOL", "STATUS", "DETAILS"], &rows);
            Ok(())
        }
        AgentCommand::Approve {
            request,
            always,
            answer,
        } => {
            let decided = decide(
                &client,
                request,
                DecideRequest {
                    approve: true,
                    answer,
                    remember: always,
                },
            )
            .await?;
            output::note(&format!(
                "approved{}; run {} goes on",
                if always { " from now on" } else { "" },
                decided.run_id
            ));
            Ok(())
        }
        AgentCommand::Deny {
            request,
            always,
            reason,
        } => {
            let decided = decide(
                &client,
                request,
                DecideRequest {
                    approve: false,
                    answer: reason,
                    remember: always,
                },
            )
            .await?;
            output::note(&format!(
                "denied{}; run {} goes on without it",
                if always { " from now on" } else { "" },
                decided.run_id
            ));
            Ok(())
        }
    }
}

/// `kai agent pause|resume|cancel`.
async fn control(client: &Client, action: &str, run: Uuid) -> anyhow::Result<()> {
    let run: Run = client
        .call(
            Method::POST,
            &format!("/api/v1/runs/{run}/{action}"),
            None::<&()>,
        )
        .await?;
    output::note(&format!("run {} is {}", run.id, status_word(run.status)));
    Ok(())
}

/// A template's text: the file given, else stdin.
fn template_text(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    if let Some(file) = file {
        return std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()));
    }
    if std::io::stdin().is_terminal() {
        bail!("give the template with --file, or on stdin");
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the template from stdin")?;
    Ok(text)
}

fn print_prompt(prompt: &Prompt) {
    output::line(&format!(
        "{} v{} of {}{}",
        prompt.name,
        prompt.version,
        prompt.latest_version,
        if prompt.variables.is_empty() {
            String::new()
        } else {
            format!(" (variables: {})", prompt.variables.join(", "))
        }
    ));
    output::line(&prompt.template);
}

pub(crate) async fn prompts(
    settings: &Settings,
    env: &Environment,
    command: PromptCommand,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    match command {
        PromptCommand::Add {
            name,
            file,
            vars,
            description,
        } => {
            let template = template_text(file.as_deref())?;
            let existing = client
                .call::<Prompt, _>(
                    Method::GET,
                    &format!("/api/v1/prompts/{}", encode(&name)),
                    None::<&()>,
                )
                .await
                .ok();
            let prompt: Prompt = match existing {
                Some(_) => {
                    client
                        .call(
                            Method::POST,
                            &format!("/api/v1/prompts/{}/versions", encode(&name)),
                            Some(&PromptVersionRequest {
                                template,
                                variables: vars,
                                description,
                            }),
                        )
                        .await?
                }
                None => {
                    client
                        .call(
                            Method::POST,
                            "/api/v1/prompts",
                            Some(&PromptRequest {
                                name,
                                description: description.unwrap_or_default(),
                                template,
                                variables: vars,
                            }),
                        )
                        .await?
                }
            };
            output::note(&format!(
                "saved `{}` as version {}",
                prompt.name, prompt.version
            ));
            Ok(())
        }
        PromptCommand::List { json } => {
            let list: PromptList = client
                .call(Method::GET, "/api/v1/prompts", None::<&()>)
                .await?;
            if json {
                return output::json(&list.prompts);
            }
            let rows: Vec<Vec<String>> = list
                .prompts
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        format!("v{}", p.latest_version),
                        p.variables.join(","),
                        p.description.clone(),
                    ]
                })
                .collect();
            output::table(&["NAME", "VER", "VARIABLES", "DESCRIPTION"], &rows);
            Ok(())
        }
        PromptCommand::Show { prompt, json } => {
            let (name, version) = match prompt.rsplit_once('@') {
                Some((name, version)) => (
                    name.to_owned(),
                    Some(version.parse::<u32>().map_err(|_| {
                        anyhow!("`{prompt}`: give NAME or NAME@VERSION, VERSION a number")
                    })?),
                ),
                None => (prompt.clone(), None),
            };
            let path = match version {
                Some(v) => format!("/api/v1/prompts/{}?version={v}", encode(&name)),
                None => format!("/api/v1/prompts/{}", encode(&name)),
            };
            let prompt: Prompt = client.call(Method::GET, &path, None::<&()>).await?;
            if json {
                return output::json(&prompt);
            }
            print_prompt(&prompt);
            Ok(())
        }
        PromptCommand::Rm { name } => {
            client
                .call_empty(
                    Method::DELETE,
                    &format!("/api/v1/prompts/{}", encode(&name)),
                    None::<&()>,
                )
                .await?;
            output::note(&format!("deleted prompt `{name}`"));
            Ok(())
        }
    }
}

pub(crate) async fn schedules(
    settings: &Settings,
    env: &Environment,
    command: ScheduleCommand,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    let path = |name: &str| format!("/api/v1/schedules/{}", encode(name));
    match command {
        ScheduleCommand::Add {
            name,
            agent,
            goal,
            cron,
            every,
            time_zone,
            missed,
            disabled,
            json,
        } => {
            let spec = match (cron, every) {
                (Some(cron), _) => format!("cron: {cron}"),
                (None, Some(every)) => format!("every {every}"),
                (None, None) => bail!("give --cron EXPRESSION or --every DURATION"),
            };
            let schedule: Schedule = client
                .call(
                    Method::POST,
                    "/api/v1/schedules",
                    Some(&ScheduleRequest {
                        name,
                        agent,
                        goal,
                        spec,
                        time_zone: Some(time_zone),
                        missed: Some(missed),
                        enabled: Some(!disabled),
                    }),
                )
                .await?;
            if json {
                return output::json(&schedule);
            }
            output::note(&format!(
                "scheduled `{}`{}",
                schedule.name,
                schedule
                    .upcoming
                    .first()
                    .map(|next| format!("; next fire {}", output::timestamp(*next)))
                    .unwrap_or_else(|| " (disabled)".into())
            ));
            Ok(())
        }
        ScheduleCommand::List { json } => {
            let list: ScheduleList = client
                .call(Method::GET, "/api/v1/schedules", None::<&()>)
                .await?;
            if json {
                return output::json(&list.schedules);
            }
            if list.schedules.is_empty() {
                output::note(
                    "no schedules yet; add one with `kai schedule add NAME --agent A --goal G --every 1h`",
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .schedules
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.spec.clone(),
                        s.time_zone.clone(),
                        s.upcoming
                            .first()
                            .map_or_else(|| "disabled".into(), |t| output::timestamp(*t)),
                        s.goal.chars().take(40).collect(),
                    ]
                })
                .collect();
            output::table(&["NAME", "SPEC", "ZONE", "NEXT", "GOAL"], &rows);
            Ok(())
        }
        ScheduleCommand::Disable { schedule } => {
            let _: Schedule = client
                .call(
                    Method::POST,
                    &format!("{}/disable", path(&schedule)),
                    None::<&()>,
                )
                .await?;
            output::note(&format!("`{schedule}` will not fire until enabled"));
            Ok(())
        }
        ScheduleCommand::Enable { schedule } => {
            let enabled: Schedule = client
                .call(
                    Method::POST,
                    &format!("{}/enable", path(&schedule)),
                    None::<&()>,
                )
                .await?;
            output::note(&format!(
                "`{schedule}` fires again{}",
                enabled
                    .upcoming
                    .first()
                    .map(|next| format!(", next at {}", output::timestamp(*next)))
                    .unwrap_or_default()
            ));
            Ok(())
        }
        ScheduleCommand::Rm { schedule } => {
            client
                .call_empty(Method::DELETE, &path(&schedule), None::<&()>)
                .await?;
            output::note(&format!("removed `{schedule}`"));
            Ok(())
        }
    }
}
