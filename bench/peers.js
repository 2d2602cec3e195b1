'use strict';
// bench/peers.js - the clients of bench/peers.sh for taskd's peers: beanstalkd (its text protocol,
// spoken by the small client below) and BullMQ (on Redis, through the bullmq package; NODE_PATH
// must reach it, see scripts/node-tools.sh bench-dir). It does what bench/pipeline.sh does to
// taskd, against a server that bench/peers.sh started:
//
//   node peers.js run beanstalkd|bullmq PORT OPTIONS_JSON   one measurement; prints "RESULT {json}"
//   node peers.js report RESULTS_JSONL                      the summary table of bench/peers.sh
//
// A measurement, with OPTIONS_JSON {n, clients, submit_procs, worker_procs, worker_conc, poll_ms,
// lat_n, lat_warmup, lat_poll_ms, timeout_s}:
//   1. worker_procs worker processes start and connect. beanstalkd: worker_conc connections each,
//      every one looping reserve -> delete. BullMQ: one Worker each, with a no-op processor and
//      `concurrency` worker_conc.
//   2. submit_procs submitter processes share `clients` connections (a BullMQ Queue each, so a
//      Redis connection each) and submit exactly n jobs, one at a time per connection, each
//      waiting for its answer before the next: beanstalkd `put`, BullMQ `queue.add` (not addBulk).
//      This is what wrk does to taskd: `clients` keep-alive connections, one POST in flight each.
//   3. This process polls the number of finished jobs every poll_ms ms (beanstalkd: `cmd-delete`
//      of `stats`; BullMQ: the completed count) until it is n: tasks/s = n / (all done - first
//      submit). Checks afterwards that every job finished exactly once and nothing is left.
//   4. Latency, on the same server with the same workers: lat_warmup unrecorded jobs, then lat_n,
//      one at a time: submit, then ask for the job's state every lat_poll_ms ms until it is done
//      (beanstalkd: `stats-job` answers NOT_FOUND once the worker deleted it; BullMQ:
//      getJobState() is "completed"); latency = from sending the submit to that answer.
// Times come from process.hrtime (CLOCK_MONOTONIC, one clock for all processes of the machine).
const { fork } = require('child_process');
const fs = require('fs');
const net = require('net');

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
// Blocks for ms milliseconds (fractions too, unlike setTimeout), like Python's time.sleep.
const sleepSync = (ms) => Atomics.wait(sleepBuf, 0, 0, ms);

function fail(msg) {
  process.stderr.write(`peers.js: ${msg}\n`);
  process.exit(1);
}

// --- beanstalkd: one connection, one command answered after another (FIFO) ---------------
class Beanstalk {
  static connect(port) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port }, () => resolve(new Beanstalk(sock)));
      sock.once('error', reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiting = [];
    sock.setNoDelay(true);
    sock.on('data', (d) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.parse();
    });
    sock.on('error', (e) => this.failAll(e));
    sock.on('close', () => this.failAll(new Error('beanstalkd closed the connection')));
  }

  failAll(err) {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  // Answers with a body: RESERVED <id> <bytes>, FOUND <id> <bytes>, OK <bytes>.
  parse() {
    while (this.waiting.length) {
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) return;
      const words = this.buf.toString('latin1', 0, eol).split(' ');
      let end = eol + 2;
      let body = null;
      if (words[0] === 'RESERVED' || words[0] === 'FOUND' || words[0] === 'OK') {
        const len = Number(words[words.length - 1]);
        if (this.buf.length < end + len + 2) return;
        body = this.buf.subarray(end, end + len);
        end += len + 2;
      }
      this.buf = this.buf.subarray(end);
      this.waiting.shift().resolve({ words, body });
    }
  }

  // Sends one command (and a job body for put); resolves to {words, body} of its answer.
  cmd(line, data) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.sock.write(data === undefined ? `${line}\r\n` : `${line}\r\n${data}\r\n`);
    });
  }

  async expect(line, want, data) {
    const r = await this.cmd(line, data);
    if (r.words[0] !== want) throw new Error(`beanstalkd: "${line}" answered "${r.words.join(' ')}"`);
    return r;
  }

  async stats(line = 'stats') {
    const r = await this.expect(line, 'OK');
    const out = {};
    for (const l of r.body.toString().split('\n')) {
      const m = /^([\w-]+): (.*)$/.exec(l);
      if (m) out[m[1]] = /^\d+$/.test(m[2]) ? Number(m[2]) : m[2];
    }
    return out;
  }

  close() {
    this.sock.removeAllListeners('close');
    this.sock.end();
  }
}

