// Starts the scripted model and `kai serve` once for the whole run; the returned function
// stops them. The server's address reaches the tests through KAI_E2E_URL.
import path from "node:path";
import { mkdirSync } from "node:fs";

import { startKai } from "./support/kai";
import { startScriptedModel } from "./support/scripted-model";
import { outputDir } from "./playwright.config";

export default async function globalSetup(): Promise<() => Promise<void>> {
  mkdirSync(outputDir, { recursive: true });
  const model = await startScriptedModel();
  const kai = await startKai(model.url, path.join(outputDir, "kai-serve.log"));
  process.env.KAI_E2E_URL = kai.url;
  return async () => {
    await kai.stop();
    await model.close();
  };
}
