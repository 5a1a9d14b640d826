// A loopback stand-in for an OpenAI-compatible model server, for the agent tests: the local
// model cannot be relied on to call a tool, so the agent's model is scripted. It answers in
// OpenAI's documented chat-completions format, streaming included: a request asking for
// structured output gets a one-step plan; a request with tools and no tool result yet gets a
// `write_file` call; anything else gets a closing sentence.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ScriptedModel {
  url: string;
  close(): Promise<void>;
}

interface ChatRequest {
  model: string;
  stream?: boolean;
  response_format?: unknown;
  tools?: unknown[];
  messages: { role: string; content?: unknown }[];
}

function answer(request: ChatRequest): { content: string | null; toolCall?: object } {
  if (request.response_format) {
    return { content: JSON.stringify({ steps: [{ title: "Write the note", instructions: "write it" }] }) };
  }
  const toolDone = request.messages.some((message) => message.role === "tool");
  if (request.tools?.length && !toolDone) {
    return {
      content: null,
      toolCall: {
        id: "call_1",
        type: "function",
        function: { name: "write_file", arguments: JSON.stringify({ path: "note.txt", content: "hello from kai" }) },
      },
    };
  }
  return { content: "Wrote note.txt." };
}

export async function startScriptedModel(): Promise<ScriptedModel> {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (req.method === "GET" && req.url?.endsWith("/models")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ object: "list", data: [{ id: "scripted-1", object: "model", owned_by: "test" }] }));
        return;
      }
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
        return;
      }
      const request = JSON.parse(body) as ChatRequest;
      const { content, toolCall } = answer(request);
      const finish = toolCall ? "tool_calls" : "stop";
      const usage = { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 };
      if (request.stream) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const delta = toolCall ? { role: "assistant", tool_calls: [{ index: 0, ...toolCall }] } : { role: "assistant", content };
        const chunk = (choice: object, extra: object = {}) =>
          `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "scripted-1", choices: [choice], ...extra })}\n\n`;
        res.write(chunk({ index: 0, delta, finish_reason: null }));
        res.write(chunk({ index: 0, delta: {}, finish_reason: finish }, { usage }));
        res.end("data: [DONE]\n\n");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "c",
          object: "chat.completion",
          created: 1,
          model: "scripted-1",
          choices: [
            {
              index: 0,
              finish_reason: finish,
              message: toolCall ? { role: "assistant", content: null, tool_calls: [toolCall] } : { role: "assistant", content },
            },
          ],
          usage,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
