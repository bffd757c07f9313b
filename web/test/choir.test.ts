// Unit tests of the Choir page's reducer (web/src/choir/state.ts): optimistic intents shown at
// once, settled by the server's event with their client_id or by the 201 answer, rolled back
// with the error body's reason; frames applied once (a resume replays), votes tallied,
// the wallet less the stakes in flight, and the small formatters.

import assert from "node:assert/strict";
import { test } from "node:test";

import { tokenFromHash, type Message, type ThreadDetail } from "../src/choir/api";
import { parseFrameText } from "../src/choir/socket";
import {
  amount,
  approvals,
  chatRows,
  initial,
  intent,
  reduce,
  statusCounts,
  timeLeft,
  walletView,
  type Action,
  type ChoirState,
} from "../src/choir/state";

const ADA = "a1a1a1a1a1a1a1a1";
const BOB = "b2b2b2b2b2b2b2b2";
const NAMES = { [ADA]: "ada", [BOB]: "bob" };

function msg(id: string, over: Partial<Message> = {}): Message {
  return {
    id, author: ADA, author_name: "ada", text: `text of ${id}`, status: "published", stake: 0,
    created_at: 1000, votes: { approve: [], deny: [] }, closes_at: null, ...over,
  };
}

function detail(messages: Message[], coauthors = [ADA]): ThreadDetail {
  return { id: "t1", title: "Tuning", balance: 0, coauthors, price: 50, temperature: 0, coherence: null, messages };
}

function run(actions: Action[], from: ChoirState = initial()): ChoirState {
  return actions.reduce(reduce, from);
}

const ERR = { code: "insufficient_funds", message: "stake: insufficient funds: wallet has 1000, needs 5000", field: "stake" };

test("a spec shows at once as local, then the pending event with its client_id settles it", () => {
  let s = run([{ type: "snapshot", thread: detail([msg("m1")]) }, { type: "wallet", user: BOB, wallet: 1000 }]);
  s = reduce(s, { type: "intent", intent: intent("spec", { client_id: "c1", thread: "t1", actor: BOB, text: "night window", stake: 60 }) });
  let rows = chatRows(s, NAMES);
  assert.equal(rows.length, 2);
  assert.equal(rows[1]?.status, "local");
  assert.equal(rows[1]?.author, "bob");
  assert.deepEqual(walletView(s, BOB), { wallet: 940, held: 60 });
  s = reduce(s, { type: "frame", frame: { type: "pending", seq: 7, data: { id: "s1", thread_id: "t1", author: BOB, author_name: "bob", text: "night window", stake: 60, closes_at: 5000, client_id: "c1" } } });
  rows = chatRows(s, NAMES);
  assert.deepEqual(rows.map((r) => [r.key, r.status]), [["m1", "published"], ["s1", "pending"]]);
  assert.equal(s.intents.length, 0);
  assert.equal(s.seq, 7);
});

test("a 201 answer alone keeps the row until the server state shows the message", () => {
  let s = run([{ type: "snapshot", thread: detail([]) }]);
  s = reduce(s, { type: "intent", intent: intent("post", { client_id: "c2", thread: "t1", actor: ADA, text: "hello" }) });
  s = reduce(s, { type: "accepted", client_id: "c2", message_id: "m9" });
  assert.equal(s.intents[0]?.state, "sent");
  assert.equal(chatRows(s, NAMES).length, 1, "still shown while the event is on its way");
  s = reduce(s, { type: "snapshot", thread: detail([msg("m9", { text: "hello" })]) });
  assert.equal(s.intents.length, 0);
  assert.deepEqual(chatRows(s, NAMES).map((r) => r.key), ["m9"]);
});

