// Draws the Choir page from the reducer's state: StreamChat's messages, the ApprovalPane's
// pending specs, the thread's numbers, the MessageFlow and the wallet. Rule: builds elements
// with textContent only (message text is never parsed as HTML) and reads no network; the
// buttons it makes report through the `Handlers` it is given.

import type { Choice, Thread } from "./api";
import { amount, approvals, chatRows, statusCounts, timeLeft, walletView, type ChatRow, type ChoirState } from "./state";

export interface Handlers {
  vote(spec: string, choice: Choice): void;
  dismiss(clientId: string): void;
  /** Put a rolled-back message's text back into the composer (and dismiss it). */
  edit(clientId: string, text: string): void;
}

export interface View {
  state: ChoirState;
  me: { id: string; name: string } | null;
  names: Readonly<Record<string, string>>;
  /** Seconds since the epoch. */
  now: number;
}

function el(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found;
}

function make<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A time as the reader's local hours and minutes. */
function clock(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function clip(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/** The last drawn signature of each list: a list is rebuilt only when what it shows changed
 * (a rebuild under the pointer would swallow a click), the time left is updated in place. */
const drawn = new Map<string, string>();

function changed(list: string, signature: unknown): boolean {
  const text = JSON.stringify(signature);
  if (drawn.get(list) === text) return false;
  drawn.set(list, text);
  return true;
}

export function renderAll(v: View, on: Handlers): void {
  renderChat(v, on);
  renderApprovals(v, on);
  renderThread(v.state.thread, v.names);
  renderFlow(v);
  renderWallet(v);
}

function chatItem(r: ChatRow, mine: boolean, on: Handlers): HTMLLIElement {
  const li = make("li", `msg${mine ? " mine" : ""}`);
  li.dataset["status"] = r.intent === null ? r.status : r.intent.state === "rejected" ? "rejected" : "local";
  if (r.intent !== null) li.dataset["client"] = r.intent.client_id;
  else li.dataset["id"] = r.key;
  const head = make("div", "meta");
  head.append(make("span", "who", r.author));
  if (r.stake !== null && r.stake > 0) head.append(make("span", "stake", `${amount(r.stake)} CHOIR`));
  if (r.created_at !== null && r.created_at > 0) head.append(make("span", "when muted", clock(r.created_at)));
  const label =
    r.intent === null ? (r.status === "pending" ? "pending · awaiting votes" : r.status === "published" ? "" : r.status)
      : r.intent.state === "rejected" ? "rolled back" : "sending…";
  if (label) head.append(make("span", `chip ${li.dataset["status"]}`, label));
  li.append(head, make("p", "text", r.text));
  if (r.intent?.state === "rejected" && r.intent.error !== null) {
    const why = make("p", "reason", r.intent.error.message || r.intent.error.code);
    const x = make("button", "dismiss", "dismiss");
    x.type = "button";
    x.addEventListener("click", () => on.dismiss(r.intent?.client_id ?? ""));
    const again = make("button", "edit", "edit again");
    again.type = "button";
    again.addEventListener("click", () => on.edit(r.intent?.client_id ?? "", r.text));
    why.append(" ", again, " ", x);
    li.append(why);
  }
  return li;
}

function renderChat(v: View, on: Handlers): void {
  const list = el("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const rows = chatRows(v.state, v.names, v.me?.id ?? null);
  if (!changed("chat", [rows, v.me?.name])) return;
  list.replaceChildren(...rows.map((r) => chatItem(r, r.intent !== null || (v.me !== null && r.author === v.me.name), on)));
  if (rows.length === 0) list.append(make("li", "muted empty", "No messages yet."));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderApprovals(v: View, on: Handlers): void {
  const items = approvals(v.state, v.me?.id ?? null, v.now);
  const voters = Math.max(0, (v.state.thread?.coauthors.length ?? 0));
  el("pending-count").textContent = String(items.length);
  el("no-specs").hidden = items.length > 0;
  const lefts = items.map((a) => (a.left === null ? "" : `${timeLeft(a.left)} left`));
  if (!changed("specs", [items.map((a) => ({ ...a, left: a.left !== null && a.left > 0 })), voters])) {
    el("specs").querySelectorAll(".left").forEach((node, i) => { node.textContent = lefts[i] ?? ""; });
    return;
  }
  el("specs").replaceChildren(...items.map((a) => {
    const li = make("li", "spec");
    li.dataset["spec"] = a.spec.id;
    const head = make("div", "meta");
    head.append(make("span", "who", a.spec.author_name || (v.names[a.spec.author] ?? a.spec.author)),
      make("span", "stake", `${amount(a.spec.stake)} CHOIR staked`),
      make("span", "left muted", a.left === null ? "" : `${timeLeft(a.left)} left`));
    const bar = make("div", "tally");
    const eligible = Math.max(1, voters - (v.state.thread?.coauthors.includes(a.spec.author) ? 1 : 0));
    const yes = make("span", "yes");
    yes.style.width = `${(100 * a.approve) / eligible}%`;
    const no = make("span", "no");
    no.style.width = `${(100 * a.deny) / eligible}%`;
    bar.append(yes, no);
    const counts = make("p", "counts muted", `${a.approve} approve · ${a.deny} deny · of ${eligible} co-author${eligible === 1 ? "" : "s"}`);
    li.append(head, make("p", "text", a.spec.text), bar, counts);
    const actions = make("div", "actions");
    if (a.canVote) {
      for (const choice of ["approve", "deny"] as const) {
        const b = make("button", choice, choice === "approve" ? "Approve" : "Deny");
        b.type = "button";
        b.dataset["choice"] = choice;
        b.addEventListener("click", () => on.vote(a.spec.id, choice));
        actions.append(b);
      }
    } else if (a.mine === null && a.intent === null) {
      const why = v.me === null ? "sign in to vote" : a.spec.author === v.me.id ? "your spec: the co-authors vote" : "only co-authors vote";
      actions.append(make("span", "muted", why));
    } else if (a.mine !== null) {
      const pending = a.intent !== null && a.intent.state !== "rejected";
      actions.append(make("span", `chip ${pending ? "local" : a.mine}`, `you: ${a.mine}${pending ? " · sending…" : ""}`));
    }
    if (a.intent?.state === "rejected" && a.intent.error !== null) {
      const why = make("p", "reason", `vote rolled back: ${a.intent.error.message || a.intent.error.code}`);
      const x = make("button", "dismiss", "dismiss");
      x.type = "button";
      x.addEventListener("click", () => on.dismiss(a.intent?.client_id ?? ""));
      why.append(" ", x);
      actions.append(why);
    }
    li.append(actions);
    return li;
  }));
}

function renderThread(t: Thread | null, names: Readonly<Record<string, string>>): void {
  el("thread-title").textContent = t?.title ?? "–";
  el("t-balance").textContent = t === null ? "–" : `${amount(t.balance)} CHOIR`;
  el("t-price").textContent = t === null ? "–" : `${amount(t.price)} CHOIR`;
  el("t-temp").textContent = t === null ? "–" : `${t.temperature.toFixed(1)} per co-author`;
  el("t-coherence").textContent = t === null || t.coherence === null ? "– (too few messages)" : t.coherence.toFixed(3);
  el("t-coauthors").textContent = t === null ? "–" : t.coauthors.map((id) => names[id] ?? id).join(", ");
}

function renderFlow(v: View): void {
  const counts = statusCounts(v.state);
  el("counts").replaceChildren(...(["pending", "published", "denied", "expired", "refunded"] as const).map((s) => {
    const li = make("li", `chip ${s}`, `${s} ${counts[s]}`);
    li.dataset["status"] = s;
    return li;
  }));
  const byId = new Map(v.state.messages.map((m) => [m.id, m] as const));
  const lines = [...v.state.flow].reverse().slice(0, 12);
  if (!changed("flow", [lines, lines.map((f) => byId.get(f.id)?.text ?? "")])) return;
  el("flow-list").replaceChildren(...lines.map((f) => {
    const m = byId.get(f.id);
    const who = m === undefined ? "" : (m.author_name || (v.names[m.author] ?? m.author));
    const li = make("li", "step");
    li.append(make("span", "who", who), make("span", "text", clip(m?.text ?? f.id, 48)));
    const arrow = make("span", "arrow");
    if (f.from !== null) arrow.append(make("span", `chip ${f.from}`, f.from), " → ");
    arrow.append(make("span", `chip ${f.to}`, f.to));
    li.append(arrow);
    return li;
  }));
}

function renderWallet(v: View): void {
  const w = walletView(v.state, v.me?.id ?? null);
  const node = el("wallet");
  node.textContent = w.wallet === null ? "– CHOIR" : `${amount(w.wallet)} CHOIR${w.held > 0 ? ` (${amount(w.held)} held)` : ""}`;
  node.dataset["held"] = String(w.held);
}
