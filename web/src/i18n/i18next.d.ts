import "i18next";

import type agents from "../locales/en/agents.json";
import type audit from "../locales/en/audit.json";
import type auth from "../locales/en/auth.json";
import type chat from "../locales/en/chat.json";
import type common from "../locales/en/common.json";
import type knowledge from "../locales/en/knowledge.json";
import type settings from "../locales/en/settings.json";

declare module "i18next" {
  interface CustomTypeOptions {
    defaultNS: "common";
    resources: {
      common: typeof common;
      auth: typeof auth;
      chat: typeof chat;
      knowledge: typeof knowledge;
      agents: typeof agents;
      settings: typeof settings;
      audit: typeof audit;
    };
  }
}