const TUBE = 'bench';
const PUT = (i) => {
  const body = `{"i":${i}}`;
  return [`put 1024 0 60 ${Buffer.byteLength(body)}`, body];
};

const beanstalkd = {
  async submitter(port) {
    const c = await Beanstalk.connect(port);
    await c.expect(`use ${TUBE}`, 'USING');
    return {
      submit: async (i) => {
        const [line, body] = PUT(i);
        const r = await c.expect(line, 'INSERTED', body);
        return r.words[1];
      },
      close: async () => c.close(),
    };
  },

  // conc connections, each looping reserve -> delete until stopped.
  async worker(port, conc) {
    const conns = [];
    for (let k = 0; k < conc; k++) {
      const c = await Beanstalk.connect(port);
      await c.expect(`watch ${TUBE}`, 'WATCHING');
      await c.expect('ignore default', 'WATCHING');
      conns.push(c);
    }
    let stopping = false;
    let done = 0;
    const loops = conns.map(async (c) => {
      for (;;) {
        let r;
        try {
          r = await c.cmd('reserve');
        } catch (e) {
          if (stopping) return;
          throw e;
        }
        if (r.words[0] !== 'RESERVED') throw new Error(`reserve answered "${r.words.join(' ')}"`);
        await c.expect(`delete ${r.words[1]}`, 'DELETED');
        done++;
      }
    });
    return {
      done: () => done,
      loops,
      close: async () => {
        stopping = true;
        for (const c of conns) c.sock.destroy();
      },
    };
  },

  async observer(port) {
    const c = await Beanstalk.connect(port);
    return {
      // jobs deleted so far: every job here is deleted by a worker once
      doneCount: async () => (await c.stats())['cmd-delete'],
      isDone: async (id) => {
        const r = await c.cmd(`stats-job ${id}`);
        if (r.words[0] === 'NOT_FOUND') return true;
        if (r.words[0] !== 'OK') throw new Error(`stats-job answered "${r.words.join(' ')}"`);
        return false;
      },
      check: async (n) => {
        const s = await c.stats();
        const t = await c.stats(`stats-tube ${TUBE}`);
        const problems = [];
        if (s['cmd-put'] !== n) problems.push(`cmd-put ${s['cmd-put']} != ${n}`);
        if (s['cmd-delete'] !== n) problems.push(`cmd-delete ${s['cmd-delete']} != ${n}`);
        if (s['cmd-release'] !== 0) problems.push(`cmd-release ${s['cmd-release']}`);
        if (s['job-timeouts'] !== 0) problems.push(`job-timeouts ${s['job-timeouts']}`);
        for (const k of ['current-jobs-ready', 'current-jobs-reserved', 'current-jobs-delayed',
          'current-jobs-buried']) {
          if (t[k] !== 0) problems.push(`${k} ${t[k]}`);
        }
        return { problems };
      },
      close: async () => c.close(),
    };
  },
};

// --- BullMQ ---------------------------------------------------------------------------------
const QUEUE = 'bench';
const connection = (port) => ({ host: '127.0.0.1', port, maxRetriesPerRequest: null });

const bullmq = {
  async submitter(port) {
    const { Queue } = require('bullmq');
    const q = new Queue(QUEUE, { connection: connection(port) });
    await q.waitUntilReady();
    return {
      submit: async (i) => (await q.add('noop', { i })).id,
      close: () => q.close(),
    };
  },

  async worker(port, conc) {
    const { Worker } = require('bullmq');
    let done = 0;
    const w = new Worker(QUEUE, async () => {}, { connection: connection(port), concurrency: conc });
    w.on('completed', () => done++);
    let failed = null;
    w.on('failed', (job, err) => { failed = failed || `job ${job && job.id} failed: ${err}`; });
    w.on('error', (err) => { failed = failed || `worker error: ${err}`; });
    await w.waitUntilReady();
    return {
      done: () => done,
      failed: () => failed,
      loops: [],
      close: () => w.close(),
    };
  },

  async observer(port) {
    const { Queue } = require('bullmq');
    const q = new Queue(QUEUE, { connection: connection(port) });
    await q.waitUntilReady();
    return {
      doneCount: () => q.getCompletedCount(),
      isDone: async (id) => (await q.getJobState(id)) === 'completed',
      check: async (n) => {
        const c = await q.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed',
          'paused', 'prioritized', 'waiting-children');
        const problems = [];
        if (c.completed !== n) problems.push(`completed ${c.completed} != ${n}`);
        for (const [k, v] of Object.entries(c)) if (k !== 'completed' && v !== 0) problems.push(`${k} ${v}`);
        return { problems };
      },
      close: () => q.close(),
    };
  },
};

