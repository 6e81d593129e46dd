/// <reference types="vitest/config" />
// Vite builds the console into dist/, which the API serves at "/" (src/logmaster/api/console.py).
// During `npm run dev` the API runs separately; /api is proxied to it (LOGMASTER_API, default :8080).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const api = process.env.LOGMASTER_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    sourcemap: false,
    // The budget is 1 MB of compressed JS on first load; the admin screens are split off.
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      output: {
        manualChunks: {
          react: ["react", "react-dom", "react-router-dom"],
          mantine: ["@mantine/core", "@mantine/hooks", "@mantine/notifications"],
        },
      },
    },
  },
  server: {
    proxy: { "/api": { target: api, ws: true } },
  },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.{ts,tsx}"],
    setupFiles: ["tests/setup.ts"],
    css: false,
  },
});
