import { create } from "zustand";

import type { components } from "@/api/schema";

type IndexState = components["schemas"]["IndexState"];

export interface Upload {
  id: string;
  name: string;
  /** Bytes sent so far, as a percentage. */
  percent: number;
  status: "uploading" | "stored" | "failed";
  artifactId: string | null;
  indexState: IndexState | null;
  error: string | null;
}

interface UploadsState {
  uploads: Upload[];
  begin: (id: string, name: string) => void;
  advance: (id: string, percent: number) => void;
  stored: (id: string, artifactId: string, indexState: IndexState) => void;
  failed: (id: string, error: string) => void;
  progress: (artifactId: string, indexState: IndexState) => void;
  dismiss: (id: string) => void;
}

function patch(uploads: Upload[], matches: (upload: Upload) => boolean, change: Partial<Upload>) {
  return uploads.map((upload) => (matches(upload) ? { ...upload, ...change } : upload));
}

/** Files dropped into the chat, from their upload to their indexing. */
export const useUploadsStore = create<UploadsState>()((set) => ({
  uploads: [],
  begin: (id, name) =>
    set((state) => ({
      uploads: [
        ...state.uploads,
        { id, name, percent: 0, status: "uploading", artifactId: null, indexState: null, error: null },
      ],
    })),
  advance: (id, percent) =>
    set((state) => ({ uploads: patch(state.uploads, (upload) => upload.id === id, { percent }) })),
  stored: (id, artifactId, indexState) =>
    set((state) => ({
      uploads: patch(state.uploads, (upload) => upload.id === id, {
        status: "stored",
        percent: 100,
        artifactId,
        indexState,
      }),
    })),
  failed: (id, error) =>
    set((state) => ({
      uploads: patch(state.uploads, (upload) => upload.id === id, { status: "failed", error }),
    })),
  progress: (artifactId, indexState) =>
    set((state) => ({
      uploads: patch(state.uploads, (upload) => upload.artifactId === artifactId, { indexState }),
    })),
  dismiss: (id) => set((state) => ({ uploads: state.uploads.filter((upload) => upload.id !== id) })),
}));
