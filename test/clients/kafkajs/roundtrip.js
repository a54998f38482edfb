// kafkajs round trip against a running sluice serve, run by
// test/clients/kafkajs_test.go. It creates a topic with kafkajs' admin
// client, produces N keyed messages with the idempotent producer (the first
// half one per request, the rest in gzip batches), then reads them all back in a consumer group and
// disconnects, which commits. Settings come from the environment: BROKERS,
// TOPIC, GROUP, N, PARTITIONS.
//
// Output, one line per event:
//   sent <partition> <offset> <value>   a message sent alone, with where it went
//   batch <count>                       a batch of count messages acknowledged
//   got <partition> <offset> <value>    a message consumed
'use strict';

const { Kafka, Partitioners, logLevel } = require('kafkajs');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

async function main() {
  const topic = env('TOPIC');
  const groupId = env('GROUP');
  const n = Number(env('N'));
  const numPartitions = Number(env('PARTITIONS'));
  const kafka = new Kafka({
    clientId: 'sluice-kafkajs-test',
    brokers: [env('BROKERS')],
    logLevel: logLevel.WARN,
    retry: { retries: 8 },
  });
  const out = [];
  const flush = () => { process.stdout.write(out.join('')); out.length = 0; };

  const admin = kafka.admin();
  await admin.connect();
  if (!(await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true }))) {
    throw new Error(`createTopics(${topic}) answered false: the topic existed`);
  }
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  if (md.topics.length !== 1 || md.topics[0].partitions.length !== numPartitions) {
    throw new Error(`fetchTopicMetadata: got ${JSON.stringify(md)}, want ${numPartitions} partitions`);
  }
  await admin.disconnect();

  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const half = Math.floor(n / 2);
  for (let i = 0; i < half; i++) {
    const [md] = await producer.send({ topic, acks: -1, messages: [{ key: `key-${i}`, value: `value-${i}` }] });
    out.push(`sent ${md.partition} ${md.baseOffset} value-${i}\n`);
  }
  for (let i = half; i < n; i += 100) {
    const messages = [];
    for (let j = i; j < Math.min(i + 100, n); j++) messages.push({ key: `key-${j}`, value: `value-${j}` });
    const mds = await producer.send({ topic, acks: -1, compression: 1 /* gzip */, messages });
    for (const md of mds) {
      if (md.errorCode !== 0) throw new Error(`send: ${JSON.stringify(md)}`);
    }
    out.push(`batch ${messages.length}\n`);
  }
  await producer.disconnect();
  flush();

  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 250 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let got = 0;
  let resolve;
  const all = new Promise((r) => { resolve = r; });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out.push(`got ${partition} ${message.offset} ${message.value.toString()}\n`);
      if (++got === n) resolve();
    },
  });
  const timeout = setTimeout(() => {
    flush();
    console.error(`consumed ${got} of ${n} messages in 60s`);
    process.exit(1);
  }, 60000);
  await all;
  clearTimeout(timeout);
  await consumer.disconnect();
  flush();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
