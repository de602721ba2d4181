"use client";

import { useEffect } from "react";

/** Starts browser telemetry once the page is interactive; renders nothing. */
export function Telemetry() {
  useEffect(() => {
    import("../lib/browser-telemetry")
      .then(({ startBrowserTelemetry }) => startBrowserTelemetry())
      .catch((error: unknown) => {
        // The chunk did not load (offline, a deploy replaced it): the app works on without telemetry.
        document.documentElement.dataset.telemetry = "failed";
        console.warn("telemetry did not load:", error);
      });
  }, []);
  return null;
}