test("a refused spec rolls back with the error body's reason and gives the stake back", () => {
  let s = run([{ type: "snapshot", thread: detail([]) }, { type: "wallet", user: BOB, wallet: 1000 }]);
  s = reduce(s, { type: "intent", intent: intent("spec", { client_id: "c3", thread: "t1", actor: BOB, text: "all in", stake: 5000 }) });
  assert.equal(walletView(s, BOB).wallet, -4000);
  s = reduce(s, { type: "rejected", client_id: "c3", error: ERR });
  const row = chatRows(s, NAMES)[0];
  assert.equal(row?.intent?.state, "rejected");
  assert.equal(row?.intent?.error?.message, ERR.message);
  assert.deepEqual(walletView(s, BOB), { wallet: 1000, held: 0 });
  s = reduce(s, { type: "frame", frame: { type: "pending", seq: 1, data: { id: "x", text: "other", client_id: "c3" } } });
  assert.equal(s.intents[0]?.state, "rejected", "a rolled-back intent is not revived by a stray event");
  s = reduce(s, { type: "dismiss", client_id: "c3" });
  assert.equal(s.intents.length, 0);
});

test("an optimistic vote counts at once, blocks a second vote, and settles on the vote event", () => {
  const spec = msg("s1", { author: BOB, author_name: "bob", status: "pending", stake: 60, closes_at: 2000 });
  let s = run([{ type: "snapshot", thread: detail([spec]) }]);
  let [a] = approvals(s, ADA, 1000);
  assert.equal(a?.canVote, true);
  assert.equal(a?.left, 1000);
  s = reduce(s, { type: "intent", intent: intent("vote", { client_id: "v1", thread: "t1", actor: ADA, spec: "s1", choice: "approve" }) });
  [a] = approvals(s, ADA, 1000);
  assert.deepEqual([a?.approve, a?.deny, a?.mine, a?.canVote, a?.intent?.state], [1, 0, "approve", false, "sending"]);
  s = reduce(s, { type: "frame", frame: { type: "vote", seq: 3, data: { spec_id: "s1", voter: ADA, choice: "approve", client_id: "v1" } } });
  assert.equal(s.intents.length, 0);
  [a] = approvals(s, ADA, 1000);
  assert.deepEqual([a?.approve, a?.mine, a?.canVote], [1, "approve", false], "counted once, not twice");
  s = reduce(s, { type: "frame", frame: { type: "approved", seq: 4, data: { spec_id: "s1" } } });
  assert.equal(approvals(s, ADA, 1000).length, 0);
  assert.deepEqual(statusCounts(s), { pending: 0, published: 1, denied: 0, expired: 0, refunded: 0 });
  assert.deepEqual(s.flow.map((f) => [f.from, f.to]), [[null, "pending"], ["pending", "published"]]);
});

test("a refused vote gives the tally back and lets the user vote again", () => {
  const spec = msg("s1", { author: BOB, status: "pending", closes_at: 2000 });
  let s = run([{ type: "snapshot", thread: detail([spec]) }]);
  s = reduce(s, { type: "intent", intent: intent("vote", { client_id: "v2", thread: "t1", actor: ADA, spec: "s1", choice: "deny" }) });
  s = reduce(s, { type: "rejected", client_id: "v2", error: { code: "window_closed", message: "vote after the window", field: "spec" } });
  const [a] = approvals(s, ADA, 1000);
  assert.deepEqual([a?.deny, a?.mine, a?.canVote, a?.intent?.error?.code], [0, null, true, "window_closed"]);
});

test("StreamChat shows a decided spec that was not published to its author only", () => {
  const s = run([{ type: "snapshot", thread: detail([msg("m1"), msg("s1", { author: BOB, status: "denied" }), msg("s2", { author: BOB, status: "expired" })]) }]);
  assert.deepEqual(chatRows(s, NAMES, BOB).map((r) => [r.key, r.status]), [["m1", "published"], ["s1", "denied"], ["s2", "expired"]]);
  assert.deepEqual(chatRows(s, NAMES, ADA).map((r) => r.key), ["m1"]);
  assert.deepEqual(chatRows(s, NAMES).map((r) => r.key), ["m1"]);
});

test("who may vote: not the author, not a non-co-author, not after the window", () => {
  const s = run([{ type: "snapshot", thread: detail([msg("s1", { author: BOB, status: "pending", closes_at: 2000 })]) }]);
  assert.equal(approvals(s, BOB, 1000)[0]?.canVote, false, "bob is not a co-author");
  assert.equal(approvals(s, ADA, 2500)[0]?.canVote, false, "the window is over");
  const own = run([{ type: "snapshot", thread: detail([msg("s1", { author: ADA, status: "pending" })]) }]);
  assert.equal(approvals(own, ADA, 0)[0]?.canVote, false, "nobody votes on their own spec");
});

