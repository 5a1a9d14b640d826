import type { components } from "./schema";

export type Problem = components["schemas"]["Problem"];

/** A failed API call, carrying the RFC 9457 problem (or OpenAI-style error) the server sent. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail || problem.title);
    this.name = "ApiError";
    this.status = problem.status;
    this.problem = problem;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** Reads whatever error body the server sent (problem+json, or `{error: {message}}` under /v1). */
export function toProblem(body: unknown, status: number, statusText = ""): Problem {
  if (isRecord(body) && typeof body.detail === "string") {
    return {
      type: typeof body.type === "string" ? body.type : "about:blank",
      title: typeof body.title === "string" ? body.title : statusText,
      status: typeof body.status === "number" ? body.status : status,
      detail: body.detail,
      request_id: typeof body.request_id === "string" ? body.request_id : null,
    };
  }
  if (isRecord(body) && isRecord(body.error) && typeof body.error.message === "string") {
    const code = typeof body.error.code === "string" ? body.error.code : "unknown";
    return { type: `urn:kai:problem:${code}`, title: statusText, status, detail: body.error.message };
  }
  return { type: "about:blank", title: statusText, status, detail: statusText };
}
