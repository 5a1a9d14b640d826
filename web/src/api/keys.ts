/** TanStack Query keys. Everything under `conversations` is persisted for offline reading. */
export const queryKeys = {
  conversations: ["conversations"] as const,
  conversationList: ["conversations", "list"] as const,
  conversation: (id: string) => ["conversations", "detail", id] as const,
  models: ["models"] as const,
  collections: ["collections"] as const,
  artifacts: ["artifacts"] as const,
  knowledgeStatus: ["knowledge-status"] as const,
  agents: ["agents"] as const,
  runs: ["runs"] as const,
  runEvents: (runId: string) => ["runs", runId, "events"] as const,
  pendingRequests: ["requests", "pending"] as const,
  me: ["me"] as const,
  audit: ["audit"] as const,
  sources: (question: string, collections: string[]) => ["sources", question, collections] as const,
};