test("one transaction's frames share a seq: all are applied, a replay of them is not", () => {
  let s = run([{ type: "snapshot", thread: detail([msg("s1", { author: BOB, status: "pending" })]) }]);
  const frames: Action[] = [
    { type: "frame", frame: { type: "vote", seq: 6, data: { spec_id: "s1", voter: ADA, choice: "approve" } } },
    { type: "frame", frame: { type: "approved", seq: 6, data: { id: "s1", thread_id: "t1", status: "published" } } },
    { type: "frame", frame: { type: "balance", seq: 6, data: { thread_id: "t1", balance: 0, wallets: { [ADA]: 1050 } } } },
  ];
  s = run(frames, s);
  assert.deepEqual([s.messages[0]?.status, s.messages[0]?.votes.approve, s.wallets[ADA]], ["published", [ADA], 1050]);
  const again = run([...frames, { type: "frame", frame: { type: "resumed", seq: 6, data: { replayed: 3 } } }], s);
  assert.deepEqual(again.flow, s.flow, "nothing applied twice");
  assert.deepEqual([again.seq, again.atSeq.length], [6, 3]);
});

test("history frames (a first connection's replay) only move the resume point", () => {
  let s = run([{ type: "snapshot", thread: detail([msg("s1", { status: "published" })]) }]);
  s = reduce(s, { type: "frame", history: true, frame: { type: "pending", seq: 3, data: { id: "s1", text: "old", status: "pending" } } });
  assert.deepEqual([s.messages[0]?.status, s.messages[0]?.text, s.seq], ["published", "text of s1", 3]);
  assert.deepEqual(s.flow.map((f) => f.to), ["published"], "no published → pending step");
});

test("a frame replayed after a resume (seq not newer) is applied once", () => {
  let s = run([{ type: "snapshot", thread: detail([msg("s1", { author: BOB, status: "pending" })]) }]);
  const f = { type: "vote", seq: 5, data: { spec_id: "s1", voter: ADA, choice: "deny" } };
  s = run([{ type: "frame", frame: f }, { type: "frame", frame: f }], s);
  assert.deepEqual(s.messages[0]?.votes.deny, [ADA]);
  s = reduce(s, { type: "frame", frame: { type: "vote", seq: 4, data: { spec_id: "s1", voter: BOB, choice: "deny" } } });
  assert.deepEqual(s.messages[0]?.votes.deny, [ADA]);
});

test("balance frames update wallets and the thread; another thread's frames are ignored", () => {
  let s = run([{ type: "snapshot", thread: detail([]) }]);
  s = reduce(s, { type: "frame", frame: { type: "balance", seq: 1, data: { thread_id: "t1", balance: 30, price: 61, temperature: 15, wallets: { [ADA]: 1030 } } } });
  assert.deepEqual([s.thread?.balance, s.thread?.price, s.thread?.temperature, s.wallets[ADA]], [30, 61, 15, 1030]);
  s = reduce(s, { type: "frame", frame: { type: "message", seq: 2, data: { id: "z", thread_id: "t9", text: "elsewhere" } } });
  assert.equal(s.messages.length, 0);
  assert.equal(s.seq, 2);
});

test("switching threads starts a new flow and a new resume point", () => {
  let s = run([{ type: "snapshot", thread: detail([msg("m1")]) }, { type: "frame", frame: { type: "message", seq: 9, data: { id: "m2", text: "x" } } }]);
  assert.equal(s.seq, 9);
  s = reduce(s, { type: "snapshot", thread: { ...detail([]), id: "t2" } });
  assert.deepEqual([s.seq, s.flow.length, s.messages.length], [null, 0, 0]);
});

test("formatters: amounts, time left, the login link's token", () => {
  assert.equal(amount(1000000000), "1\u2009000\u2009000\u2009000");
  assert.equal(amount(950), "950");
  assert.equal(amount(null), "–");
  assert.equal(timeLeft(604796), "6d 23h");
  assert.equal(timeLeft(3 * 3600 + 5 * 60), "3h 05m");
  assert.equal(timeLeft(250), "4m 10s");
  assert.equal(timeLeft(0), "closed");
  assert.equal(tokenFromHash("#token=bo1_abc"), "bo1_abc");
  assert.equal(tokenFromHash("#other=1"), null);
  assert.equal(tokenFromHash(""), null);
});

