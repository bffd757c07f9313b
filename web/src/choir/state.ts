// The Choir page's state as a pure reducer over two inputs: what the server says (a thread
// snapshot, the thread's WebSocket frames, wallets) and what this user has just asked for
// (local intents: a post, a spec, a vote). An intent shows at once as pending; the server's
// event carrying its client_id (or the 201 answer, once the server state shows its effect)
// settles it; a refusal keeps it, rolled back, with the reason from the error body until the
// user dismisses it. Selectors derive what the three panes draw.
// Rule: no DOM, no clock, no network: the time comes in as an argument, so node tests it.

import type { Choice, ErrorDetail, Frame, Message, MessageStatus, Thread, ThreadDetail, Votes } from "./api";

export type IntentKind = "post" | "spec" | "vote";
/** sending: the request is out; sent: the server took it, its effect is not visible yet;
 * rejected: the server refused it (rolled back, `error` says why). */
export type IntentState = "sending" | "sent" | "rejected";

export interface Intent {
  client_id: string;
  kind: IntentKind;
  thread: string;
  /** The acting user's id. */
  actor: string;
  text: string;
  stake: number;
  /** The spec voted on (a vote). */
  spec: string | null;
  choice: Choice | null;
  state: IntentState;
  /** The server's id of the message (or the spec voted on) once known. */
  message_id: string | null;
  error: ErrorDetail | null;
}

/** One line of the MessageFlow: a message entered a status. */
export interface FlowEntry {
  id: string;
  from: MessageStatus | null;
  to: MessageStatus;
  seq: number | null;
}

export interface ChoirState {
  thread: Thread | null;
  /** Oldest first. */
  messages: Message[];
  /** The newest frame seq applied (the resume token), null before the first. */
  seq: number | null;
  /** The frames applied at `seq` (one transaction makes several frames with one seq). */
  atSeq: string[];
  wallets: Readonly<Record<string, number>>;
  intents: Intent[];
  flow: FlowEntry[];
}

export type Action =
  | { type: "snapshot"; thread: ThreadDetail }
  /** `history`: a frame the socket replays on a first connection, older than the snapshot
   * the page already has: it only moves the resume point. */
  | { type: "frame"; frame: Frame; history?: boolean }
  | { type: "wallet"; user: string; wallet: number }
  | { type: "intent"; intent: Intent }
  | { type: "accepted"; client_id: string; message_id: string | null }
  | { type: "rejected"; client_id: string; error: ErrorDetail }
  | { type: "dismiss"; client_id: string };

export const FLOW_KEEP = 40;
const FINAL: ReadonlySet<string> = new Set(["published", "denied", "expired", "refunded"]);
/** The status a spec's decision event leaves its message in: `approved` publishes it. */
const DECISION: Readonly<Record<string, MessageStatus>> = {
  pending: "pending", approved: "published", denied: "denied", expired: "expired", refunded: "refunded",
};
/** The frame types of a thread's events; others (the socket's `resumed` marker) are skipped. */
export const FRAME_TYPES: ReadonlySet<string> = new Set([...Object.keys(DECISION), "vote", "message", "balance"]);

export function initial(): ChoirState {
  return { thread: null, messages: [], seq: null, atSeq: [], wallets: {}, intents: [], flow: [] };
}

/** A new local intent, pending at once. */
export function intent(
  kind: IntentKind,
  fields: { client_id: string; thread: string; actor: string; text?: string; stake?: number; spec?: string; choice?: Choice },
): Intent {
  return {
    client_id: fields.client_id,
    kind,
    thread: fields.thread,
    actor: fields.actor,
    text: fields.text ?? "",
    stake: fields.stake ?? 0,
    spec: fields.spec ?? null,
    choice: fields.choice ?? null,
    state: "sending",
    message_id: kind === "vote" ? (fields.spec ?? null) : null,
    error: null,
  };
}

