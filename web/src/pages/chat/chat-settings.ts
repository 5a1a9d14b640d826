import { create } from "zustand";
import { persist } from "zustand/middleware";

/** What the user chose for a conversation: the model to ask and the knowledge to draw on. */
export interface ConversationSettings {
  model: string | null;
  /** Whether answers draw on the user's knowledge. */
  knowledge: boolean;
  /** The collections they draw on; all of them when empty. */
  collections: string[];
}

/** The key of the settings of a chat not started yet. */
export const NEW_CHAT = "new";

export const defaultSettings: ConversationSettings = {
  model: null,
  knowledge: false,
  collections: [],
};

interface ChatSettingsState {
  byConversation: Record<string, ConversationSettings>;
  update: (key: string, change: Partial<ConversationSettings>) => void;
  /** Gives a chat just started the settings chosen before it existed. */
  adopt: (conversationId: string) => void;
}

export const useChatSettings = create<ChatSettingsState>()(
  persist(
    (set) => ({
      byConversation: {},
      update: (key, change) =>
        set((state) => ({
          byConversation: {
            ...state.byConversation,
            [key]: { ...defaultSettings, ...state.byConversation[key], ...change },
          },
        })),
      adopt: (conversationId) =>
        set((state) => {
          const { [NEW_CHAT]: chosen, ...rest } = state.byConversation;
          return chosen ? { byConversation: { ...rest, [conversationId]: chosen } } : {};
        }),
    }),
    { name: "kai.chat-settings" },
  ),
);

export function useConversationSettings(key: string): ConversationSettings {
  return useChatSettings((state) => state.byConversation[key] ?? defaultSettings);
}
