// MQTT.js against a broker on 127.0.0.1: one scenario per run.
//
//   node interop.mjs PORT VERSION SCENARIO      (VERSION 4 = MQTT 3.1.1, 5 = MQTT 5.0)
//   node interop.mjs --list VERSION             (the scenarios that apply to VERSION)
//
// Exits 0 when the scenario held, 1 with the reason on stderr otherwise. Every wait is bounded.
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';

const WAIT_MS = 5000;

function fail(message) {
  throw new Error(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Session {
  constructor(port, version) {
    this.url = `mqtt://127.0.0.1:${port}`;
    this.version = version;
    this.clients = [];
    this.serial = 0;
  }

  id(name) {
    return `js${this.version}-${name}-${process.pid}-${this.serial++}`;
  }

  // Connects, with the message handler in place before CONNACK: a resumed session's queued
  // messages may arrive in the same read as the CONNACK.
  open(clientId, options = {}) {
    return new Promise((resolve, reject) => {
      const c = mqtt.connect(this.url, {
        protocolVersion: this.version,
        clientId,
        reconnectPeriod: 0,
        connectTimeout: WAIT_MS,
        keepalive: 30,
        ...options,
      });
      this.clients.push(c);
      c.inbox = [];
      c.waiters = [];
      c.disconnects = [];
      c.on('message', (topic, payload, packet) => {
        c.inbox.push({ topic, payload, packet });
        for (const wake of c.waiters.splice(0)) wake();
      });
      c.on('disconnect', (packet) => c.disconnects.push(packet));
      const timer = setTimeout(() => reject(new Error(`${clientId}: no CONNACK`)), WAIT_MS);
      c.once('connect', (connack) => {
        clearTimeout(timer);
        c.connack = connack;
        resolve(c);
      });
      c.on('error', (error) => {
        c.lastError = error;
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  // The next `count` messages `c` receives, in arrival order.
  async receive(c, count, ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    while (c.inbox.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) fail(`${c.options.clientId}: got ${c.inbox.length} of ${count} messages`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        c.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return c.inbox.splice(0, count);
  }

  async nothing(c, ms = 300) {
    await sleep(ms);
    check(c.inbox.length === 0, `${c.options.clientId}: unexpected message on ${c.inbox[0]?.topic}`);
  }

  async closeAll() {
    await Promise.all(this.clients.map((c) => (c.connected ? c.endAsync() : c.end(true))));
  }
}

// Options for a session that outlives its connection.
function persistent(version) {
  return version === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false };
}

// Resolves when `c`'s connection is gone; fails after `ms`.
function closed(c, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    if (!c.connected) return resolve();
    const timer = setTimeout(() => reject(new Error(`${c.options.clientId}: still connected`)), ms);
    c.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function samePayload(got, want, what) {
  check(Buffer.compare(Buffer.from(got), Buffer.from(want)) === 0, `${what}: payload differs`);
}

const both = {
  async each_qos(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync('js/q/#', { qos: 2 });
    const pub = await s.open(s.id('pub'));
    // Binary bytes, NUL and all, arrive as sent.
    const body = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x7f, 0]);
    for (const qos of [0, 1, 2]) await pub.publishAsync(`js/q/${qos}`, Buffer.concat([body, Buffer.from([qos])]), { qos });
    const got = await s.receive(sub, 3);
    got.sort((a, b) => a.topic.localeCompare(b.topic));
    for (const qos of [0, 1, 2]) {
      check(got[qos].topic === `js/q/${qos}`, `topic ${got[qos].topic}`);
      check(got[qos].packet.qos === qos, `QoS ${qos} arrived as ${got[qos].packet.qos}`);
      samePayload(got[qos].payload, Buffer.concat([body, Buffer.from([qos])]), `QoS ${qos}`);
    }
  },

  async qos_is_the_lower_of_both(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync({ 'js/d/0': { qos: 0 }, 'js/d/1': { qos: 1 } });
    const pub = await s.open(s.id('pub'));
    await pub.publishAsync('js/d/0', 'a', { qos: 2 });
    await pub.publishAsync('js/d/1', 'b', { qos: 2 });
    const got = await s.receive(sub, 2);
    got.sort((a, b) => a.topic.localeCompare(b.topic));
    check(got[0].packet.qos === 0 && got[1].packet.qos === 1, 'granted QoS not applied'); // [MQTT-3.8.4-8]
  },

  async many_in_order(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync('js/order', { qos: 1 });
    const pub = await s.open(s.id('pub'));
    const count = 500;
    await Promise.all(Array.from({ length: count }, (_, i) => pub.publishAsync('js/order', String(i), { qos: 1 })));
    const got = await s.receive(sub, count);
    got.forEach((m, i) => check(m.payload.toString() === String(i), `message ${i} arrived as ${m.payload}`));
  },

  async retained(s) {
    const pub = await s.open(s.id('pub'));
    await pub.publishAsync('js/r/cfg', 'v1', { qos: 1, retain: true });
    const first = await s.open(s.id('sub'));
    await first.subscribeAsync('js/r/+', { qos: 1 });
    const [m] = await s.receive(first, 1);
    check(m.packet.retain && m.payload.toString() === 'v1', 'retained message not delivered with RETAIN');
    // A live publish is not flagged retained [MQTT-3.3.1-9]...
    await pub.publishAsync('js/r/cfg', 'v2', { qos: 1, retain: true });
    const [live] = await s.receive(first, 1);
    check(!live.packet.retain && live.payload.toString() === 'v2', 'live message carried RETAIN');
    // ...and an empty retained payload clears it [MQTT-3.3.1-10].
    await pub.publishAsync('js/r/cfg', '', { qos: 1, retain: true });
    await s.receive(first, 1);
    const late = await s.open(s.id('late'));
    await late.subscribeAsync('js/r/+', { qos: 1 });
    await s.nothing(late);
  },

  async will_on_abrupt_close(s) {
    const watcher = await s.open(s.id('watch'));
    await watcher.subscribeAsync('js/w/+', { qos: 1 });
    const car = await s.open(s.id('car'), { will: { topic: 'js/w/status', payload: Buffer.from('offline'), qos: 1, retain: false } });
    car.stream.destroy();
    const [m] = await s.receive(watcher, 1);
    check(m.topic === 'js/w/status' && m.payload.toString() === 'offline', 'will not published');
  },

  async no_will_on_clean_disconnect(s) {
    const watcher = await s.open(s.id('watch'));
    await watcher.subscribeAsync('js/w2/+', { qos: 1 });
    const car = await s.open(s.id('car'), { will: { topic: 'js/w2/status', payload: Buffer.from('offline'), qos: 1 } });
    await car.endAsync();
    await s.nothing(watcher, 500); // [MQTT-3.1.2-10]
  },

  async session_resume(s) {
    const carId = s.id('car');
    const car = await s.open(carId, persistent(s.version));
    await car.subscribeAsync('js/s/cmd', { qos: 1 });
    await car.endAsync();
    const platform = await s.open(s.id('platform'));
    for (let i = 0; i < 5; i++) await platform.publishAsync('js/s/cmd', `cmd-${i}`, { qos: 1 });
    const again = await s.open(carId, persistent(s.version));
    check(again.connack.sessionPresent, 'session not present on resume'); // [MQTT-3.2.2-2]
    const got = await s.receive(again, 5);
    got.forEach((m, i) => check(m.payload.toString() === `cmd-${i}`, `queued message ${i} was ${m.payload}`));
    // A clean start drops it [MQTT-3.1.2-4].
    await again.endAsync();
    const fresh = await s.open(carId, { clean: true });
    check(!fresh.connack.sessionPresent, 'clean start kept the session');
  },

  async unsubscribe(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync('js/u/#', { qos: 1 });
    const pub = await s.open(s.id('pub'));
    await pub.publishAsync('js/u/a', 'before', { qos: 1 });
    await s.receive(sub, 1);
    await sub.unsubscribeAsync('js/u/#');
    await pub.publishAsync('js/u/a', 'after', { qos: 1 });
    await s.nothing(sub);
  },

  async large_payload(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync('js/big', { qos: 1 });
    const pub = await s.open(s.id('pub'));
    const body = randomBytes(1024 * 1024);
    await pub.publishAsync('js/big', body, { qos: 1 });
    const [m] = await s.receive(sub, 1, 15000);
    samePayload(m.payload, body, '1 MiB');
  },

  async takeover(s) {
    const carId = s.id('car');
    const first = await s.open(carId);
    const gone = closed(first);
    const second = await s.open(carId);
    await gone; // [MQTT-3.1.4-2]
    if (s.version === 5) {
      check(first.disconnects.some((p) => p.reasonCode === 0x8e), 'no DISCONNECT 0x8E (session taken over)');
    }
    await second.subscribeAsync('js/t', { qos: 1 });
    await second.publishAsync('js/t', 'still here', { qos: 1 });
    await s.receive(second, 1);
  },

  async wildcards(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync({ 'js/x/+/speed': { qos: 0 }, 'js/x/car1/#': { qos: 1 } });
    const pub = await s.open(s.id('pub'));
    for (const t of ['js/x/car1/speed', 'js/x/car2/speed', 'js/x/car1/gps/lat', 'js/x/car2/gps']) {
      await pub.publishAsync(t, t, { qos: 1 });
    }
    // Overlapping filters: at least one copy, at the highest granted QoS; further copies are
    // allowed [MQTT-3.3.4-2]. A topic no filter matches never arrives.
    const first = await s.receive(sub, 3);
    await sleep(300);
    const got = [...first, ...sub.inbox.splice(0)];
    const topics = [...new Set(got.map((m) => m.topic))].sort();
    check(JSON.stringify(topics) === JSON.stringify(['js/x/car1/gps/lat', 'js/x/car1/speed', 'js/x/car2/speed']),
          `wildcard matches were ${topics}`);
    const best = (topic) => Math.max(...got.filter((m) => m.topic === topic).map((m) => m.packet.qos));
    check(best('js/x/car1/speed') === 1, 'overlap not delivered at the highest granted QoS');
    check(best('js/x/car2/speed') === 0 && best('js/x/car1/gps/lat') === 1, 'granted QoS not applied');
  },
};

const v5only = {
  async properties(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync('js/p', { qos: 1 });
    const pub = await s.open(s.id('pub'));
    const properties = {
      payloadFormatIndicator: true,
      contentType: 'application/json',
      responseTopic: 'js/p/reply',
      correlationData: Buffer.from([1, 2, 3, 0]),
      userProperties: { vin: 'LSVAU2180N2183294', fleet: 'north' },
      messageExpiryInterval: 60,
    };
    await pub.publishAsync('js/p', '{"poi": 1}', { qos: 1, properties });
    const [m] = await s.receive(sub, 1);
    const p = m.packet.properties ?? {};
    check(p.payloadFormatIndicator === true, 'payload format indicator lost');
    check(p.contentType === 'application/json', 'content type lost');
    check(p.responseTopic === 'js/p/reply', 'response topic lost');
    samePayload(p.correlationData, properties.correlationData, 'correlation data');
    check(p.userProperties?.vin === 'LSVAU2180N2183294' && p.userProperties?.fleet === 'north', 'user properties lost');
    check(p.messageExpiryInterval > 0 && p.messageExpiryInterval <= 60, `expiry ${p.messageExpiryInterval}`);
  },

  async topic_alias_both_ways(s) {
    const sub = await s.open(s.id('sub'), { properties: { topicAliasMaximum: 4 } });
    await sub.subscribeAsync('js/a/#', { qos: 1 });
    const pub = await s.open(s.id('pub'), { autoAssignTopicAlias: true });
    check((pub.connack.properties?.topicAliasMaximum ?? 0) > 0, 'broker offers no topic aliases');
    const sent = [];
    for (let i = 0; i < 6; i++) {
      const topic = `js/a/vehicle-${i % 2}/telemetry`;
      sent.push(topic);
      await pub.publishAsync(topic, String(i), { qos: 1 });
    }
    const got = await s.receive(sub, 6);
    got.forEach((m, i) => check(m.topic === sent[i] && m.payload.toString() === String(i), `message ${i}: ${m.topic}`));
    // The broker used aliases towards the subscriber: MQTT.js resolved them to the topics above.
    check(got.some((m) => m.packet.properties?.topicAlias > 0), 'broker sent no topic alias');
  },

  async topic_alias_qos2(s) {
    // MQTT.js 5.x resolves an alias for the message it emits at once but keeps a QoS 2 PUBLISH
    // as it arrived until PUBREL: a QoS 2 message sent by alias alone came out with topic ''.
    const sub = await s.open(s.id('sub'), { properties: { topicAliasMaximum: 4 } });
    await sub.subscribeAsync('js/a2/#', { qos: 2 });
    const pub = await s.open(s.id('pub'));
    for (let i = 0; i < 4; i++) await pub.publishAsync('js/a2/vehicle/cmd', String(i), { qos: 2 });
    const got = await s.receive(sub, 4);
    got.forEach((m, i) => check(m.topic === 'js/a2/vehicle/cmd' && m.payload.toString() === String(i),
                                `message ${i}: topic '${m.topic}'`));
  },

  async shared_subscription(s) {
    const a = await s.open(s.id('a'));
    const b = await s.open(s.id('b'));
    await a.subscribeAsync('$share/js/js/sh', { qos: 1 });
    await b.subscribeAsync('$share/js/js/sh', { qos: 1 });
    const pub = await s.open(s.id('pub'));
    const count = 40;
    for (let i = 0; i < count; i++) await pub.publishAsync('js/sh', String(i), { qos: 1 });
    const deadline = Date.now() + WAIT_MS;
    while (a.inbox.length + b.inbox.length < count && Date.now() < deadline) await sleep(20);
    await sleep(200); // a copy too many would arrive now
    const got = [...a.inbox, ...b.inbox].map((m) => Number(m.payload.toString())).sort((x, y) => x - y);
    check(got.length === count && got.every((v, i) => v === i), `group received ${got.length} of ${count}, each once`);
  },

  async subscription_identifier(s) {
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync('js/id/+', { qos: 1, properties: { subscriptionIdentifier: 77 } });
    const pub = await s.open(s.id('pub'));
    await pub.publishAsync('js/id/x', 'x', { qos: 1 });
    const [m] = await s.receive(sub, 1);
    const ids = [m.packet.properties?.subscriptionIdentifier].flat();
    check(ids.includes(77), `subscription identifier ${ids}`); // [MQTT-3.3.4-3]
  },

  async no_local_and_retain_as_published(s) {
    const c = await s.open(s.id('self'));
    await c.subscribeAsync('js/nl', { qos: 1, nl: true });
    await c.publishAsync('js/nl', 'mine', { qos: 1 });
    await s.nothing(c); // [MQTT-3.8.3-3]
    const pub = await s.open(s.id('pub'));
    await pub.publishAsync('js/rap', 'kept', { qos: 1, retain: true });
    const sub = await s.open(s.id('sub'));
    await sub.subscribeAsync('js/rap', { qos: 1, rap: true });
    await s.receive(sub, 1);
    await pub.publishAsync('js/rap', 'live', { qos: 1, retain: true });
    const [live] = await s.receive(sub, 1);
    check(live.packet.retain, 'Retain As Published not honoured'); // [MQTT-3.3.1-12]
    await pub.publishAsync('js/rap', '', { qos: 1, retain: true });
  },

  async message_expiry_while_offline(s) {
    const carId = s.id('car');
    const car = await s.open(carId, persistent(5));
    await car.subscribeAsync('js/e', { qos: 1 });
    await car.endAsync();
    const pub = await s.open(s.id('pub'));
    await pub.publishAsync('js/e', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('js/e', 'long', { qos: 1, properties: { messageExpiryInterval: 120 } });
    await sleep(2200);
    const again = await s.open(carId, persistent(5));
    const [m] = await s.receive(again, 1);
    check(m.payload.toString() === 'long', `expired message delivered: ${m.payload}`); // [MQTT-3.3.2-5]
    const left = m.packet.properties?.messageExpiryInterval;
    check(left <= 118 && left > 100, `expiry interval not reduced by the time waited: ${left}`); // [MQTT-3.3.2-6]
    await s.nothing(again);
  },

  async request_response(s) {
    const responder = await s.open(s.id('car'));
    await responder.subscribeAsync('js/rr/req', { qos: 1 });
    responder.on('message', (topic, payload, packet) => {
      const p = packet.properties ?? {};
      if (topic === 'js/rr/req' && p.responseTopic) {
        responder.publish(p.responseTopic, `re:${payload}`, { qos: 1, properties: { correlationData: p.correlationData } });
      }
    });
    const requester = await s.open(s.id('platform'));
    await requester.subscribeAsync('js/rr/res', { qos: 1 });
    await requester.publishAsync('js/rr/req', 'ping', {
      qos: 1, properties: { responseTopic: 'js/rr/res', correlationData: Buffer.from('c-42') },
    });
    const [m] = await s.receive(requester, 1);
    check(m.payload.toString() === 're:ping', 'no response');
    samePayload(m.packet.properties?.correlationData, Buffer.from('c-42'), 'correlation data');
  },
};

function scenariosFor(version) {
  return version === 5 ? { ...both, ...v5only } : both;
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--list') {
    console.log(Object.keys(scenariosFor(Number(args[1]))).join('\n'));
    return 0;
  }
  const [port, versionText, name] = args;
  const version = Number(versionText);
  const scenario = scenariosFor(version)[name];
  if (!port || ![4, 5].includes(version) || !scenario) {
    console.error('usage: node interop.mjs PORT 4|5 SCENARIO, or --list 4|5');
    return 2;
  }
  const session = new Session(port, version);
  const overall = setTimeout(() => {
    console.error(`${name}: did not finish within 30 s`);
    process.exit(1);
  }, 30000);
  try {
    await scenario(session);
    return 0;
  } catch (error) {
    console.error(`${name} (MQTT ${version === 5 ? '5.0' : '3.1.1'}): ${error.message}`);
    return 1;
  } finally {
    clearTimeout(overall);
    await session.closeAll().catch(() => {});
  }
}

process.exitCode = await main();
