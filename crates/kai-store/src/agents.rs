//! Agents' definitions and the prompt templates they use, and the owner's standing consent
//! answers ("always for this agent and tool"). A definition is a JSON document kai-agent
//! defines and checks; the store keeps its text.

use kai_core::{AgentId, PromptId, UserId};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::{Store, StoreError, from_millis, is_unique_violation, millis, truncate, with_pool};

/// A prompt template to store, as its first version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrompt {
    /// Its id.
    pub id: PromptId,
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name, unique per owner.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The template's text.
    pub template: String,
    /// The variables it declares, as a JSON array.
    pub variables: String,
}

/// A prompt template, with the text of one of its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRecord {
    /// Its id.
    pub id: PromptId,
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its newest version.
    pub latest_version: u32,
    /// The version whose text this holds.
    pub version: u32,
    /// That version's text.
    pub template: String,
    /// That version's declared variables, a JSON array.
    pub variables: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When its newest version was written.
    pub updated_at: OffsetDateTime,
}

fn prompt(row: &impl Columns) -> Result<PromptRecord, StoreError> {
    let bad = |message: String| StoreError::Corrupt {
        table: "prompts",
        message,
    };
    let id = row.text("id")?;
    let version = |column: &str| -> Result<u32, StoreError> {
        let value = row.int(column)?;
        u32::try_from(value).map_err(|_| bad(format!("prompt {id}: {column} is {value}")))
    };
    Ok(PromptRecord {
        id: id
            .parse()
            .map_err(|_| bad(format!("`{id}` is not an id")))?,
        owner_id: row
            .text("owner_id")?
            .parse()
            .map_err(|_| bad(format!("prompt {id}: bad owner id")))?,
        name: row.text("name")?,
        description: row.text("description")?,
        latest_version: version("latest_version")?,
        version: version("version")?,
        template: row.text("template")?,
        variables: row.text("variables")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

macro_rules! prompt_columns {
    () => {
        "p.id, p.owner_id, p.name, p.description, p.latest_version, \
     v.version, v.template, v.variables, p.created_at, p.updated_at"
    };
}

/// An agent definition to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// Its id.
    pub id: AgentId,
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name, unique per owner.
    pub name: String,
    /// The definition, as kai-agent's JSON.
    pub definition: String,
}

/// An agent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// Its id.
    pub id: AgentId,
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name.
    pub name: String,
    /// The definition, as kai-agent's JSON.
    pub definition: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last changed.
    pub updated_at: OffsetDateTime,
}

fn agent(row: &impl Columns) -> Result<AgentRecord, StoreError> {
    let bad = |message: String| StoreError::Corrupt {
        table: "agents",
        message,
    };
    let id = row.text("id")?;
    Ok(AgentRecord {
        id: id
            .parse()
            .map_err(|_| bad(format!("`{id}` is not an id")))?,
        owner_id: row
            .text("owner_id")?
            .parse()
            .map_err(|_| bad(format!("agent {id}: bad owner id")))?,
        name: row.text("name")?,
        definition: row.text("definition")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

macro_rules! agent_columns {
    () => {
        "id, owner_id, name, definition, created_at, updated_at"
    };
}

/// The owner's standing answer for one agent and tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGrant {
    /// The tool.
    pub tool: String,
    /// Whether calls are let through (`true`) or refused, without asking.
    pub allow: bool,
    /// When the owner gave it.
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Stores a template as version 1. [`StoreError::Conflict`] when the owner already has one
    /// by that name.
    pub async fn create_prompt(&self, new: &NewPrompt) -> Result<PromptRecord, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        let result: Result<(), sqlx::Error> = with_pool!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO prompts (id, owner_id, name, description, latest_version, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, $5)",
                )
                .bind(new.id.to_string())
                .bind(new.owner_id.to_string())
                .bind(&new.name)
                .bind(&new.description)
                .bind(millis(now))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO prompt_versions (prompt_id, version, template, variables, \
                         created_at) VALUES ($1, 1, $2, $3, $4)",
                )
                .bind(new.id.to_string())
                .bind(&new.template)
                .bind(&new.variables)
                .bind(millis(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            }
            .await
        });
        match result {
            Err(err) if is_unique_violation(&err) => {
                Err(StoreError::Conflict("a prompt with this name"))
            }
            other => other.map_err(StoreError::from),
        }?;
        Ok(PromptRecord {
            id: new.id,
            owner_id: new.owner_id,
            name: new.name.clone(),
            description: new.description.clone(),
            latest_version: 1,
            version: 1,
            template: new.template.clone(),
            variables: new.variables.clone(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Writes a new version of the owner's template (and, when given, a new description).
    /// `None` when it is not the owner's.
    pub async fn add_prompt_version(
        &self,
        owner: UserId,
        id: PromptId,
        description: Option<&str>,
        template: &str,
        variables: &str,
    ) -> Result<Option<PromptRecord>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let written = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let version: Option<i64> = sqlx::query_scalar(
                "UPDATE prompts SET latest_version = latest_version + 1, updated_at = $3, \
                     description = COALESCE($4, description) \
                 WHERE id = $1 AND owner_id = $2 RETURNING latest_version",
            )
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(now)
            .bind(description)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(version) = version {
                sqlx::query(
                    "INSERT INTO prompt_versions (prompt_id, version, template, variables, \
                         created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id.to_string())
                .bind(version)
                .bind(template)
                .bind(variables)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            version.is_some()
        });
        if !written {
            return Ok(None);
        }
        self.prompt(owner, id, None).await
    }

    /// The owner's template at `version`, or its newest.
    pub async fn prompt(
        &self,
        owner: UserId,
        id: PromptId,
        version: Option<u32>,
    ) -> Result<Option<PromptRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            prompt_columns!(),
            " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id \
             WHERE p.id = $1 AND p.owner_id = $2 AND v.version = COALESCE($3, p.latest_version)"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(owner.to_string())
                .bind(version.map(i64::from))
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(prompt)
                .transpose()
        })
    }

    /// The owner's template by name, at `version` or its newest.
    pub async fn prompt_by_name(
        &self,
        owner: UserId,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<PromptRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            prompt_columns!(),
            " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id \
             WHERE p.name = $1 AND p.owner_id = $2 AND v.version = COALESCE($3, p.latest_version)"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(name)
                .bind(owner.to_string())
                .bind(version.map(i64::from))
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(prompt)
                .transpose()
        })
    }

    /// The owner's templates at their newest versions, by name.
    pub async fn prompts(&self, owner: UserId) -> Result<Vec<PromptRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            prompt_columns!(),
            " FROM prompts p JOIN prompt_versions v \
                 ON v.prompt_id = p.id AND v.version = p.latest_version \
             WHERE p.owner_id = $1 ORDER BY p.name"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(owner.to_string())
                .fetch_all(pool)
                .await?
                .iter()
                .map(prompt)
                .collect()
        })
    }

    /// Every version of the owner's template, oldest first; empty when it is not theirs.
    pub async fn prompt_versions(
        &self,
        owner: UserId,
        id: PromptId,
    ) -> Result<Vec<PromptRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            prompt_columns!(),
            " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id \
             WHERE p.id = $1 AND p.owner_id = $2 ORDER BY v.version"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(owner.to_string())
                .fetch_all(pool)
                .await?
                .iter()
                .map(prompt)
                .collect()
        })
    }

    /// Deletes the owner's template with all its versions; `false` when it is not theirs.
    pub async fn delete_prompt(&self, owner: UserId, id: PromptId) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let deleted = sqlx::query("DELETE FROM prompts WHERE id = $1 AND owner_id = $2")
                .bind(id.to_string())
                .bind(owner.to_string())
                .execute(pool)
                .await?
                .rows_affected();
            Ok(deleted == 1)
        })
    }

    /// Stores an agent. [`StoreError::Conflict`] when the owner already has one by that name.
    pub async fn create_agent(&self, new: &NewAgent) -> Result<AgentRecord, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        let result: Result<_, sqlx::Error> = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO agents (id, owner_id, name, definition, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(new.id.to_string())
            .bind(new.owner_id.to_string())
            .bind(&new.name)
            .bind(&new.definition)
            .bind(millis(now))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        match result {
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::Conflict("an agent with this name"));
            }
            other => other?,
        };
        Ok(AgentRecord {
            id: new.id,
            owner_id: new.owner_id,
            name: new.name.clone(),
            definition: new.definition.clone(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Replaces the owner's agent's name and definition; `None` when it is not theirs.
    pub async fn update_agent(
        &self,
        owner: UserId,
        id: AgentId,
        name: &str,
        definition: &str,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let sql = concat!(
            "UPDATE agents SET name = $3, definition = $4, updated_at = $5 \
             WHERE id = $1 AND owner_id = $2 RETURNING ",
            agent_columns!(),
            ""
        );
        let result: Result<_, sqlx::Error> = with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(owner.to_string())
                .bind(name)
                .bind(definition)
                .bind(millis(OffsetDateTime::now_utc()))
                .fetch_optional(pool)
                .await
                .map(|row| row.as_ref().map(agent))
        });
        match result {
            Err(err) if is_unique_violation(&err) => {
                Err(StoreError::Conflict("an agent with this name"))
            }
            other => other?.transpose(),
        }
    }

    /// The owner's agent.
    pub async fn agent(
        &self,
        owner: UserId,
        id: AgentId,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = $1 AND owner_id = $2"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(owner.to_string())
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(agent)
                .transpose()
        })
    }

    /// The owner's agent by name.
    pub async fn agent_by_name(
        &self,
        owner: UserId,
        name: &str,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE name = $1 AND owner_id = $2"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(name)
                .bind(owner.to_string())
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(agent)
                .transpose()
        })
    }

    /// The owner's agents, by name.
    pub async fn agents(&self, owner: UserId) -> Result<Vec<AgentRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE owner_id = $1 ORDER BY name"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(owner.to_string())
                .fetch_all(pool)
                .await?
                .iter()
                .map(agent)
                .collect()
        })
    }

    /// Deletes the owner's agent with its runs and grants; `false` when it is not theirs.
    pub async fn delete_agent(&self, owner: UserId, id: AgentId) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let deleted = sqlx::query("DELETE FROM agents WHERE id = $1 AND owner_id = $2")
                .bind(id.to_string())
                .bind(owner.to_string())
                .execute(pool)
                .await?
                .rows_affected();
            Ok(deleted == 1)
        })
    }

    /// The owner's standing answers for an agent, by tool.
    pub async fn consent_grants(&self, agent: AgentId) -> Result<Vec<ConsentGrant>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT tool, decision, created_at FROM consent_grants WHERE agent_id = $1 \
                 ORDER BY tool",
            )
            .bind(agent.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(tool, decision, created_at)| ConsentGrant {
                tool,
                allow: decision == "allow",
                created_at: from_millis(created_at),
            })
            .collect())
    }

    /// Records the owner's standing answer for an agent and tool, replacing any earlier one.
    pub async fn set_consent_grant(
        &self,
        agent: AgentId,
        tool: &str,
        allow: bool,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO consent_grants (agent_id, tool, decision, created_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (agent_id, tool) DO UPDATE SET decision = $3, created_at = $4",
            )
            .bind(agent.to_string())
            .bind(tool)
            .bind(if allow { "allow" } else { "deny" })
            .bind(millis(OffsetDateTime::now_utc()))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets the standing answer for an agent and tool; `false` when there was none.
    pub async fn delete_consent_grant(
        &self,
        agent: AgentId,
        tool: &str,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let deleted =
                sqlx::query("DELETE FROM consent_grants WHERE agent_id = $1 AND tool = $2")
                    .bind(agent.to_string())
                    .bind(tool)
                    .execute(pool)
                    .await?
                    .rows_affected();
            Ok(deleted == 1)
        })
    }
}
