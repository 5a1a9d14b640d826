import { uploadArtifact } from "@/api/upload";
import { useUploadsStore } from "@/stores/uploads";

/** Uploads dropped files one after another, into the collection given (if any). */
export async function uploadFiles(files: File[], collection: string | null) {
  const uploads = useUploadsStore.getState();
  for (const file of files) {
    const id = crypto.randomUUID();
    uploads.begin(id, file.name);
    try {
      const artifact = await uploadArtifact(file, collection, (percent) => uploads.advance(id, percent));
      uploads.stored(id, artifact.id, artifact.current.index_state);
    } catch (error) {
      uploads.failed(id, error instanceof Error ? error.message : "");
    }
  }
}
