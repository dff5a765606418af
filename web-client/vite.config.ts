/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

declare const process: { env: Record<string, string | undefined> };

// `npm run dev` serves the client with hot reload and proxies the WebSocket and
// the HTTP API to a running refine-server (REFINE_DEV_SERVER, default :8080).
const target = process.env.REFINE_DEV_SERVER ?? "http://localhost:8080";

export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    // One CSS file with the page: a view loaded later (src/lib/lazy.ts) needs only its script,
    // which is tried again if the server is out of reach; a stylesheet that failed to load
    // would not be (Vite's preload keeps the failed <link>).
    cssCodeSplit: false,
  },
  server: {
    proxy: {
      "/ws": { target, ws: true, changeOrigin: true },
      "^/r/[^/]+/ws$": { target, ws: true, changeOrigin: true },
      "/api": { target, changeOrigin: true },
      "/healthz": { target, changeOrigin: true },
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