export function reduce(state: ChoirState, action: Action): ChoirState {
  switch (action.type) {
    case "snapshot":
      return settle(snapshot(state, action.thread));
    case "frame":
      return settle(frame(state, action.frame, action.history === true));
    case "wallet":
      return { ...state, wallets: { ...state.wallets, [action.user]: action.wallet } };
    case "intent":
      return { ...state, intents: [...state.intents.filter((i) => i.client_id !== action.intent.client_id), action.intent] };
    case "accepted":
      return settle(mapIntent(state, action.client_id, (i) =>
        i.state === "sending" ? { ...i, state: "sent", message_id: action.message_id ?? i.message_id } : i));
    case "rejected":
      return mapIntent(state, action.client_id, (i) => ({ ...i, state: "rejected", error: action.error }));
    case "dismiss":
      return { ...state, intents: state.intents.filter((i) => i.client_id !== action.client_id) };
  }
}

function mapIntent(state: ChoirState, clientId: string, f: (i: Intent) => Intent): ChoirState {
  return { ...state, intents: state.intents.map((i) => (i.client_id === clientId ? f(i) : i)) };
}

function snapshot(state: ChoirState, detail: ThreadDetail): ChoirState {
  const { messages, ...thread } = detail;
  const sameThread = state.thread !== null && state.thread.id === thread.id;
  const before = new Map((sameThread ? state.messages : []).map((m) => [m.id, m.status] as const));
  const flow = sameThread ? [...state.flow] : [];
  for (const m of messages) {
    const was = before.get(m.id) ?? null;
    if (was !== m.status) flow.push({ id: m.id, from: was, to: m.status, seq: null });
  }
  return {
    ...state,
    thread,
    messages: messages.map(normalise),
    seq: sameThread ? state.seq : null,
    atSeq: sameThread ? state.atSeq : [],
    flow: flow.slice(-FLOW_KEEP),
  };
}

function normalise(m: Message): Message {
  return { ...m, votes: { approve: [...(m.votes?.approve ?? [])], deny: [...(m.votes?.deny ?? [])] } };
}

