import { useLayoutEffect, useRef } from "react";

/**
 * Counts the commits of the calling component into its element's `data-renders` attribute, so
 * that tests (and end-to-end checks of a production build) can see which messages re-rendered.
 */
export function useRenderCount<T extends HTMLElement>() {
  const ref = useRef<T>(null);
  const count = useRef(0);
  useLayoutEffect(() => {
    count.current += 1;
    ref.current?.setAttribute("data-renders", String(count.current));
  });
  return ref;
}
