import { apiUrl } from "@/api/client";
import { ApiError, toProblem } from "@/api/problem";
import { useAuthStore } from "@/auth/store";
import type { components } from "@/api/schema";

type Artifact = components["schemas"]["Artifact"];

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Uploads a file as a new artifact (`POST /api/v1/artifacts`), into `collection` if given,
 * reporting the share of bytes sent (0 to 100). XMLHttpRequest because fetch cannot tell how
 * much of a body was sent. The chat's drops and the knowledge page's uploads both use it.
 */
export function uploadArtifact(
  file: File,
  collection: string | null,
  onProgress: (percent: number) => void,
  signal?: AbortSignal,
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
      if (event.lengthComputable && event.total > 0) {
        onProgress(Math.round((event.loaded / event.total) * 100));
      }
    };
    request.onload = () => {
      const body = parse(request.responseText);
      if (request.status === 201) resolve(body as Artifact);
      else reject(new ApiError(toProblem(body, request.status, request.statusText)));
    };
    request.onerror = () => reject(new Error(request.statusText || "network error"));
    request.onabort = () => reject(new DOMException("aborted", "AbortError"));
    signal?.addEventListener("abort", () => request.abort());
    request.send(file);
  });
}
