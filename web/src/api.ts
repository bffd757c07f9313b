// The API's JSON shapes the dashboard reads (docs/api.md), and small fetch helpers.
// Rule: every request goes to the same origin under /api/v1; nothing here touches the DOM.

export const PREFIX = "/api/v1";

/** One tick: the payload of an `ingest` witness record (one Sync decision). */
export interface Tick {
  t: number;
  master: number;
  emissary: number;
  sync: number;
  delta_phase: number;
  outcome: string;
  n: number;
}

/** One message of the event stream. */
export interface StreamMessage {
  type: string;
  seq: number;
  data: Record<string, unknown>;
  dropped: number;
}

/** One stored history point (`GET /coherence/history`): `phase` is arg(T_sync) in radians. */
export interface HistoryPoint {
  t: number;
  master: number;
  emissary: number;
  sync: number;
  delta_phase: number;
  phase: number;
  n: number;
}

export interface ResonancePublic {
  samples: number;
  dt: number;
  lags: number[];
  omegas: number[];
  power: number[][];
  /** null while fewer than 16 recent samples are kept (then the grid is empty). */
  peak: { lag: number; omega: number; power: number } | null;
}

export interface VerifyPublic {
  ok: boolean;
  /** SQLite's integrity_check: "ok" or what it found. */
  integrity?: string;
  chain_ok?: boolean;
  checked: number;
  first_bad: number | null;
  reason: string | null;
}

/** The one error body of every refusal. */
export interface ErrorDetail {
  code: string;
  message: string;
  field: string | null;
}

/** An answer: the status and the parsed JSON body (null when the body is not JSON). */
export interface Answer<T> {
  status: number;
  body: T | null;
  error: ErrorDetail | null;
}

function errorOf(body: unknown): ErrorDetail | null {
  if (typeof body !== "object" || body === null || !("error" in body)) return null;
  const e = (body as { error: unknown }).error;
  if (typeof e !== "object" || e === null) return null;
  const d = e as Partial<ErrorDetail>;
  return { code: String(d.code ?? "error"), message: String(d.message ?? ""), field: d.field ?? null };
}

/** Send a request; never throws for an HTTP status (a network failure gives status 0). */
export async function request<T>(path: string, init?: RequestInit): Promise<Answer<T>> {
  let response: Response;
  try {
    response = await fetch(PREFIX + path, init);
  } catch (exc) {
    const message = exc instanceof Error ? exc.message : String(exc);
    return { status: 0, body: null, error: { code: "network", message, field: null } };
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = response.ok ? null : errorOf(body);
  return { status: response.status, body: response.ok ? (body as T) : null, error };
}

/** The WebSocket URL of a stream (`path` under /api/v1) on this page's host. */
export function streamUrl(path: string, params: Readonly<Record<string, string>>, since: number | null): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams(params);
  if (since !== null) query.set("since", String(since));
  const text = query.toString();
  return `${scheme}//${location.host}${PREFIX}${path}${text ? `?${text}` : ""}`;
}

/** A number as text with `digits` decimals ("–" when it is missing or not finite). */
export function fmt(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}
