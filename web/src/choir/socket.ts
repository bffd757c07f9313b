// The thread's WebSocket (/api/v1/choir/threads/{id}/events): frames go to a callback; when
// the connection drops it reconnects with ?after=SEQ (the newest seq the page applied) so the
// server replays what was missed from the ledger's chain. Rule: owns one socket and its retry
// timer; parses frames and draws nothing.

import { backoff } from "../stream";
import type { Frame } from "./api";

export type SocketState = "connecting" | "live" | "reconnecting" | "closed";

/** A frame from the socket's text, or null when it is not one (a control message). */
export function parseFrameText(text: string): Frame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const v = value as Partial<Frame>;
  if (typeof v.type !== "string" || typeof v.seq !== "number") return null;
  const data = typeof v.data === "object" && v.data !== null ? v.data : {};
  return { type: v.type, seq: v.seq, data };
}

export class ThreadSocket {
  private ws: WebSocket | null = null;
  private timer: number | null = null;
  private attempt = 0;
  private stopped = false;

  constructor(
    private readonly url: (after: number | null) => string,
    private readonly after: () => number | null,
    /** `history`: replayed on a first connection (before the `resumed` marker), so older
     * than the snapshot the page read; after a reconnect every frame counts. */
    private readonly onFrame: (frame: Frame, history: boolean) => void,
    private readonly onState: (state: SocketState) => void,
  ) {}

  start(): void {
    this.open(false);
  }

  /** Close for good (the page switched threads). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    this.ws?.close();
    this.ws = null;
    this.onState("closed");
  }

  private open(resuming: boolean): void {
    this.timer = null;
    if (this.stopped) return;
    this.onState(resuming ? "reconnecting" : "connecting");
    const after = this.after();
    let replaying = after === null;
    const ws = new WebSocket(this.url(after));
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("live");
    };
    ws.onmessage = (ev: MessageEvent<string>) => {
      const frame = parseFrameText(ev.data);
      if (frame === null) return;
      if (frame.type === "resumed") {
        replaying = false;
        this.onState("live");
      } else this.onFrame(frame, replaying);
    };
    ws.onclose = () => {
      if (this.stopped || this.ws !== ws) return;
      this.onState("reconnecting");
      const wait = backoff(this.attempt);
      this.attempt += 1;
      this.timer = window.setTimeout(() => this.open(true), wait);
    };
  }
}
