// The Choir page (/choir/): signs the user in from the login link's token, lists the threads,
// follows the chosen thread over its WebSocket and refreshes the server's view after each
// frame; the composer posts (a co-author) or submits a spec with a stake (anyone else) and
// shows priors while typing; votes are sent from the ApprovalPane. Every action is an intent
// in the reducer first (shown at once), then settled by the server or rolled back.
// Rule: the only module that talks to the network and owns timers; drawing is render.ts.

import { ChoirApi, forgetToken, newClientId, takeToken, type Choice, type ErrorDetail, type Me, type Message, type Prior, type Thread, type ThreadDetail, type User } from "./api";
import { renderAll } from "./render";
import { ThreadSocket, type SocketState } from "./socket";
import { initial, intent, reduce, type Action, type Intent } from "./state";

const PRIOR_DEBOUNCE_MS = 350;
const REFRESH_DEBOUNCE_MS = 120;

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

function failure(status: number, error: ErrorDetail | null): ErrorDetail {
  return error ?? { code: `http_${status}`, message: `the server answered ${status}`, field: null };
}

class ChoirPage {
  private state = initial();
  private me: Me | null = null;
  private names: Record<string, string> = {};
  private threads: Thread[] = [];
  private socket: ThreadSocket | null = null;
  private drawPending = false;
  private refreshTimer: number | null = null;
  private priorTimer: number | null = null;
  private priorAsked = 0;
  private stakeTouched = false;

  constructor(private readonly api: ChoirApi) {}

  dispatch(action: Action): void {
    this.state = reduce(this.state, action);
    this.draw();
  }

