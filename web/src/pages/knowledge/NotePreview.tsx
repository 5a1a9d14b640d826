import { lazy, Suspense } from "react";

import type { PreviewProps } from "./NotePreviewRenderer";

const NotePreviewRenderer = lazy(() => import("./NotePreviewRenderer"));

/** The Markdown renderer is fetched the first time a note is shown. */
export function NotePreview(props: PreviewProps) {
  return (
    <Suspense fallback={<p className="whitespace-pre-wrap">{props.text}</p>}>
      <NotePreviewRenderer {...props} />
    </Suspense>
  );
}