const PEERS = { beanstalkd, bullmq };

// --- child processes ------------------------------------------------------------------------
// A child gets {role, peer, port, ...} as its first message, answers {ready} when connected,
// and works on {go}; a worker stops on {stop} and then reports how many jobs it finished.
async function child() {
  process.on('disconnect', () => process.exit(1)); // the measuring process is gone
  const msg = await new Promise((resolve) => process.once('message', resolve));
  const peer = PEERS[msg.peer];
  const onError = (e) => {
    process.send({ error: String(e && e.stack ? e.stack : e) }, () => process.exit(1));
  };
  try {
    if (msg.role === 'worker') {
      const w = await peer.worker(msg.port, msg.conc);
      w.loops.forEach((p) => p.catch(onError));
      process.send({ ready: true });
      await new Promise((resolve) => process.once('message', resolve)); // stop
      await w.close();
      process.send({ done: w.done(), failed: w.failed ? w.failed() : null }, () => process.exit(0));
    } else {
      const clients = [];
      for (let k = 0; k < msg.clients; k++) clients.push(await peer.submitter(msg.port));
      process.send({ ready: true });
      await new Promise((resolve) => process.once('message', resolve)); // go
      let next = msg.first;
      const end = msg.first + msg.count;
      let tFirst = null;
      let tLast = null;
      let ok = 0;
      await Promise.all(clients.map(async (c) => {
        while (next < end) {
          const i = next++;
          if (tFirst === null) tFirst = nowMs();
          await c.submit(i);
          ok++;
          tLast = nowMs();
        }
      }));
      await Promise.all(clients.map((c) => c.close()));
      process.send({ ok, t_first: tFirst, t_last: tLast }, () => process.exit(0));
    }
  } catch (e) {
    onError(e);
  }
}

// The children of this process, stopped with it: one stopped by a signal (bench/peers.sh's
// cleanup) would leave them to see their channel close on their own, some time later.
const children = new Set();
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(128 + (sig === 'SIGTERM' ? 15 : 2));
  });
}

