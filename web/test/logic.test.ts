// Unit tests of the dashboard's pure logic (node --test on an esbuild bundle; see test.mjs):
// phase wrapping and the order parameter, reconnect backoff, typed samples, cluster frames.

import assert from "node:assert/strict";
import { test } from "node:test";

import { parseFrame } from "../src/cluster";
import { GlyphState, MOVE_MS, RoleState, needed } from "../src/governance";
import { backoff } from "../src/stream";
import { along } from "../src/views/glyphs";
import { paletteRgb } from "../src/views/heatmap";
import { PhaseCircle, wrap } from "../src/views/phase";
import { parseSamples } from "../src/write";

test("wrap is the signed shortest turn in cycles (DESIGN.md §3)", () => {
  assert.equal(wrap(0.25), 0.25);
  assert.equal(wrap(0.75), -0.25);
  assert.ok(Math.abs(wrap(0.95 - 0.05) - -0.1) < 1e-12);
  assert.ok(Math.abs(wrap(-0.9) - 0.1) < 1e-12);
});

test("the circle's dots take the shorter arc and the resultant is Kuramoto R", () => {
  const circle = new PhaseCircle({} as HTMLCanvasElement);
  circle.set([0.95], ["a"]);
  circle.set([0.05], ["a"]);
  circle.step(0.5); // half of the 0.1-cycle turn through 0, not of the 0.9 turn the long way
  assert.ok(Math.abs(circle.resultant().mean) < 1e-9);
  circle.set([0, 0.5], ["a", "b"]);
  assert.ok(circle.resultant().r < 1e-12);
  circle.set([0.1, 0.1, 0.1], ["a", "b", "c"]);
  assert.ok(Math.abs(circle.resultant().r - 1) < 1e-12);
});

test("reconnect backoff doubles from 250 ms and stays at 2 s", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 50].map(backoff), [250, 500, 1000, 2000, 2000, 2000]);
});

test("typed samples: commas, blanks and new lines; a bad number is named", () => {
  assert.deepEqual(parseSamples("0.1, 0.2 0.3\n-4e-2"), [0.1, 0.2, 0.3, -0.04]);
  assert.equal(parseSamples("  "), "type at least one sample");
  assert.equal(parseSamples("1, x"), '"x" is not a finite number');
  assert.equal(parseSamples("Infinity"), '"Infinity" is not a finite number');
});

test("a cluster frame as docs/api.md shows it", () => {
  const frame = parseFrame({
    tick: 73,
    time: 3.65,
    c_cluster: 1.0,
    r: 1.0,
    band: "SHARED",
    rejected: 2,
    rejected_by_reason: { bad_signature: 2 },
    t_global: [0.6, 0.8],
    members: [
      { name: "cell-0000", theta: 0.17, master: null, emissary: null, sync: null, outcome: null },
      { name: "cell-0001", theta: 0.2, master: 0.9, emissary: 0.8, sync: 0.85, outcome: "collapse" },
    ],
  });
  assert.ok(frame !== null);
  assert.equal(frame.band, "SHARED");
  assert.deepEqual(frame.tGlobal, [0.6, 0.8]);
  assert.deepEqual(frame.byReason, { bad_signature: 2 });
  assert.equal(frame.members[0]?.master, null);
  assert.equal(frame.members[1]?.collapsed, true);
  assert.equal(parseFrame(null), null);
});

test("the heatmap palette runs from dark blue to yellow and clamps", () => {
  assert.deepEqual(paletteRgb(0), [13, 8, 135]);
  assert.deepEqual(paletteRgb(1), [240, 249, 33]);
  assert.deepEqual(paletteRgb(-3), paletteRgb(0));
  assert.deepEqual(paletteRgb(7), paletteRgb(1));
});

