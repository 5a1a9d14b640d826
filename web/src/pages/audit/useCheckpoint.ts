import { useQuery } from "@tanstack/react-query";

import { ApiError } from "@/api/problem";
import { useCheckpoints, useIdentity, type AuditCheckpoint } from "./queries";
import {
  ed25519Supported,
  publicKeyFromDid,
  verifyCheckpoint,
  type CheckpointCheck,
  type Hash,
} from "./verify";

export type CheckpointState =
  | { status: "loading" }
  | { status: "error"; message: string }
  /** No vault yet: the node has no key, so nothing is signed. */
  | { status: "noIdentity" }
  | { status: "none"; did: string }
  /** This browser's WebCrypto lacks Ed25519. */
  | { status: "unsupported"; did: string; checkpoint: AuditCheckpoint }
  | {
      status: "verified" | "failed";
      did: string;
      checkpoint: AuditCheckpoint;
      check: CheckpointCheck;
      /** The node's public key, for entries' signatures. */
      publicKey: Uint8Array | null;
    };

/** A checkpoint whose signature verified: what entries are checked against. */
export interface TrustedCheckpoint {
  size: number;
  root: Hash;
  publicKey: Uint8Array | null;
}

export function trusted(state: CheckpointState): TrustedCheckpoint | null {
  if (state.status !== "verified" || !state.check.root) return null;
  return { size: state.checkpoint.size, root: state.check.root, publicKey: state.publicKey };
}

/** The newest signed checkpoint, verified here against the node's did:key. */
export function useLatestCheckpoint(): CheckpointState {
  const checkpoints = useCheckpoints();
  const identity = useIdentity();
  const latest = checkpoints.data?.at(-1) ?? null;
  const did = identity.data?.did ?? null;
  const verification = useQuery({
    queryKey: ["audit", "checkpoint-check", latest?.body ?? "", latest?.signature ?? "", did],
    enabled: Boolean(latest && did),
    staleTime: Infinity,
    queryFn: async () => {
      if (!latest || !did) throw new Error("nothing to verify");
      if (!(await ed25519Supported())) return null;
      return verifyCheckpoint(latest, did);
    },
  });

  if (identity.error instanceof ApiError && identity.error.status === 409) {
    return { status: "noIdentity" };
  }
  const error = checkpoints.error ?? identity.error ?? verification.error;
  if (error) return { status: "error", message: error.message };
  if (!checkpoints.data || !did) return { status: "loading" };
  if (!latest) return { status: "none", did };
  if (verification.isPending) return { status: "loading" };
  const check = verification.data;
  if (!check) return { status: "unsupported", did, checkpoint: latest };
  return {
    status: check.ok ? "verified" : "failed",
    did,
    checkpoint: latest,
    check,
    publicKey: publicKeyFromDid(did),
  };
}
