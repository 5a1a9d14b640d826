import type { components } from "@/api/schema";

type Schemas = components["schemas"];
type Agent = Schemas["Agent"];
type AgentDefinition = Schemas["AgentDefinition"];
type AgentRequest = Schemas["AgentRequest"];
type ConsentPolicy = Schemas["ConsentPolicy"];

/** The built-in tools an agent may be given (crates/kai-agent/src/tools). */
export const builtinTools = [
  "read_file",
  "write_file",
  "list_files",
  "shell",
  "http_request",
  "search_knowledge",
  "write_note",
  "remember",
  "recall",
  "ask_user",
] as const;

export const consentPolicies: readonly ConsentPolicy[] = ["allow", "ask", "deny"];

/** A tool's consent in the form: one of the API's policies, or "" for the default. */
export type PolicyChoice = ConsentPolicy | "";

export const limitFields = [
  "max_steps",
  "max_model_calls",
  "max_tool_calls",
  "max_tokens",
  "max_duration",
  "ask_after_usd",
] as const;

export type LimitField = (typeof limitFields)[number];

export interface AgentFormValues {
  name: string;
  description: string;
  source: "instructions" | "prompt";
  instructions: string;
  prompt: string;
  model: string;
  tools: string[];
  /** Consent per built-in tool. */
  consent: Record<string, PolicyChoice>;
  /** Consent for other tools (those of MCP servers, `SERVER__TOOL`). */
  otherConsent: { tool: string; policy: ConsentPolicy }[];
  /** MCP server names, one per line or separated by commas. */
  mcpServers: string;
  collections: string[];
  memory: boolean;
  limits: Record<LimitField, string>;
}

function isBuiltin(tool: string): boolean {
  return (builtinTools as readonly string[]).includes(tool);
}

function text(value: number | string | null | undefined): string {
  return value === null || value === undefined ? "" : String(value);
}

export function toFormValues(agent: Agent | null): AgentFormValues {
  const definition: AgentDefinition = agent?.definition ?? {};
  const consent = definition.consent ?? {};
  const limits = definition.limits ?? {};
  return {
    name: agent?.name ?? "",
    description: definition.description ?? "",
    source: definition.prompt ? "prompt" : "instructions",
    instructions: definition.instructions ?? "",
    prompt: definition.prompt ?? "",
    model: definition.model ?? "",
    tools: (definition.tools ?? []).filter(isBuiltin),
    consent: Object.fromEntries(builtinTools.map((tool) => [tool, consent[tool] ?? ""])),
    otherConsent: Object.entries(consent)
      .filter(([tool]) => !isBuiltin(tool))
      .map(([tool, policy]) => ({ tool, policy })),
    mcpServers: (definition.mcp_servers ?? []).join("\n"),
    collections: definition.collections ?? [],
    memory: definition.memory ?? false,
    limits: {
      max_steps: text(limits.max_steps),
      max_model_calls: text(limits.max_model_calls),
      max_tool_calls: text(limits.max_tool_calls),
      max_tokens: text(limits.max_tokens),
      max_duration: text(limits.max_duration),
      ask_after_usd: text(limits.ask_after_usd),
    },
  };
}

function integer(value: string): number | null {
  return value.trim() === "" ? null : Number.parseInt(value, 10);
}

/**
 * A checkbox group's value as a list: React Hook Form gives a group of one checkbox as its value
 * (or false) instead of an array.
 */
export function asList(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === "string");
  return typeof value === "string" && value !== "" ? [value] : [];
}

/** Splits a list written one per line or separated by commas. */
export function splitList(value: string): string[] {
  return value
    .split(/[\n,]/)
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/**
 * The request that defines or replaces an agent from the form. What the form does not edit
 * (hooks, variables, tool calling) is kept from the agent's current definition, as are tools
 * that are not built in.
 */
export function toRequest(values: AgentFormValues, current: Agent | null): AgentRequest {
  const base: AgentDefinition = { ...(current?.definition ?? {}) };
  const consent: Record<string, ConsentPolicy> = {};
  for (const tool of builtinTools) {
    const policy = values.consent[tool];
    if (policy) consent[tool] = policy;
  }
  for (const { tool, policy } of values.otherConsent) {
    if (tool.trim() !== "") consent[tool.trim()] = policy;
  }
  const otherTools = (current?.definition.tools ?? []).filter((tool) => !isBuiltin(tool));
  const limits: Schemas["AgentLimits"] = {
    max_steps: integer(values.limits.max_steps),
    max_model_calls: integer(values.limits.max_model_calls),
    max_tool_calls: integer(values.limits.max_tool_calls),
    max_tokens: integer(values.limits.max_tokens),
    max_duration: values.limits.max_duration.trim() || null,
    ask_after_usd:
      values.limits.ask_after_usd.trim() === "" ? null : Number(values.limits.ask_after_usd),
  };
  const hasLimits = Object.values(limits).some((value) => value !== null);
  const prompt = values.source === "prompt";
  return {
    name: values.name.trim(),
    definition: {
      ...base,
      description: values.description,
      instructions: prompt ? null : values.instructions,
      prompt: prompt ? values.prompt.trim() : null,
      model: values.model === "" ? null : values.model,
      tools: [...asList(values.tools), ...otherTools],
      consent,
      mcp_servers: splitList(values.mcpServers),
      collections: asList(values.collections),
      memory: values.memory,
      limits: hasLimits ? limits : null,
    },
  };
}
