// Parts of the page loaded when first needed (the toolkit's views, dialogs, the editor's
// priority inputs). Their file may be out of reach when asked for: the server restarting, or
// the instance that served the page down behind the balancer. A failed load is tried again,
// after 0.5, 1, 2, 4 s and then every 8 s, until it arrives: the view shows when the server is
// back, instead of an error on the page and an empty space. (The page's CSS is one file, loaded
// with the page: vite.config.ts, cssCodeSplit: false; only scripts are loaded late.)

export const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

export interface Sleeper {
  (ms: number): Promise<void>;
}

const sleep: Sleeper = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `load()`, again after each failure (waiting RETRY_DELAYS_MS, the last one repeated). */
export async function retrying<T>(load: () => Promise<T>, wait: Sleeper = sleep): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await load();
    } catch (e) {
      const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
      console.warn(`could not load a part of the page (${String(e)}); trying again in ${delay} ms`);
      await wait(delay);
    }
  }
}

/** A loader that retries (retrying) and, once loaded, answers at once from then on. */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | null = null;
  return () => (loaded ??= retrying(load));
}
