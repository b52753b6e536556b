/**
 * The dashboard's build (npm run build, scripts/build-web.ts): web/ into web/dist, which
 * `ferry serve` serves at `/`. `npx vite web` serves it for development, the API proxied to a
 * running `ferry serve` (FERRY_URL, default http://127.0.0.1:8080).
 */
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const api = process.env.FERRY_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Where the build goes: sizes are measured by npm run bench:web, not reported here.
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
  server: { proxy: { "/api": { target: api, changeOrigin: false } } },
});
