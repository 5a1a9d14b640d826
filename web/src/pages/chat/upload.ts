import { apiUrl } from "@/api/client";
import { ApiError, toProblem } from "@/api/problem";
import type { components } from "@/api/schema";
import { useAuthStore } from "@/auth/store";
import { useUploadsStore } from "@/stores/uploads";

type Artifact = components["schemas"]["Artifact"];

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Uploads a file as a new artifact (`POST /api/v1/artifacts`), reporting progress as it goes;
 * XMLHttpRequest because fetch cannot tell how much of a body was sent.
 */
function sendFile(
  file: File,
  collection: string | null,
  onProgress: (percent: number) => void,
): Promise<Artifact> {
  const url = new URL(apiUrl("/api/v1/artifacts"));
  url.searchParams.set("name", file.name);
  if (collection) url.searchParams.set("collection", collection);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    const token = useAuthStore.getState().accessToken;
    if (token) request.setRequestHeader("Authorization", `Bearer ${token}`);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100));
    };
    request.onload = () => {
      const body = parse(request.responseText);
      if (request.status === 201) resolve(body as Artifact);
      else reject(new ApiError(toProblem(body, request.status, request.statusText)));
    };
    request.onerror = () => reject(new Error(request.statusText));
    request.send(file);
  });
}

/** Uploads dropped files one after another, into the collection given (if any). */
export async function uploadFiles(files: File[], collection: string | null) {
  const uploads = useUploadsStore.getState();
  for (const file of files) {
    const id = crypto.randomUUID();
    uploads.begin(id, file.name);
    try {
      const artifact = await sendFile(file, collection, (percent) => uploads.advance(id, percent));
      uploads.stored(id, artifact.id, artifact.current.index_state);
    } catch (error) {
      uploads.failed(id, error instanceof Error ? error.message : "");
    }
  }
}
