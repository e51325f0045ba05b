#!/usr/bin/env node
// Splits one refresh, as its worker saw it, from a `perf trace` of the worker (tests/e2e/burst.rs
// with STAGEPASS_BENCH_WORKER_TRACE): `node refresh-split.mjs TRACE` prints one JSON object,
// times in ms:
//   total_ms          from the job arriving on stdin to the answer written on stdout
//   keychain_read_ms  D-Bus traffic before the IdP call (the worker re-reads the stored login
//                     under the refresh lock)
//   idp_ms            from connect() to the IdP to the last byte of its answer
//   keychain_write_ms D-Bus traffic after the IdP's answer (the rotated refresh token saved)
//   other_ms          the rest: lock, parsing, JSON, scheduling between the steps
// The worker logs none of this itself. D-Bus is sendmsg/recvmsg on any socket but the IdP's;
// the IdP's socket is the one connect() reaches with an IPv4/IPv6 address length.
import { readFileSync } from 'node:fs';

const line = /^\s*([\d.]+)\s+\(\s*([\d.]+) ms\):\s+\S+\s+(\w+)\((.*)\)\s+=\s+(-?\d+|0x[0-9a-f]+)/;
const events = [];
for (const text of readFileSync(process.argv[2], 'utf8').split('\n')) {
  const m = line.exec(text);
  if (!m) continue;
  const fd = /(?:^|\s)fd: (\d+)/.exec(m[4]);
  const addrlen = /addrlen: (\d+)/.exec(m[4]);
  events.push({
    t: +m[1],
    end: +m[1] + +m[2],
    call: m[3],
    fd: fd ? +fd[1] : -1,
    addrlen: addrlen ? +addrlen[1] : 0,
    ret: Number(m[5]),
  });
}
const fail = (why) => {
  console.log(JSON.stringify({ error: why, events: events.length }));
  process.exit(0);
};
const job = events.find((e) => e.fd === 0 && e.call === 'read' && e.ret > 0);
const answer = events.findLast((e) => e.fd === 1 && (e.call === 'write' || e.call === 'writev') && e.ret > 0);
if (!job || !answer) fail('no job read on stdin or no answer on stdout in the trace');
const connect = events.find((e) => e.call === 'connect' && e.t >= job.t && (e.addrlen === 16 || e.addrlen === 28));
if (!connect) fail('no connect() to the IdP in the trace');
const idpFd = connect.fd;
const idpIo = events.filter((e) => e.fd === idpFd && e.t >= connect.t && e.t <= answer.t && e.ret > 0
  && /^(read|readv|recvfrom|recvmsg)$/.test(e.call));
const idpEnd = idpIo.length ? Math.max(...idpIo.map((e) => e.end)) : connect.end;
const dbus = events.filter((e) => (e.call === 'sendmsg' || e.call === 'recvmsg') && e.fd !== idpFd
  && e.t >= job.t && e.end <= answer.end && e.ret > 0);
const span = (list) => (list.length ? Math.max(...list.map((e) => e.end)) - Math.min(...list.map((e) => e.t)) : 0);
const round = (v) => +v.toFixed(3);
const total = answer.end - job.t;
const keychainRead = span(dbus.filter((e) => e.end <= connect.t));
const idp = idpEnd - connect.t;
const keychainWrite = span(dbus.filter((e) => e.t >= idpEnd));
console.log(JSON.stringify({
  total_ms: round(total),
  keychain_read_ms: round(keychainRead),
  idp_ms: round(idp),
  keychain_write_ms: round(keychainWrite),
  other_ms: round(total - keychainRead - idp - keychainWrite),
}));
