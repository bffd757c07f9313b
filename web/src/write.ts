// The write form: POST /signals with the samples typed in (numbers separated by commas,
// blanks or new lines) and the bearer token typed in. The API's answer is shown as it comes:
// 202 with its counts, or the refusal's code and one-line message (401 without a token).
// Rule: the token lives only in the input field; it is never stored.

import { request } from "./api";

/** Samples typed by a person: numbers separated by commas, blanks or new lines. */
export function parseSamples(text: string): number[] | string {
  const parts = text.split(/[\s,]+/).filter((p) => p.length > 0);
  if (parts.length === 0) return "type at least one sample";
  const out: number[] = [];
  for (const p of parts) {
    const v = Number(p);
    if (!Number.isFinite(v)) return `${JSON.stringify(p)} is not a finite number`;
    out.push(v);
  }
  return out;
}

export function wireWriteForm(form: HTMLFormElement, result: HTMLElement): void {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const samples = parseSamples(String(data.get("samples") ?? ""));
    const token = String(data.get("token") ?? "").trim();
    if (typeof samples === "string") {
      show(result, "refused", `not sent: ${samples}`);
      return;
    }
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (token) headers["Authorization"] = `Bearer ${token}`;
    show(result, "pending", "sending…");
    void request<{ accepted: number; queued_batches: number }>("/signals", {
      method: "POST",
      headers,
      body: JSON.stringify({ samples }),
    }).then((answer) => {
      if (answer.body !== null && answer.status === 202) {
        const b = answer.body;
        show(result, "accepted", `accepted ${b.accepted} sample(s); ${b.queued_batches} batch(es) queued`);
      } else {
        const e = answer.error;
        const why = e ? `${e.code}: ${e.message}` : "no answer";
        show(result, "refused", `refused (${answer.status}) ${why}`);
      }
    });
  });
}

function show(el: HTMLElement, kind: string, text: string): void {
  el.dataset["kind"] = kind;
  el.textContent = text;
}