function spawn(args) {
  const p = fork(__filename, ['child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(p);
  const inbox = [];
  let waiter = null;
  let gone = null;
  p.on('message', (m) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w.resolve(m);
    } else inbox.push(m);
  });
  p.on('exit', (code, sig) => {
    children.delete(p);
    gone = `exited (${sig || code})`;
    if (waiter) waiter.reject(new Error(`a ${args.role} ${gone}`));
  });
  p.send(args);
  return {
    proc: p,
    // why the child is gone: it exited, or sent an {error} that nobody has received yet
    gone: () => gone || (inbox.find((m) => m.error) || {}).error || null,
    send: (m) => p.send(m),
    // the next message; an {error} from the child, or its exit, fails it
    recv: () => new Promise((resolve, reject) => {
      const take = (m) => (m.error ? reject(new Error(`a ${args.role} failed: ${m.error}`)) : resolve(m));
      if (inbox.length) return take(inbox.shift());
      if (gone) return reject(new Error(`a ${args.role} ${gone}`));
      waiter = { resolve: take, reject };
      return undefined;
    }),
  };
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1] : null);
const median = (v) => {
  const s = v.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function run(peerName, port, o) {
  const peer = PEERS[peerName];
  if (!peer) fail(`unknown peer ${peerName}`);
  if (!(o.n >= o.submit_procs && o.clients >= o.submit_procs && o.submit_procs > 0 && o.worker_procs > 0)) {
    fail('n and clients must each be at least submit_procs, and submit_procs and worker_procs above 0');
  }
  // A server that goes away can leave a client retrying for ever (ioredis does): a watchdog.
  const limit = 2 * o.timeout_s + 60;
  setTimeout(() => fail(`no result after ${limit} s: the run is stuck`), limit * 1000).unref();
  const result = { peer: peerName, options: o, checks: [] };
  const workers = [];
  for (let k = 0; k < o.worker_procs; k++) {
    workers.push(spawn({ role: 'worker', peer: peerName, port, conc: o.worker_conc }));
  }
  const submitters = [];
  const per = Math.floor(o.n / o.submit_procs);
  const cper = Math.floor(o.clients / o.submit_procs);
  for (let k = 0; k < o.submit_procs; k++) {
    const count = per + (k < o.n % o.submit_procs ? 1 : 0);
    const first = k * per + Math.min(k, o.n % o.submit_procs) + 1;
    const clients = cper + (k < o.clients % o.submit_procs ? 1 : 0);
    submitters.push(spawn({ role: 'submitter', peer: peerName, port, clients, first, count }));
  }
  for (const p of [...workers, ...submitters]) await p.recv(); // ready
  const obs = await peer.observer(port);

  // 1. throughput
  const submitted = Promise.all(submitters.map((p) => p.recv()));
  let subFailure = null;
  submitted.catch((e) => { subFailure = e; });
  const deadline = nowMs() + o.timeout_s * 1000;
  for (const p of submitters) p.send({ go: true });
  let tAll = null;
  let count = 0;
  while (nowMs() < deadline && !subFailure) {
    const dead = workers.find((w) => w.gone());
    if (dead) throw new Error(`a worker failed during the run: ${dead.gone()}`);
    count = await obs.doneCount();
    if (count >= o.n) {
      tAll = nowMs();
      break;
    }
    await new Promise((r) => setTimeout(r, o.poll_ms));
  }
  if (subFailure) throw subFailure;
  if (tAll === null) throw new Error(`only ${count} of ${o.n} jobs done after ${o.timeout_s} s`);
  const subs = await submitted;
  const tFirst = Math.min(...subs.map((s) => s.t_first));
  const tLast = Math.max(...subs.map((s) => s.t_last));
  const ok = subs.reduce((a, s) => a + s.ok, 0);
  if (ok !== o.n) result.checks.push(`${ok} of ${o.n} submits answered`);
  await new Promise((r) => setTimeout(r, 100)); // anything done twice would show now
  const chk = await obs.check(o.n);
  result.checks.push(...chk.problems);
  result.tasks_per_s = o.n / ((tAll - tFirst) / 1000);
  result.submit_rate = o.n / ((tLast - tFirst) / 1000);
  result.drain_after_submits_s = (tAll - tLast) / 1000;

  // 2. latency, one job at a time, same server and workers
  if (o.lat_n > 0) {
    const sub = await peer.submitter(port);
    const lat = [];
    const submitOnly = [];
    let polls = 0;
    for (let j = 0; j < o.lat_warmup + o.lat_n; j++) {
      const t0 = nowMs();
      const id = await sub.submit(o.n + 1 + j);
      const t1 = nowMs();
      let k = 0;
      for (;;) {
        k++;
        if (await obs.isDone(id)) break;
        if (nowMs() - t0 > 10000) throw new Error(`job ${id} not done within 10 s`);
        sleepSync(o.lat_poll_ms);
      }
      if (j >= o.lat_warmup) {
        lat.push(nowMs() - t0);
        submitOnly.push(t1 - t0);
        polls += k;
      }
    }
    await sub.close();
    lat.sort((a, b) => a - b);
    submitOnly.sort((a, b) => a - b);
    result.latency = {
      n: o.lat_n, p50_ms: pct(lat, 50), p90_ms: pct(lat, 90), p99_ms: pct(lat, 99),
      max_ms: lat[lat.length - 1], submit_only_p50_ms: pct(submitOnly, 50), polls_per_job: polls / o.lat_n,
    };
  }

  // 3. stop the workers; every job finished once
  for (const w of workers) w.send({ stop: true });
  let finished = 0;
  for (const w of workers) {
    const m = await w.recv();
    finished += m.done;
    if (m.failed) result.checks.push(m.failed);
  }
  const want = o.n + (o.lat_n > 0 ? o.lat_warmup + o.lat_n : 0);
  if (finished !== want) result.checks.push(`workers finished ${finished} jobs, not ${want}`);
  await obs.close();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  if (result.checks.length) fail(`checks failed: ${result.checks.join('; ')}`);
}

// --- report ---------------------------------------------------------------------------------
// RESULTS_JSONL has one line per measured run: {name, round, kind: "taskd"|"peer", result}; a
// taskd result is bench/pipeline.sh's RESULT, a peer's the RESULT of `run` above.
function report(file) {
  const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const names = [...new Set(rows.map((r) => r.name))];
  const fig = (r) => (r.kind === 'taskd'
    ? { tps: r.result.median.tasks_per_s, p50: r.result.median.latency_p50_ms,
      p99: r.result.median.latency_p99_ms, n: r.result.settings.n }
    : { tps: r.result.tasks_per_s, p50: r.result.latency ? r.result.latency.p50_ms : null,
      p99: r.result.latency ? r.result.latency.p99_ms : null, n: r.result.options.n });
  const by = {};
  for (const name of names) {
    const f = rows.filter((r) => r.name === name).map(fig);
    by[name] = {
      tps: median(f.map((x) => x.tps)), tps_all: f.map((x) => x.tps),
      p50: median(f.map((x) => x.p50)), p50_all: f.map((x) => x.p50).filter((x) => x !== null),
      p99: median(f.map((x) => x.p99)), n: f[0].n, label: rows.find((r) => r.name === name).label,
    };
  }
  const rng = (v, d) => (v.length > 1 ? ` (${Math.min(...v).toFixed(d)}-${Math.max(...v).toFixed(d)})` : '');
  const f0 = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(0));
  const f2 = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(2));
  const rounds = Math.max(...rows.map((r) => r.round));
  console.log(`== results: median of ${rounds} round${rounds > 1 ? 's' : ''} (range over rounds)`);
  const w = Math.max(...names.map((n) => by[n].label.length));
  console.log(`${'system'.padEnd(w)}  ${'N'.padStart(6)}  ${'jobs/s end to end'.padEnd(24)}  submit->done p50 ms (range), p99`);
  for (const name of names) {
    const b = by[name];
    console.log(`${b.label.padEnd(w)}  ${String(b.n).padStart(6)}  ${(f0(b.tps) + rng(b.tps_all, 0)).padEnd(24)}  ${f2(b.p50)}${rng(b.p50_all, 2)}, ${f2(b.p99)}`);
  }
  // ratios of the round medians, and their range over the rounds (same round's figures)
  const ratio = (a, b, key, label, higherBetter) => {
    if (!by[a] || !by[b]) return;
    const ra = rows.filter((r) => r.name === a);
    const per = [];
    for (const x of ra) {
      const y = rows.find((r) => r.name === b && r.round === x.round);
      if (y && fig(x)[key] && fig(y)[key]) per.push(fig(x)[key] / fig(y)[key]);
    }
    const m = by[a][key] && by[b][key] ? by[a][key] / by[b][key] : null;
    console.log(`  ${label.padEnd(68)} ${f2(m)}x${rng(per, 2)}  ${higherBetter ? '(>1: taskd faster)' : '(<1: taskd lower)'}`);
    return m;
  };
  console.log('== ratios (taskd / peer; in brackets the range of the per-round ratios)');
  const out = {};
  out.full_vs_bullmq = ratio('taskd_full', 'bullmq', 'tps', 'tasks/s: taskd --sync full / BullMQ (best)', true);
  out.full_vs_f0 = ratio('taskd_full', 'beanstalkd_f0', 'tps', 'tasks/s: taskd --sync full / beanstalkd -f0', true);
  out.normal_vs_bullmq = ratio('taskd_normal', 'bullmq', 'tps', 'tasks/s: taskd --sync normal / BullMQ (best)', true);
  out.normal_vs_default = ratio('taskd_normal', 'beanstalkd_default', 'tps', 'tasks/s: taskd --sync normal / beanstalkd (binlog, default fsync)', true);
  out.lat_full_vs_f0 = ratio('taskd_full', 'beanstalkd_f0', 'p50', 'latency p50: taskd --sync full / beanstalkd -f0', false);
  out.lat_normal_vs_default = ratio('taskd_normal', 'beanstalkd_default', 'p50', 'latency p50: taskd --sync normal / beanstalkd (default fsync)', false);
  out.lat_full_vs_bullmq = ratio('taskd_full', 'bullmq', 'p50', 'latency p50: taskd --sync full / BullMQ', false);
  const summary = {};
  for (const name of names) summary[name] = { tasks_per_s: by[name].tps, tasks_per_s_rounds: by[name].tps_all, latency_p50_ms: by[name].p50, latency_p50_ms_rounds: by[name].p50_all, n: by[name].n };
  console.log(`RESULT ${JSON.stringify({ median: summary, ratios: out })}`);
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'child') return child();
  if (cmd === 'run') return run(args[0], Number(args[1]), JSON.parse(args[2]));
  if (cmd === 'report') return report(args[0]);
  return fail('usage: peers.js run beanstalkd|bullmq PORT OPTIONS_JSON | report RESULTS_JSONL');
}

main().then(() => {
  if (process.argv[2] === 'run') process.exit(0);
}, (e) => fail(e && e.stack ? e.stack : e));
