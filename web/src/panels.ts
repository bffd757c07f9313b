// The text panels of a cluster's glyphs and governance: glyphs per owner cell (count,
// energy, ids), each cell's role, the lifecycle stage with each condition (held or not), and
// the proposals with their tallies, decisions and a vote form. A vote is POSTed with the
// token typed in; without one the API's refusal (401) is shown, as the signals form does.
// Rule: renders into the elements it is given; the token is never stored.

import { fmt, request } from "./api";
import type { GlyphState, ProposalRow, RoleState } from "./governance";

function node(tag: string, text: string, attrs: Record<string, string> = {}): HTMLElement {
  const out = document.createElement(tag);
  out.textContent = text;
  for (const [k, v] of Object.entries(attrs)) out.setAttribute(k, v);
  return out;
}

/** One row per owner cell: `cell · n glyphs · energy E` and the glyph ids. */
export function renderGlyphs(list: HTMLElement, state: GlyphState): void {
  const rows = [...state.byOwner()].sort(([a], [b]) => (a < b ? -1 : 1));
  list.replaceChildren(
    ...rows.map(([cell, row]) => {
      const li = node("li", "", { "data-cell": cell, "data-glyphs": row.ids.join(" ") });
      li.append(node("b", cell), node("span", ` ${row.ids.length} glyph(s) · energy ${fmt(row.energy, 1)} `));
      li.append(node("span", row.ids.filter((id) => !id.startsWith("task-")).join(", "), { class: "muted" }));
      return li;
    }),
  );
}

/** Every cell's role, and the lifecycle stage with each condition marked met or not. */
export function renderRoles(table: HTMLElement, stage: HTMLElement, conditions: HTMLElement, state: RoleState): void {
  const cells = [...state.roles].sort(([a], [b]) => (a < b ? -1 : 1));
  table.replaceChildren(
    ...cells.map(([cell, role]) => {
      const li = node("li", "", { "data-cell": cell, "data-role": role ?? "none" });
      li.append(node("span", cell), node("b", role ?? "–"));
      return li;
    }),
  );
  stage.textContent = state.stage;
  stage.dataset["stage"] = state.stage;
  conditions.replaceChildren(
    ...state.conditions.map((c) => {
      const li = node("li", "", { "data-name": c.name, "data-met": String(c.met) });
      li.append(
        node("span", c.met ? "✓" : "✗", { class: "mark" }),
        node("span", ` ${c.name} `),
        node("span", `${fmt(c.value, 2)} / ${fmt(c.threshold, 2)} · for ${c.stage}`, { class: "muted" }),
      );
      return li;
    }),
  );
}

function tally(p: ProposalRow): string {
  return `yes ${p.yes} · no ${p.no} · needs ${p.needed}${p.eligible.length ? ` of ${p.eligible.length}` : ""}`;
}

/** The listed proposals (open first, then decided, newest first) and the automatic counts. */
export function renderProposals(list: HTMLElement, summary: HTMLElement, state: RoleState): void {
  const rows = [...state.proposals.values()].reverse().sort((a, b) => Number(b.status === "open") - Number(a.status === "open"));
  const keep = new Set(rows.map((p) => p.id));
  for (const li of [...list.children] as HTMLElement[]) if (!keep.has(li.dataset["id"] ?? "")) li.remove();
  rows.forEach((p, i) => {
    let li = list.querySelector<HTMLElement>(`li[data-id="${p.id}"]`);
    if (li === null) {
      li = node("li", "", { "data-id": p.id });
      li.append(node("span", "", { class: "what" }), node("span", "", { class: "tally" }), voteForm());
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    li.dataset["status"] = p.status;
    (li.querySelector(".what") as HTMLElement).textContent = `${p.kind}${p.what ? `: ${p.what}` : ""} `;
    (li.querySelector(".tally") as HTMLElement).textContent = `${tally(p)} · ${p.status}`;
    const form = li.querySelector("form") as HTMLFormElement;
    form.hidden = p.status !== "open";
    const pick = form.querySelector("select") as HTMLSelectElement;
    const voters = state.voters(p);
    if (pick.dataset["voters"] !== voters.join(" ")) {
      pick.dataset["voters"] = voters.join(" ");
      pick.replaceChildren(...voters.map((c) => new Option(c, c)));
    }
  });
  const auto = [...state.automatic].map(([k, v]) => `${v} ${k}`).join(", ");
  summary.textContent = auto ? `automatic proposals (roles, intents) decided: ${auto}` : "";
}

function voteForm(): HTMLFormElement {
  const form = document.createElement("form");
  form.className = "vote";
  const pick = document.createElement("select");
  pick.name = "cell";
  pick.setAttribute("aria-label", "vote as cell");
  form.append(pick, node("button", "yes", { type: "submit", value: "yes" }), node("button", "no", { type: "submit", value: "no" }));
  return form;
}

/** Votes from the forms in `list`, with the token in `token`; answers shown in `result`. */
export function wireVotes(list: HTMLElement, token: HTMLInputElement, result: HTMLElement): void {
  list.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const id = form.closest("li")?.dataset["id"] ?? "";
    const submitter = (ev as SubmitEvent).submitter as HTMLButtonElement | null;
    const vote = submitter?.value === "no" ? "no" : "yes";
    const cell = (form.querySelector("select") as HTMLSelectElement).value;
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    const secret = token.value.trim();
    if (secret) headers["Authorization"] = `Bearer ${secret}`;
    show(result, "pending", "voting…");
    void request<ProposalLike>(`/cluster/proposals/${id}/votes`, {
      method: "POST",
      headers,
      body: JSON.stringify({ cell, vote }),
    }).then((answer) => {
      if (answer.body !== null && answer.status === 200) {
        const b = answer.body;
        show(result, "accepted", `${cell} voted ${vote}: yes ${b.yes} · no ${b.no} · ${b.status}`);
      } else {
        const e = answer.error;
        show(result, "refused", `refused (${answer.status}) ${e ? `${e.code}: ${e.message}` : "no answer"}`);
      }
    });
  });
}

interface ProposalLike {
  yes: number;
  no: number;
  status: string;
}

function show(el: HTMLElement, kind: string, text: string): void {
  el.dataset["kind"] = kind;
  el.textContent = text;
}