  draw(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      renderAll(
        { state: this.state, me: this.me, names: this.names, now: Date.now() / 1000 },
        {
          vote: (spec, choice) => void this.vote(spec, choice),
          dismiss: (cid) => this.dispatch({ type: "dismiss", client_id: cid }),
          edit: (cid, text) => {
            this.dispatch({ type: "dismiss", client_id: cid });
            el<HTMLTextAreaElement>("text").value = text;
            el<HTMLTextAreaElement>("text").focus();
            this.schedulePriors();
          },
        },
      );
      this.drawComposer();
    });
  }

  async start(): Promise<void> {
    if (this.api.token !== null) {
      const me = await this.api.get<Me>("/me");
      if (me.body !== null) {
        this.me = me.body;
        this.dispatch({ type: "wallet", user: me.body.id, wallet: me.body.wallet });
      } else if (me.status === 401) {
        forgetToken();
        el("signin").textContent = `Read only: this login link's token is not accepted (${me.error?.message ?? "401"}); open a new login link.`;
      }
    }
    el("signin").hidden = this.me !== null;
    el("me").textContent = this.me === null ? "read only" : this.me.name;
    await this.loadUsers();
    await this.loadThreads();
    const wanted = new URLSearchParams(location.search).get("thread");
    const first = this.threads.find((t) => t.id === wanted) ?? this.threads[0];
    if (first !== undefined) await this.open(first.id);
    this.wire();
    window.setInterval(() => this.draw(), 1000); // time left on the specs
  }

  private async loadUsers(): Promise<void> {
    const users = await this.api.get<User[]>("/users");
    for (const u of users.body ?? []) {
      this.names[u.id] = u.name;
      if (u.id !== this.me?.id) this.state = reduce(this.state, { type: "wallet", user: u.id, wallet: u.wallet });
    }
  }

  private async loadThreads(): Promise<void> {
    const answer = await this.api.get<Thread[]>("/threads");
    this.threads = answer.body ?? [];
    const pick = el<HTMLSelectElement>("thread-pick");
    const current = this.state.thread?.id ?? pick.value;
    pick.replaceChildren(...this.threads.map((t) => {
      const o = document.createElement("option");
      o.value = t.id;
      o.textContent = `${t.title} · ${t.balance} CHOIR`;
      return o;
    }));
    if (current) pick.value = current;
  }

  private async open(id: string): Promise<void> {
    this.socket?.stop();
    const detail = await this.api.get<ThreadDetail>(`/threads/${encodeURIComponent(id)}`);
    if (detail.body === null) return;
    this.dispatch({ type: "snapshot", thread: detail.body });
    this.stakeTouched = false;
    el<HTMLSelectElement>("thread-pick").value = id;
    history.replaceState(null, "", `${location.pathname}?thread=${encodeURIComponent(id)}`);
    this.socket = new ThreadSocket(
      (after) => this.api.eventsUrl(id, after),
      () => this.state.seq,
      (frame, history) => {
        this.dispatch({ type: "frame", frame, history });
        if (!history) this.scheduleRefresh();
      },
      (s: SocketState) => {
        el("conn").textContent = s;
        el("conn").dataset["state"] = s;
        if (s === "live") this.scheduleRefresh(); // catch up on anything said while away
      },
    );
    this.socket.start();
  }

  /** After frames settle, read the server's whole view again (the snapshot is the truth). */
  private scheduleRefresh(): void {
    if (this.refreshTimer !== null) window.clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(() => void this.refresh(), REFRESH_DEBOUNCE_MS);
  }

  private async refresh(): Promise<void> {
    this.refreshTimer = null;
    const id = this.state.thread?.id;
    if (id === undefined) return;
    const [detail, me] = await Promise.all([
      this.api.get<ThreadDetail>(`/threads/${encodeURIComponent(id)}`),
      this.me === null ? Promise.resolve(null) : this.api.get<Me>("/me"),
    ]);
    if (detail.body !== null && this.state.thread?.id === id) this.dispatch({ type: "snapshot", thread: detail.body });
    if (me?.body) this.dispatch({ type: "wallet", user: me.body.id, wallet: me.body.wallet });
    await this.loadUsers();
    await this.loadThreads();
  }

  private isCoauthor(): boolean {
    return this.me !== null && this.state.thread !== null && this.state.thread.coauthors.includes(this.me.id);
  }

  private drawComposer(): void {
    const coauthor = this.isCoauthor();
    const thread = this.state.thread;
    el("role").textContent = this.me === null ? "read only" : coauthor ? "co-author" : "guest · specs need a stake";
    el("stake-label").hidden = coauthor || this.me === null;
    el("send").textContent = coauthor ? "Post" : "Submit spec";
    el<HTMLButtonElement>("send").disabled = this.me === null || thread === null;
    const stake = el<HTMLInputElement>("stake");
    if (thread !== null && !this.stakeTouched) stake.value = String(thread.price);
    el("compose-hint").textContent = thread === null ? "" : coauthor
      ? "co-authors post freely"
      : `a spec needs a stake ≥ the price, ${thread.price} CHOIR; co-authors vote on it`;
  }

  private wire(): void {
    el<HTMLSelectElement>("thread-pick").addEventListener("change", (ev) => void this.open((ev.target as HTMLSelectElement).value));
    el<HTMLInputElement>("stake").addEventListener("input", () => { this.stakeTouched = true; });
    el<HTMLTextAreaElement>("text").addEventListener("input", () => this.schedulePriors());
    el<HTMLTextAreaElement>("text").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) el<HTMLFormElement>("composer").requestSubmit();
    });
    el<HTMLFormElement>("composer").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.compose();
    });
    el<HTMLFormElement>("new-thread").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.newThread();
    });
  }

  private async compose(): Promise<void> {
    const thread = this.state.thread;
    const text = el<HTMLTextAreaElement>("text").value.trim();
    if (this.me === null || thread === null || text === "") return;
    const coauthor = this.isCoauthor();
    const stake = Number(el<HTMLInputElement>("stake").value);
    const cid = newClientId();
    const kind = coauthor ? "post" : "spec";
    this.dispatch({ type: "intent", intent: intent(kind, { client_id: cid, thread: thread.id, actor: this.me.id, text, ...(coauthor ? {} : { stake }) }) });
    el<HTMLTextAreaElement>("text").value = "";
    el("priors").hidden = true;
    this.stakeTouched = false;
    const path = `/threads/${encodeURIComponent(thread.id)}/${coauthor ? "messages" : "specs"}`;
    const answer = await this.api.post<Message>(path, coauthor ? { text, client_id: cid } : { text, stake, client_id: cid });
    this.settle(cid, answer.body?.id ?? null, answer.status, answer.error);
  }

  private async vote(spec: string, choice: Choice): Promise<void> {
    if (this.me === null || this.state.thread === null) return;
    const cid = newClientId();
    const it: Intent = intent("vote", { client_id: cid, thread: this.state.thread.id, actor: this.me.id, spec, choice });
    this.dispatch({ type: "intent", intent: it });
    const answer = await this.api.post<unknown>(`/specs/${encodeURIComponent(spec)}/votes`, { choice, client_id: cid });
    this.settle(cid, spec, answer.status, answer.error);
  }

  private settle(cid: string, id: string | null, status: number, error: ErrorDetail | null): void {
    if (status >= 200 && status < 300) {
      this.dispatch({ type: "accepted", client_id: cid, message_id: id });
      this.scheduleRefresh();
    } else {
      this.dispatch({ type: "rejected", client_id: cid, error: failure(status, error) });
    }
  }

  private schedulePriors(): void {
    if (this.priorTimer !== null) window.clearTimeout(this.priorTimer);
    this.priorTimer = window.setTimeout(() => void this.priors(), PRIOR_DEBOUNCE_MS);
  }

  private async priors(): Promise<void> {
    const q = el<HTMLTextAreaElement>("text").value.trim();
    const asked = ++this.priorAsked;
    if (q.length < 3 || this.state.thread === null) {
      el("priors").hidden = true;
      return;
    }
    const query = new URLSearchParams({ q, thread: this.state.thread.id, k: "5" });
    const answer = await this.api.get<Prior[]>(`/search?${query.toString()}`);
    if (asked !== this.priorAsked) return; // a newer query is on its way
    const found = answer.body ?? [];
    el("priors").hidden = found.length === 0;
    el("prior-list").replaceChildren(...found.map((p) => {
      const li = document.createElement("li");
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = p.score.toFixed(2);
      li.append(score, " ", p.text);
      return li;
    }));
  }

  private async newThread(): Promise<void> {
    const input = el<HTMLInputElement>("new-title");
    const title = input.value.trim();
    if (title === "" || this.me === null) return;
    const answer = await this.api.post<Thread>("/threads", { title });
    if (answer.body === null) {
      input.setCustomValidity(failure(answer.status, answer.error).message);
      input.reportValidity();
      return;
    }
    input.value = "";
    input.setCustomValidity("");
    await this.loadThreads();
    await this.open(answer.body.id);
  }
}

void new ChoirPage(new ChoirApi(takeToken())).start();
