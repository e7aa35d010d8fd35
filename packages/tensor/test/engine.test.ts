import { beforeAll, describe, expect, it } from "vitest";
import {
  Tensor, add, device, dispose, embedding, full, layerNorm, LimitError, matmul, mul, ones, permute, randn, ReleasedError, ShapeError, softmax, sum,
  tensor, tidy, zeros,
} from "../src/index.js";
import { ready } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

describe("device", () => {
  it("opens with the adapter's limits and reports features", () => {
    const d = device();
    expect(d.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    expect(d.features).toBeInstanceOf(Set);
    for (const f of d.features) expect(["shader-f16", "subgroups", "timestamp-query"]).toContain(f);
  });
});

describe("tensor", () => {
  it("round-trips f32, i32 and u32 data", async () => {
    const a = tensor(new Float32Array([1.5, -2, 3]));
    const b = tensor([1, -2, 3], [3], "i32");
    const c = tensor(new Uint32Array([7, 4294967295]));
    expect(Array.from(await a.toArray())).toEqual([1.5, -2, 3]);
    expect(Array.from(await b.toArray())).toEqual([1, -2, 3]);
    expect(Array.from(await c.toArray())).toEqual([7, 4294967295]);
    expect(b.dtype).toBe("i32");
  });

  it("reshapes as a view and rejects wrong sizes", async () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = a.reshape([3, -1]);
    expect(v.shape).toEqual([3, 2]);
    expect(Array.from(await v.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => a.reshape([4, 2])).toThrow(ShapeError);
    a.dispose();
    expect(Array.from(await v.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("rejects empty shapes and mismatched data", () => {
    expect(() => zeros([0, 3])).toThrow(/positive integer dimensions/);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(ShapeError);
    expect(() => tensor([1.5], [1], "i32")).toThrow(/integer values/);
  });

  it("throws on use after dispose", async () => {
    const a = ones([4]);
    a.dispose();
    expect(a.disposed).toBe(true);
    expect(() => a.reshape([2, 2])).toThrow(ReleasedError);
    await expect(a.toArray()).rejects.toThrow(/released/);
  });

  it("fills tensors larger than one storage binding in chunks", async () => {
    const d = device();
    const n = Math.floor(d.maxBinding / 4) + 1000;
    const t = full([n], 2.5);
    expect(() => t.binding("test")).toThrow(LimitError);
    const tail = t.rangeBinding("test", "t", n - 8, 8);
    expect(tail.binding.size).toBeLessThanOrEqual(d.maxBinding);
    // read the last elements through a leading-axis view
    const rows = t.reshape([n / 8 === Math.floor(n / 8) ? n / 8 : n, -1]);
    const last = await rows.toArray();
    expect(last[n - 1]).toBe(2.5);
    expect(last[0]).toBe(2.5);
    rows.dispose();
    t.dispose();
  });
});

describe("uploads", () => {
  it("uploads and reads back a tensor larger than one storage binding", async () => {
    const n = Math.floor(device().maxBinding / 4) + 4096;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = i % 1009;
    const t = tensor(data);
    const back = await t.toArray();
    expect(back[n - 1]).toBe((n - 1) % 1009);
    expect(back.every((v, i) => v === i % 1009)).toBe(true);
    t.dispose();
  });

  it("write() after recorded reads keeps those reads on the old values", async () => {
    const a = tensor([1, 2, 3, 4]);
    const b = tidy(() => full([4], 0).reshape([4])); // recorded work is pending
    const c = a.reshape([2, 2]); // view of a
    a.write(new Float32Array([5, 6, 7, 8]));
    expect(Array.from(await c.toArray())).toEqual([5, 6, 7, 8]);
    expect(() => a.write(new Float32Array([1]))).toThrow(ShapeError);
    dispose(a, b, c);
  });
});

describe("memory", () => {
  it("tidy disposes intermediates and keeps results", () => {
    const before = device().stats().liveBytes;
    const kept = tidy(() => {
      zeros([100]);
      zeros([200]);
      return { out: ones([10]) };
    });
    expect(kept.out.disposed).toBe(false);
    expect(device().stats().liveBytes).toBe(before + 256);
    kept.out.dispose();
    expect(device().stats().liveBytes).toBe(before);
  });

  it("keeps live bytes flat over thousands of ops", async () => {
    const x = randn([16, 32], 1);
    const w = randn([32, 48], 2);
    const bias = randn([48], 3);
    const ids = tensor([0, 5, 2, 15], [4], "i32");
    const before = device().stats();
    let loss = 0;
    for (let i = 0; i < 1000; i++) {
      tidy(() => {
        const h = matmul(x, w, { bias, activation: "gelu" }); // (16, 48)
        const y = layerNorm(add(h, mul(h, 0.5)), ones([48]), zeros([48]));
        const rows = embedding(y, ids); // (4, 48)
        const s = softmax(permute(rows, [1, 0]));
        return sum(s);
      }).dispose();
      if (i % 250 === 249) {
        const total = sum(x);
        loss += await total.item();
        total.dispose();
      }
    }
    await device().sync();
    const after = device().stats();
    expect(after.dispatches - before.dispatches).toBeGreaterThan(8000);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.pooledBuffers).toBeLessThan(40);
    expect(Number.isFinite(loss)).toBe(true);
    dispose(x, w, bias, ids);
  });

  it("a loop that releases in a different order each step gets the same buffers: bind groups stop growing", async () => {
    const x = randn([8, 8], 7);
    const step = (i: number): void => {
      const ts = [add(x, 1), mul(x, 2), add(x, 3), mul(x, 4)];
      ts.push(add(ts[0]!, ts[1]!), add(ts[2]!, ts[3]!));
      const y = add(ts[4]!, ts[5]!);
      // release in a rotating order: a LIFO pool would hand out a new permutation next step
      for (let k = 0; k < ts.length; k++) ts[(k + i) % ts.length]!.dispose();
      y.dispose();
    };
    step(0);
    step(1);
    const before = device().stats().bindGroups;
    for (let i = 2; i < 50; i++) step(i);
    await device().sync();
    expect(device().stats().bindGroups - before).toBe(0);
    x.dispose();
  });

  it("restores the global setImmediate after a polite wait", async () => {
    const original = globalThis.setImmediate;
    const r = device().recorder;
    for (const polite of [true, false]) {
      r.politeWait = polite;
      const t = tidy(() => matmul(randn([64, 64], 4), randn([64, 64], 5)));
      expect((await t.toArray()).length).toBe(4096);
      expect(globalThis.setImmediate).toBe(original);
      t.dispose();
    }
    r.politeWait = device().adapter.software;
  });

  it("batches dispatches into few submits", async () => {
    await device().sync();
    const s0 = device().stats().submits;
    tidy(() => {
      for (let i = 0; i < 300; i++) zeros([64]);
    });
    await device().sync();
    expect(device().stats().submits - s0).toBeLessThanOrEqual(2);
  });
});

describe("views", () => {
  it("slices aligned leading rows as views", async () => {
    const a = tensor(Array.from({ length: 256 }, (_, i) => i), [4, 64]);
    const v = a.rowsView(1, 3);
    expect(v).toBeInstanceOf(Tensor);
    expect(Array.from(await v!.toArray()).slice(0, 2)).toEqual([64, 65]);
    expect(a.rowsView(1, 2)?.shape).toEqual([1, 64]);
    const b = tensor([1, 2, 3, 4, 5, 6], [3, 2]);
    expect(b.rowsView(1, 2)).toBeUndefined();
  });
});

describe("profiler", () => {
  it("times every dispatch by kernel variant while attached, and nothing after it stops", async () => {
    const rec = device().recorder;
    const prof = rec.profile();
    if (!prof) return; // no timestamp-query on this adapter (lavapipe and GPUs have it)
    try {
      const a = randn([64, 64], 1);
      tidy(() => {
        for (let i = 0; i < 3; i++) add(matmul(a, a), a);
      });
      await device().sync();
      rec.stopProfile();
      tidy(() => add(a, a)); // not timed
      await device().sync();
      const report = await prof.report();
      const adds = report.find((r) => r.kernel.startsWith("elementwise:add"));
      const mms = report.filter((r) => r.kernel.startsWith("matmul:"));
      expect(adds?.calls).toBe(3);
      expect(mms.reduce((s, r) => s + r.calls, 0)).toBe(3);
      expect(report.every((r) => r.ms >= 0 && Number.isFinite(r.ms))).toBe(true);
      expect(report.map((r) => r.ms)).toEqual([...report.map((r) => r.ms)].sort((x, y) => y - x));
      a.dispose();
    } finally {
      rec.stopProfile();
    }
  });
});
