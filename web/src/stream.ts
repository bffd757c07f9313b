// A WebSocket stream store: connects to /api/v1/events (a cell) or /api/v1/cluster/events
// (a cluster), remembers the last seq it saw and, when
// the connection drops (a server restart), reconnects with ?since=SEQ so the server replays
// what was missed from the stored chain. Rule: this module owns the socket and its retry
// timer, and reports through callbacks; it draws nothing.

import { streamUrl, type StreamMessage } from "./api";

export type ConnectionState = "connecting" | "live" | "reconnecting";

export interface StreamCallbacks {
  message(msg: StreamMessage): void;
  state(state: ConnectionState, detail: string): void;
  /** A `resumed` marker after a reconnect: how many stored records the server replayed after
   * `since`, the last seq seen before the connection was lost (-1: none). */
  resumed(replayed: number, reconnects: number, since: number): void;
}

/** Delay (ms) before reconnect attempt `attempt` (0-based): 250 ms doubling, at most 2 s. */
export function backoff(attempt: number): number {
  return Math.min(2000, 250 * 2 ** Math.min(attempt, 3));
}

export class EventStream {
  private lastSeq: number | null = null;
  private attempt = 0;
  private reconnects = 0;
  private resuming = false;
  private timer: number | null = null;
  private since: number | null = null;

  constructor(
    private readonly path: string,
    private readonly params: Readonly<Record<string, string>>,
    private readonly on: StreamCallbacks,
  ) {}

  /** The seq of the newest event seen (the resume token), or null before the first. */
  get seq(): number | null {
    return this.lastSeq;
  }

  start(): void {
    this.open();
  }

  private open(): void {
    this.timer = null;
    const url = this.url();
    this.on.state(this.resuming ? "reconnecting" : "connecting", url);
    const ws = new WebSocket(url);
    ws.onmessage = (ev: MessageEvent<string>) => this.receive(ev.data);
    ws.onclose = () => this.lost();
  }

  private url(): string {
    this.since = this.resuming ? this.lastSeq : null;
    return streamUrl(this.path, this.params, this.since);
  }

  private receive(text: string): void {
    let msg: StreamMessage;
    try {
      msg = JSON.parse(text) as StreamMessage;
    } catch {
      return;
    }
    if (msg.type === "resumed") {
      this.attempt = 0;
      const replayed = Number(msg.data["replayed"] ?? 0);
      if (this.resuming) {
        this.reconnects += 1;
        this.on.resumed(replayed, this.reconnects, this.since ?? -1);
      }
      this.on.state("live", `${this.reconnects} reconnect(s)`);
      return;
    }
    if (this.lastSeq === null || msg.seq > this.lastSeq) this.lastSeq = msg.seq;
    this.on.message(msg);
  }

  private lost(): void {
    if (this.timer !== null) return;
    this.resuming = true;
    const wait = backoff(this.attempt);
    this.attempt += 1;
    this.on.state("reconnecting", `retry in ${(wait / 1000).toFixed(2)} s`);
    this.timer = window.setTimeout(() => this.open(), wait);
  }
}