function str(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** The message a frame is about: its id under any of the names the server may use. */
export function frameMessageId(data: Readonly<Record<string, unknown>>): string | null {
  return str(data["message_id"]) ?? str(data["spec_id"]) ?? str(data["spec"]) ?? str(data["id"]);
}

function frame(state: ChoirState, f: Frame, history: boolean): ChoirState {
  if (!FRAME_TYPES.has(f.type)) return state;
  const data = f.data ?? {};
  const key = `${f.type}|${frameMessageId(data) ?? ""}`;
  // Replayed after a resume: an older seq, or a frame of the newest transaction seen already.
  if (state.seq !== null && (f.seq < state.seq || (f.seq === state.seq && state.atSeq.includes(key)))) return state;
  const threadId = str(data["thread_id"]) ?? str(data["thread"]);
  const atSeq = state.seq === f.seq ? [...state.atSeq, key] : [key];
  let next: ChoirState = { ...state, seq: f.seq, atSeq };
  if (history) return next;
  if (state.thread !== null && threadId !== null && threadId !== state.thread.id) return next;
  if (f.type === "balance") return balance(next, data);
  const id = frameMessageId(data);
  if (id === null) return next;
  if (f.type === "vote") next = vote(next, id, data);
  else {
    const status = f.type === "message" ? ((str(data["status"]) ?? "published") as MessageStatus) : DECISION[f.type];
    if (status !== undefined) next = upsert(next, id, status, data, f.seq);
  }
  const cid = str(data["client_id"]);
  if (cid !== null) {
    next = mapIntent(next, cid, (i) => (i.state === "rejected" ? i : { ...i, state: "sent", message_id: i.message_id ?? id }));
  }
  return next;
}

function upsert(state: ChoirState, id: string, status: MessageStatus, data: Readonly<Record<string, unknown>>, seq: number): ChoirState {
  const old = state.messages.find((m) => m.id === id);
  const flow = old?.status === status ? state.flow : [...state.flow, { id, from: old?.status ?? null, to: status, seq }].slice(-FLOW_KEEP);
  if (old !== undefined) {
    const merged: Message = { ...old, status, ...pick(data) };
    return { ...state, flow, messages: state.messages.map((m) => (m.id === id ? merged : m)) };
  }
  const text = str(data["text"]);
  if (text === null) return { ...state, flow }; // only the id: the next snapshot brings the rest
  const votes = data["votes"] as Votes | undefined;
  const m: Message = {
    id,
    author: str(data["author"]) ?? "",
    author_name: str(data["author_name"]) ?? str(data["author"]) ?? "",
    text,
    status,
    stake: num(data["stake"]),
    created_at: num(data["created_at"]) ?? 0,
    votes: { approve: [...(votes?.approve ?? [])], deny: [...(votes?.deny ?? [])] },
    closes_at: num(data["closes_at"]),
  };
  return { ...state, flow, messages: [...state.messages, m] };
}

/** The fields of a frame that may refresh a known message. */
function pick(data: Readonly<Record<string, unknown>>): Partial<Message> {
  const out: Partial<Message> = {};
  const text = str(data["text"]);
  if (text !== null) out.text = text;
  const stake = num(data["stake"]);
  if (stake !== null) out.stake = stake;
  const closes = num(data["closes_at"]);
  if (closes !== null) out.closes_at = closes;
  const votes = data["votes"] as Votes | undefined;
  if (votes !== undefined && Array.isArray(votes.approve) && Array.isArray(votes.deny)) {
    out.votes = { approve: [...votes.approve], deny: [...votes.deny] };
  }
  return out;
}

function vote(state: ChoirState, id: string, data: Readonly<Record<string, unknown>>): ChoirState {
  const voter = str(data["voter"]) ?? str(data["actor"]) ?? str(data["user"]);
  const choice = str(data["choice"]);
  if (voter === null || (choice !== "approve" && choice !== "deny")) return state;
  return {
    ...state,
    messages: state.messages.map((m) => {
      if (m.id !== id || m.votes[choice].includes(voter)) return m;
      return { ...m, votes: { ...m.votes, [choice]: [...m.votes[choice], voter] } };
    }),
  };
}

function balance(state: ChoirState, data: Readonly<Record<string, unknown>>): ChoirState {
  let next = state;
  const wallets = data["wallets"];
  if (typeof wallets === "object" && wallets !== null) {
    const w: Record<string, number> = { ...next.wallets };
    for (const [k, v] of Object.entries(wallets)) if (num(v) !== null) w[k] = v as number;
    next = { ...next, wallets: w };
  }
  const user = str(data["user"]);
  const wallet = num(data["wallet"]);
  if (user !== null && wallet !== null) next = { ...next, wallets: { ...next.wallets, [user]: wallet } };
  if (next.thread !== null) {
    const t: Thread = { ...next.thread };
    for (const key of ["balance", "price", "temperature"] as const) {
      const v = num(data[key]);
      if (v !== null) t[key] = v;
    }
    if (num(data["coherence"]) !== null) t.coherence = data["coherence"] as number;
    if (Array.isArray(data["coauthors"])) t.coauthors = (data["coauthors"] as unknown[]).map(String);
    next = { ...next, thread: t };
  }
  return next;
}

/** Whether a taken intent's effect is visible in the server state (then it is dropped). */
function visible(state: ChoirState, i: Intent): boolean {
  if (i.message_id === null) return false;
  const m = state.messages.find((x) => x.id === i.message_id);
  if (m === undefined) return false;
  if (i.kind !== "vote" || i.choice === null) return true;
  return m.votes[i.choice].includes(i.actor) || FINAL.has(m.status);
}

function settle(state: ChoirState): ChoirState {
  const kept = state.intents.filter((i) => i.state !== "sent" || !visible(state, i));
  return kept.length === state.intents.length ? state : { ...state, intents: kept };
}

// ---- selectors -------------------------------------------------------------------------

export interface ChatRow {
  key: string;
  author: string;
  text: string;
  /** A server status, or "local" for an intent not yet settled. */
  status: MessageStatus | "local";
  stake: number | null;
  /** Seconds since the epoch; null for an intent not yet settled. */
  created_at: number | null;
  intent: Intent | null;
}

/** StreamChat: published messages and pending specs (oldest first) — and `me`'s own specs
 * that were denied or expired, so an author sees what became of them — then this user's
 * unsettled posts and specs of this thread (pending, or rolled back with the reason). */
export function chatRows(state: ChoirState, names: Readonly<Record<string, string>>, me: string | null = null): ChatRow[] {
  const rows: ChatRow[] = state.messages
    .filter((m) => m.status === "published" || m.status === "pending" || (me !== null && m.author === me))
    .map((m) => ({ key: m.id, author: m.author_name || (names[m.author] ?? m.author), text: m.text, status: m.status, stake: m.stake, created_at: m.created_at, intent: null }));
  // A snapshot read before the request's answer may already hold the message, with no
  // client_id: an intent whose id is not known yet owns the first unclaimed message of the
  // same author and text, so it is not shown twice.
  const claimed = new Set(state.intents.map((i) => i.message_id).filter((id) => id !== null));
  for (const i of state.intents) {
    if (i.kind === "vote" || state.thread === null || i.thread !== state.thread.id) continue;
    if (i.message_id !== null && state.messages.some((m) => m.id === i.message_id)) continue;
    if (i.message_id === null && i.state !== "rejected") {
      const same = state.messages.find((m) => !claimed.has(m.id) && m.author === i.actor && m.text === i.text);
      if (same !== undefined) {
        claimed.add(same.id);
        continue;
      }
    }
    rows.push({ key: `local-${i.client_id}`, author: names[i.actor] ?? i.actor, text: i.text, status: "local", stake: i.kind === "spec" ? i.stake : null, created_at: null, intent: i });
  }
  return rows;
}

export interface Approval {
  spec: Message;
  approve: number;
  deny: number;
  /** This user's vote: from the server, or the pending intent's choice. */
  mine: Choice | null;
  /** The vote intent of this user on this spec, if one is unsettled. */
  intent: Intent | null;
  canVote: boolean;
  /** Seconds until the window closes (≤ 0: closed); null when unknown. */
  left: number | null;
}

/** ApprovalPane: the thread's pending specs with tallies (an optimistic vote counted) and
 * whether `me` may vote: a co-author, not the author, no vote yet, the window open. */
export function approvals(state: ChoirState, me: string | null, now: number): Approval[] {
  const coauthor = me !== null && state.thread !== null && state.thread.coauthors.includes(me);
  return state.messages
    .filter((m) => m.status === "pending")
    .map((spec) => {
      const it = state.intents.find((i) => i.kind === "vote" && i.spec === spec.id && i.actor === me) ?? null;
      const server: Choice | null = me === null ? null : spec.votes.approve.includes(me) ? "approve" : spec.votes.deny.includes(me) ? "deny" : null;
      const optimistic = it !== null && it.state !== "rejected" && server === null ? it.choice : null;
      const left = spec.closes_at === null ? null : spec.closes_at - now;
      return {
        spec,
        approve: spec.votes.approve.length + (optimistic === "approve" ? 1 : 0),
        deny: spec.votes.deny.length + (optimistic === "deny" ? 1 : 0),
        mine: server ?? optimistic,
        intent: it,
        canVote: coauthor && spec.author !== me && server === null && optimistic === null && (left === null || left > 0),
        left,
      };
    });
}

/** The wallet as shown: the server's amount less the stakes of specs still being sent. */
export function walletView(state: ChoirState, me: string | null): { wallet: number | null; held: number } {
  if (me === null) return { wallet: null, held: 0 };
  const held = state.intents
    .filter((i) => i.kind === "spec" && i.actor === me && i.state === "sending")
    .reduce((sum, i) => sum + i.stake, 0);
  const w = state.wallets[me];
  return { wallet: w === undefined ? null : w - held, held };
}

/** Messages per status (MessageFlow's counters). */
export function statusCounts(state: ChoirState): Record<MessageStatus, number> {
  const out: Record<MessageStatus, number> = { pending: 0, published: 0, denied: 0, expired: 0, refunded: 0 };
  for (const m of state.messages) out[m.status] += 1;
  return out;
}

/** Whole CHOIR with thin spaces between thousands ("1 000 000"). */
export function amount(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const sign = value < 0 ? "−" : "";
  return sign + String(Math.trunc(Math.abs(value))).replace(/\B(?=(\d{3})+(?!\d))/g, "\u2009");
}

/** Seconds left as a short text: "6d 23h", "3h 05m", "4m 10s", "12s", "closed". */
export function timeLeft(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "–";
  if (seconds <= 0) return "closed";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(s % 60)}s`;
  return `${s}s`;
}
