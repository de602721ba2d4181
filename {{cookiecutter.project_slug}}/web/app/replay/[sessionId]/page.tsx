// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
// The built-in replay's viewer: /replay/<session id> plays a recorded session and lists its traces.
// GRAFANA_URL is read here, on the server, at each request (lib/server/env.ts).
import type { Metadata } from "next";
import { grafanaUrl } from "../../../lib/server/env";
import { ReplayViewer } from "./viewer";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Session replay", robots: { index: false } };

export default async function ReplayPage({ params }: { params: Promise<{ sessionId: string }> }) {
  const { sessionId } = await params;
  return <ReplayViewer sessionId={sessionId} grafanaUrl={grafanaUrl(process.env)} />;
}
