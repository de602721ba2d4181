// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Links from the replay viewer into Grafana (GRAFANA_URL): a trace in Explore, and the search for
 * every trace of a session. The Tempo data source has the fixed uid `tempo`
 * (deploy/config/grafana-datasources.yaml); the way back, Grafana to the viewer, is
 * REPLAY_URL_PREFIX in deploy/config/grafana.env.
 */

export const TEMPO_UID = "tempo";

/** A time range in epoch milliseconds. */
export interface TimeRange {
  from: number;
  to: number;
}

function explore(grafanaUrl: string, query: string, range?: TimeRange): string {
  const pane = {
    datasource: TEMPO_UID,
    queries: [{ refId: "A", datasource: { type: "tempo", uid: TEMPO_UID }, queryType: "traceql", query }],
    range: range ? { from: String(Math.floor(range.from)), to: String(Math.ceil(range.to)) } : { from: "now-1h", to: "now" },
  };
  const base = grafanaUrl.replace(/\/+$/, "");
  return `${base}/explore?schemaVersion=1&orgId=1&panes=${encodeURIComponent(JSON.stringify({ replay: pane }))}`;
}

/** Grafana Explore showing one trace, looked up by id within `range` (Tempo also shifts it by 30 min). */
export function grafanaTraceUrl(grafanaUrl: string, traceId: string, range?: TimeRange): string {
  if (!/^[0-9a-f]{32}$/.test(traceId)) throw new Error(`not a trace id: ${JSON.stringify(traceId)}`);
  return explore(grafanaUrl, traceId, range);
}

/** Grafana Explore searching every trace whose spans carry this session (TraceQL on span.session.id). */
export function grafanaSessionUrl(grafanaUrl: string, sessionId: string, range?: TimeRange): string {
  return explore(grafanaUrl, `{ span.session.id = ${JSON.stringify(sessionId)} }`, range);
}

/** The session's time range, widened by `marginMs` on each side, from the replay API's ISO timestamps. */
export function sessionRange(firstSeen: string, lastSeen: string, marginMs = 5 * 60_000): TimeRange | undefined {
  const from = Date.parse(firstSeen);
  const to = Date.parse(lastSeen);
  if (!Number.isFinite(from) || !Number.isFinite(to)) return undefined;
  return { from: from - marginMs, to: to + marginMs };
}
