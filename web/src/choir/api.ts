// The Choir routes' JSON shapes (docs/api.md, /api/v1/choir/…), the user's bearer token and
// small request helpers. Rule: every request goes to the same origin under /api/v1/choir; the
// token comes from the login link's fragment (#token=…) and lives in sessionStorage only;
// nothing here draws.

import { request, type Answer, type ErrorDetail } from "../api";

export const CHOIR = "/choir";
const TOKEN_KEY = "becomingone.choir.token";

export type MessageStatus = "pending" | "published" | "denied" | "expired" | "refunded";
export type Choice = "approve" | "deny";

export interface Me {
  id: string;
  name: string;
  wallet: number;
}

export interface User {
  id: string;
  name: string;
  wallet: number;
}

export interface Thread {
  id: string;
  title: string;
  balance: number;
  coauthors: string[];
  price: number;
  temperature: number;
  coherence: number | null;
}

export interface Votes {
  approve: string[];
  deny: string[];
}

export interface Message {
  id: string;
  author: string;
  author_name: string;
  text: string;
  status: MessageStatus;
  /** 0 (or null) for a co-author's post; the escrowed stake of a spec. */
  stake: number | null;
  /** Seconds since the epoch. */
  created_at: number;
  votes: Votes;
  /** Seconds since the epoch; null for a post. */
  closes_at: number | null;
}

export interface ThreadDetail extends Thread {
  messages: Message[];
}

export interface Prior {
  message_id: string;
  thread_id: string;
  text: string;
  score: number;
}

/** One WebSocket frame of /choir/threads/{id}/events. */
export interface Frame {
  type: string;
  seq: number;
  data: Record<string, unknown>;
}

export type { Answer, ErrorDetail };

/** The token of a login link's fragment (`#token=…`), or null. */
export function tokenFromHash(hash: string): string | null {
  const text = hash.startsWith("#") ? hash.slice(1) : hash;
  const value = new URLSearchParams(text).get("token");
  return value !== null && value.trim() !== "" ? value.trim() : null;
}

/** The user's token: a login link's fragment wins (it is then kept in sessionStorage and
 * removed from the address bar), else the one this tab kept. */
export function takeToken(): string | null {
  const fromLink = tokenFromHash(location.hash);
  if (fromLink !== null) {
    sessionStorage.setItem(TOKEN_KEY, fromLink);
    history.replaceState(null, "", location.pathname + location.search);
    return fromLink;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Drop the kept token (the server refused it). */
export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A new client id for an optimistic action (echoed back in the server's event). */
export function newClientId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class ChoirApi {
  constructor(readonly token: string | null) {}

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.token !== null) h["Authorization"] = `Bearer ${this.token}`;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  get<T>(path: string): Promise<Answer<T>> {
    return request<T>(CHOIR + path, { headers: this.headers(false) });
  }

  post<T>(path: string, body: unknown): Promise<Answer<T>> {
    return request<T>(CHOIR + path, {
      method: "POST",
      headers: this.headers(true),
      body: JSON.stringify(body),
    });
  }

  /** The thread's event stream URL on this page's host, resuming after `after`. */
  eventsUrl(thread: string, after: number | null): string {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams();
    if (after !== null) q.set("after", String(after));
    if (this.token !== null) q.set("token", this.token);
    const text = q.toString();
    return `${scheme}//${location.host}/api/v1${CHOIR}/threads/${encodeURIComponent(thread)}/events${text ? `?${text}` : ""}`;
  }
}