/** A small seeded generator (the runs are the same every time). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

test("any interleaving of answers, frames and snapshots shows each action once and settles it", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rand = lcg(seed);
    const n = 1 + Math.floor(rand() * 5);
    // Each action: a spec or a post, refused (409) or taken (a message with a chain seq).
    const acts = Array.from({ length: n }, (_, k) => ({
      cid: `c${k}`, id: `m${k}`, text: `words ${k}`, kind: rand() < 0.5 ? ("spec" as const) : ("post" as const), ok: rand() < 0.7,
    }));
    const committed: Message[] = [];
    const events: Action[][] = acts.map((a) => [{ type: "intent", intent: intent(a.kind, { client_id: a.cid, thread: "t1", actor: BOB, text: a.text, stake: 60 }) }]);
    let seq = 0;
    acts.forEach((a, k) => {
      if (!a.ok) {
        events[k]?.push({ type: "rejected", client_id: a.cid, error: ERR });
        return;
      }
      seq += 1;
      const m = msg(a.id, { author: BOB, author_name: "bob", text: a.text, status: a.kind === "spec" ? "pending" : "published" });
      const f: Action = { type: "frame", frame: { type: a.kind === "spec" ? "pending" : "message", seq, data: { ...m, thread_id: "t1", client_id: a.cid } } };
      const answer: Action = { type: "accepted", client_id: a.cid, message_id: a.id };
      const snap: Action = { type: "snapshot", thread: detail([...committed, m]) };
      committed.push(m);
      // The answer, the frame and a snapshot read after the commit arrive in any order.
      const tail = [f, answer, snap].sort(() => rand() - 0.5);
      events[k]?.push(...tail);
    });
    // Interleave the actions' streams, each in its own order (frames keep seq order).
    const frames = events.flatMap((e) => e.filter((x) => x.type === "frame"));
    const queues = events.map((e) => e.filter((x) => x.type !== "frame"));
    let s = run([{ type: "snapshot", thread: detail([]) }]);
    let fi = 0;
    while (queues.some((q) => q.length > 0) || fi < frames.length) {
      const open = queues.filter((q) => q.length > 0);
      const useFrame = fi < frames.length && (open.length === 0 || rand() < 0.4);
      const next = useFrame ? frames[fi++] : open[Math.floor(rand() * open.length)]?.shift();
      if (next === undefined) continue;
      s = reduce(s, next);
      const texts = chatRows(s, NAMES).map((r) => r.text);
      assert.equal(new Set(texts).size, texts.length, `seed ${seed}: a message shown twice: ${texts.join(" | ")}`);
    }
    s = reduce(s, { type: "snapshot", thread: detail(committed) });
    const rows = chatRows(s, NAMES);
    for (const a of acts) {
      const shown = rows.filter((r) => r.text === a.text);
      assert.equal(shown.length, 1, `seed ${seed}: ${a.text} shown ${shown.length} times`);
      assert.equal(shown[0]?.intent?.state ?? "server", a.ok ? "server" : "rejected", `seed ${seed}: ${a.text}`);
    }
    assert.deepEqual(s.intents.map((i) => i.state), acts.filter((a) => !a.ok).map(() => "rejected"), `seed ${seed}`);
  }
});

test("socket text: frames with a type and a numeric seq; anything else is not a frame", () => {
  assert.deepEqual(parseFrameText('{"type":"vote","seq":4,"data":{"spec_id":"s1"}}'), { type: "vote", seq: 4, data: { spec_id: "s1" } });
  assert.deepEqual(parseFrameText('{"type":"resumed","seq":-1}'), { type: "resumed", seq: -1, data: {} });
  assert.equal(parseFrameText("not json"), null);
  assert.equal(parseFrameText('{"type":"vote","seq":"4"}'), null);
  assert.equal(parseFrameText("[1,2]"), null);
  assert.equal(parseFrameText("null"), null);
});