test("glyph events move glyphs between owners and a migration travels for MOVE_MS", () => {
  const g = new GlyphState();
  g.snapshot({ glyphs: [{ id: "a", owner: "cell-0000", kind: "probe", energy: 50 }] });
  g.apply("glyph.submitted", { id: "b", owner: "cell-0000", kind: "probe", energy: 20 }, 0);
  assert.deepEqual(g.byOwner().get("cell-0000"), { ids: ["a", "b"], energy: 70 });
  g.apply("glyph.migrated", { id: "b", from: "cell-0000", to: "cell-0003", kind: "probe", energy: 20 }, 1000);
  assert.deepEqual(g.byOwner().get("cell-0003"), { ids: ["b"], energy: 20 });
  assert.equal(g.migrations, 1);
  assert.ok(g.travelling(1000 + MOVE_MS / 2));
  assert.ok(!g.travelling(1000 + MOVE_MS));
  g.apply("glyph.fired", { fires: 3, by_cell: { "cell-0000": 3 } }, 0);
  g.apply("glyph.ended", { id: "a", owner: "cell-0000", reason: "cancelled" }, 0);
  assert.equal(g.fires, 3);
  assert.equal(g.byOwner().get("cell-0000"), undefined);
  assert.equal(g.apply("role.assigned", {}, 0), false);
});

test("a travelling dot eases from the old owner to the new one", () => {
  assert.deepEqual(along([0, 0], [10, 20], 0), [0, 0]);
  assert.deepEqual(along([0, 0], [10, 20], 0.5), [5, 10]);
  assert.deepEqual(along([0, 0], [10, 20], 3), [10, 20]);
});

test("roles, the lifecycle and proposals: an automatic proposal is counted, an operator's listed", () => {
  const r = new RoleState();
  r.apply("role.assigned", 5, { cell: "cell-0001", role: "validator" });
  r.apply("role.changed", 9, { cell: "cell-0001", from: "validator", to: "integrator" });
  assert.equal(r.roles.get("cell-0001"), "integrator");
  r.apply("lifecycle.changed", 9, {
    stage: "forming",
    previous: "pre_cluster",
    conditions: { genesis: { stage: "forming", value: 1, threshold: 1, met: true } },
  });
  assert.equal(r.stage, "forming");
  assert.deepEqual(r.conditions.map((c) => [c.name, c.met]), [["genesis", true]]);
  r.apply("proposal.opened", 10, { id: "auto", kind: "intent" });
  r.apply("proposal.decided", 10, { id: "auto", outcome: "passed", yes: 2 });
  assert.equal(r.proposals.size, 0);
  assert.equal(r.automatic.get("passed"), 1);
  // over NATS an automatic proposal decides ticks after it opened: still only counted
  r.apply("proposal.opened", 10, { id: "roles-3", kind: "roles" });
  r.apply("proposal.decided", 13, { id: "roles-3", outcome: "passed", yes: 2 });
  assert.equal(r.proposals.size, 0);
  assert.equal(r.automatic.get("passed"), 2);
  r.apply("proposal.opened", 11, { id: "op", kind: "command" });
  r.apply("proposal.vote", 14, { id: "op", votes: [{ voter: "cell-0002", yes: true }], yes: 1, no: 0, eligible: 2 });
  const p = r.proposals.get("op");
  assert.ok(p !== undefined);
  assert.deepEqual([p.yes, p.no, p.needed, p.voted], [1, 0, 2, ["cell-0002"]]);
  r.apply("proposal.decided", 15, { id: "op", outcome: "passed", yes: 2 });
  assert.equal(r.proposals.get("op")?.status, "passed");
  // an operator's proposal decided in the tick it opened (all votes at once) stays listed
  r.apply("proposal.opened", 20, { id: "fast", kind: "text" });
  r.apply("proposal.decided", 20, { id: "fast", outcome: "rejected", yes: 0 });
  assert.equal(r.proposals.get("fast")?.status, "rejected");
  assert.equal(r.automatic.get("rejected"), undefined);
  assert.deepEqual([1, 2, 3, 5, 8].map(needed), [1, 2, 2, 4, 5]);
});
