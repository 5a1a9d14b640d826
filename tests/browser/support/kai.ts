// Runs a real `kai serve` for the browser tests: a fresh data directory, the default local
// models (from KAI_TEST_MODELS_DIR, as the Rust tests use them), a scripted model for agents,
// and an admin to log in as.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, createWriteStream } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export const ADMIN = "alice";
export const PASSWORD = "correct horse battery staple";

const root = path.resolve(import.meta.dirname, "../../..");

/** The kai binary under test: KAI_BIN, else the debug build. */
export function kaiBinary(): string {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
  return process.env.KAI_BIN ?? path.join(target, "debug", "kai");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Kai {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startKai(modelUrl: string, logFile: string): Promise<Kai> {
  const models = process.env.KAI_TEST_MODELS_DIR;
  if (!models) {
    throw new Error("KAI_TEST_MODELS_DIR must name a model store with smollm2 and minilm (scripts/test fills one)");
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), "kai-browser-"));
  const port = await freePort();
  const config = path.join(dataDir, "kai.toml");
  writeFileSync(
    config,
    [
      "[[providers]]",
      'name = "scripted"',
      'kind = "openai-compatible"',
      `base_url = "${modelUrl}"`,
      "",
      "[[models]]",
      'name = "scripted"',
      'deployments = [{ provider = "scripted", model = "scripted-1" }]',
      "",
    ].join("\n"),
  );
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dataDir,
    KAI_CONFIG: config,
    KAI_DATA_DIR: path.join(dataDir, "data"),
    KAI_BIND: `127.0.0.1:${port}`,
    KAI_LOCAL_MODELS_DIR: models,
    // SmolLM2 sometimes goes on counting or repeating itself to the end of its context: a
    // shorter context bounds how long an answer can take.
    KAI_LOCAL_CONTEXT_SIZE: "1024",
    KAI_LOG_LEVEL: "info,kai=debug",
  };
  const created = spawnSync(kaiBinary(), ["user", "create", "--admin", ADMIN], { env, input: `${PASSWORD}\n` });
  if (created.status !== 0) {
    throw new Error(`kai user create failed: ${created.stderr.toString()}`);
  }
  // A vault that unlocks by itself, so that the audit log is signed; checkpoints every two
  // seconds, so that an entry can be verified in the browser without a minute's wait.
  const keyFile = path.join(dataDir, "vault.key");
  const vault = spawnSync(kaiBinary(), ["vault", "init", "--key-file", keyFile, "--no-passphrase"], { env });
  if (vault.status !== 0) {
    throw new Error(`kai vault init failed: ${vault.stderr.toString()}`);
  }
  Object.assign(env, { KAI_VAULT_KEY_FILE: keyFile, KAI_AUDIT_CHECKPOINT_INTERVAL: "2s" });
  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(kaiBinary(), ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`kai serve exited with ${child.exitCode}; see ${logFile}`);
    }
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`kai serve did not become ready in 60 s; see ${logFile}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    dataDir,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
